"""Behaviour of PII masking (bot.masking)."""

from __future__ import annotations

import re

import pytest

from bot.masking import contains_pii, extract_cpf, is_valid_cpf, mask_pii


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize(
    "text",
    [
        "meu cpf é 529.982.247-25",
        "cpf 52998224725 por favor",
        "cpf 123.456.789-00 (acho que digitei errado)",
        "cpf 529 982 247 25",
    ],
)
def test_cpf_leaves_no_digits(text: str) -> None:
    masked = mask_pii(text)
    assert "[CPF]" in masked
    assert _digits(masked) == ""


def test_cpf_with_wrong_check_digits_is_masked_anyway() -> None:
    assert not is_valid_cpf("123.456.789-00")
    assert mask_pii("cpf 12345678900") == "cpf [CPF]"


@pytest.mark.parametrize(
    "text",
    [
        "me liga no (11) 98765-4321",
        "tel +55 11 98765-4321",
        "+5511987654321",
        "zap 11 9 8765 4321",
        "fixo (021) 3333-4444",
        "liga 98765-4321",
        "telefone 21998765432",
    ],
)
def test_phone_leaves_no_digits(text: str) -> None:
    masked = mask_pii(text)
    assert "[TELEFONE]" in masked
    assert _digits(masked) == ""


@pytest.mark.parametrize(
    "text",
    [
        "23793.38128 60000.000003 00000.000400 1 84340000010000",
        "23793381286000000000300000000400184340000010000",
        "83640000001-1 11111111111-1 22222222222-2 33333333333-3",
        "linha: 00190.00009 01234.567890 12345.678901 2 12340000012345 ok?",
    ],
)
def test_boleto_line_is_masked_whole(text: str) -> None:
    masked = mask_pii(text)
    assert masked.count("[BOLETO]") == 1
    assert "[TELEFONE]" not in masked and "[CPF]" not in masked
    assert _digits(masked) == ""


def test_cnpj_numeric_and_alphanumeric() -> None:
    assert mask_pii("cnpj 12.345.678/0001-90") == "cnpj [CNPJ]"
    assert mask_pii("cnpj 12345678000190") == "cnpj [CNPJ]"
    assert mask_pii("cnpj 12.ABC.345/01DE-35") == "cnpj [CNPJ]"


def test_email_and_pix_keys() -> None:
    assert mask_pii("manda pra joao.silva+isp@gmail.com.br") == "manda pra [EMAIL]"
    assert (
        mask_pii("minha chave pix é 123e4567-e89b-12d3-a456-426614174000")
        == "minha chave pix é [CHAVE_PIX]"
    )


def test_cep_keeps_its_label() -> None:
    assert mask_pii("CEP 12345-678") == "CEP [CEP]"
    assert mask_pii("cep: 01310100") == "cep: [CEP]"


@pytest.mark.parametrize(
    "text",
    [
        "moro na Rua das Flores, 123",
        "Av. Paulista 1578 apto 12",
        "avenida Brasil nº 45",
        "Travessa São José, s/n",
        "Estrada do Campo Limpo, 2000",
        "Rodovia BR 101 km 3",
        "Alameda Santos, 200",
    ],
)
def test_street_address_is_masked(text: str) -> None:
    masked = mask_pii(text)
    assert "[ENDERECO]" in masked


def test_full_message_keeps_wording_and_hides_identifiers() -> None:
    text = (
        "Oi, meu CPF é 529.982.247-25, moro na Rua das Flores, 123, CEP 12345-678. "
        "Internet caiu de novo 😡 me liga no (11) 98765-4321 ou joana@example.com"
    )
    masked = mask_pii(text)
    assert masked == (
        "Oi, meu CPF é [CPF], moro na [ENDERECO], CEP [CEP]. "
        "Internet caiu de novo 😡 me liga no [TELEFONE] ou [EMAIL]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "contratei 300 mega e chega 20",
        "paguei R$ 99,90 no dia 25/11/2026 às 10:30",
        "a internet caiu faz 3 dias",
        "plano de 1 giga",
        "a estrada está alagada",
        "quero a 2ª via",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert mask_pii(text) == text
    assert not contains_pii(text)


def test_masking_is_idempotent() -> None:
    once = mask_pii("cpf 529.982.247-25 tel 11987654321")
    assert mask_pii(once) == once


def test_contains_pii() -> None:
    assert contains_pii("meu email é a@b.com")
    assert not contains_pii("sem internet desde ontem")


def test_extract_cpf_returns_only_a_valid_one() -> None:
    assert extract_cpf("cpf 529.982.247-25") == "52998224725"
    assert extract_cpf("cpf 123.456.789-00") is None
    assert extract_cpf("sem cpf aqui") is None
    assert not is_valid_cpf("111.111.111-11")
