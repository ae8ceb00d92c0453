"""The customer-base import (``manage.py import_customers`` and ``isp.imports``) as an operator
meets it: the command's exit code, its summary and report file, and the contracts it leaves.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from compliance.registry import ErasureReport
from conversations.tests.factories import CustomerFactory
from isp.imports.rows import parse_brl, parse_phones
from isp.models import Contract, ContractPhone, cpf_index, phone_index
from isp.privacy import ContractsProvider

pytestmark = pytest.mark.django_db

HEADER = "contrato;titular;cpf;telefones;plano;situacao;cidade;bairro;olt;mensalidade"
GOOD = [
    "40001;Fernanda Ribeiro;363.309.466-04;(11) 99871-2001;Fibra 300;ativo;São Paulo;Moema;OLT-1;99,90",
    "40002;Ricardo Nogueira;873.796.819-07;11 8871-2002 | 11 3456-2002;Fibra 500;bloqueado;"
    "São Paulo;Moema;OLT-1;119,90",
    "40003;Juliana Mendes;632.280.109-02;+55 19 99871-2003;Fibra 1 Giga;cancelado;Campinas;"
    "Cambuí;OLT-2;R$ 1.189,90",
]
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "clientes-exemplo.csv"


def write(
    tmp_path: Path, lines: list[str], *, name: str = "clientes.csv", encoding="utf-8"
) -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def run(path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_customers", str(path), *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def report_rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def state() -> list[tuple]:
    """Everything an import writes, decrypted, to compare before and after."""
    rows = []
    for c in Contract.objects.order_by("ref").prefetch_related("phones"):
        rows.append(
            (
                c.ref,
                c.source,
                c.holder_name,
                c.cpf,
                c.cpf_index,
                c.plan_name,
                c.status,
                c.city,
                c.neighbourhood,
                c.olt,
                c.monthly_price,
                c.updated_at,
                c.synced_at,
                sorted((p.pk, p.phone, p.phone_index) for p in c.phones.all()),
            )
        )
    return rows


# --- the acceptance: bad rows rejected with reasons, the rest imported -----------------------


def test_bad_rows_are_rejected_with_line_column_and_reason_and_the_rest_is_imported(tmp_path):
    path = write(
        tmp_path,
        [
            HEADER,
            GOOD[0],
            "40010;Ana Lima;111.111.111-11;11 99871-2010;Fibra 300;ativo;;;;",  # repeated digits
            "40011;Bia Souza;390.533.447-00;11 99871-2011;Fibra 300;ativo;;;;",  # check digits
            "40012;;390.533.447-05;11 99871-2012;Fibra 300;ativo;;;;",  # no holder
            "40013;Caio;390.533.447-05;11 1871-2013;Fibra 300;ativo;;;;",  # landline with 1
            "40014;Davi;390.533.447-05;10 99871-2014;Fibra 300;ativo;;;;",  # no DDD 10
            "40015;Eva;390.533.447-05;11 99871-2015;Fibra 300;inativo;;;;",  # unknown status
            "40001;Fernanda Ribeiro;363.309.466-04;11 99871-2001;Fibra 300;ativo;;;;",  # repeated
            "40016;Gil;12.345.678/0001-95;11 99871-2016;Fibra 300;ativo;;;;",  # a CNPJ
            GOOD[1],
            "40017;Hugo;390.533.447-05;11 99871-2017;Fibra 300;ativo;;;;;;extra",  # extra field
            GOOD[2],
        ],
    )

    code, out, _err = run(path)

    assert code == 1
    assert "criados: 3 · atualizados: 0 · sem alteração: 0 · rejeitados: 9" in out
    rows = report_rows(tmp_path / "clientes.rejeitadas.csv")
    assert rows[0] == ["linha", "coluna", "motivo"]
    assert rows[1:] == [
        ["3", "cpf", "CPF inválido: os dígitos verificadores não conferem."],
        ["4", "cpf", "CPF inválido: os dígitos verificadores não conferem."],
        ["5", "titular", "Campo obrigatório vazio."],
        ["6", "telefones", "1º número: telefone fixo deve começar por 2, 3, 4 ou 5."],
        ["7", "telefones", "1º número: DDD inexistente."],
        [
            "8",
            "situacao",
            "Situação desconhecida (“inativo”): use ativo, bloqueado ou cancelado.",
        ],
        ["9", "contrato", "Contrato repetido no arquivo (já na linha 2)."],
        ["10", "cpf", "CNPJ não é aceito: informe o CPF do titular (11 dígitos)."],
        [
            "12",
            "",
            "A linha tem 12 campos e o cabeçalho 10: confira o separador e as aspas.",
        ],
    ]
    assert "linha 3 [cpf]: CPF inválido" in out  # the summary lists them too
    assert sorted(Contract.objects.values_list("ref", flat=True)) == ["40001", "40002", "40003"]


def test_imported_contracts_are_normalised_encrypted_and_found_by_blind_index(tmp_path):
    code, _out, _err = run(write(tmp_path, [HEADER, *GOOD]))

    assert code == 0
    ricardo = Contract.objects.get(ref="40002")
    assert ricardo.source == Contract.Source.IMPORT
    assert (ricardo.holder_name, ricardo.cpf) == ("Ricardo Nogueira", "87379681907")
    assert (ricardo.status, ricardo.plan_name, ricardo.city) == (
        "blocked",
        "Fibra 500",
        "São Paulo",
    )
    assert ricardo.monthly_price == Decimal("119.90")
    assert ricardo.synced_at is not None
    # The old-format mobile gained its 9th digit; the landline kept eight.
    assert sorted(p.phone for p in ricardo.phones.all()) == ["+551134562002", "+5511988712002"]
    assert Contract.objects.get(ref="40003").monthly_price == Decimal("1189.90")
    assert Contract.objects.filter(cpf_index=cpf_index("87379681907")).get() == ricardo
    assert ContractPhone.objects.get(phone_index=phone_index("+5511988712002")).contract == ricardo
    with connection.cursor() as cursor:
        cursor.execute("SELECT holder_name, cpf FROM isp_contract WHERE ref = %s", ["40002"])
        stored = cursor.fetchone()
        cursor.execute("SELECT phone FROM isp_contractphone")
        phones = [row[0] for row in cursor.fetchall()]
    assert "Ricardo" not in stored[0] and "87379681907" not in stored[1]
    assert all(p.startswith("gAAAAA") for p in phones)


def test_the_sample_file_in_the_repository_imports_cleanly(tmp_path):
    code, out, _err = run(SAMPLE, "--report", str(tmp_path / "r.csv"))

    assert code == 0, out
    assert Contract.objects.filter(source=Contract.Source.IMPORT).count() == 6
    assert report_rows(tmp_path / "r.csv") == [["linha", "coluna", "motivo"]]


# --- idempotency ---------------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing_the_second_time(tmp_path):
    path = write(tmp_path, [HEADER, *GOOD])
    run(path)
    before = state()

    code, out, _err = run(path)

    assert code == 0
    assert "criados: 0 · atualizados: 0 · sem alteração: 3 · rejeitados: 0" in out
    assert state() == before  # same rows, same phone rows, not even updated_at moved


def test_a_reimport_days_later_only_renews_the_date_retention_counts_from(tmp_path):
    path = write(tmp_path, [HEADER, *GOOD])
    run(path)
    long_ago = timezone.now() - timedelta(days=30)
    Contract.objects.update(synced_at=long_ago)
    before = Contract.objects.get(ref="40001")

    code, out, _err = run(path)

    assert code == 0 and "sem alteração: 3" in out
    after = Contract.objects.get(ref="40001")
    assert after.synced_at > long_ago + timedelta(days=29)
    assert (after.updated_at, after.holder_name) == (before.updated_at, before.holder_name)


def test_a_changed_row_updates_its_contract_and_replaces_its_phones(tmp_path):
    run(write(tmp_path, [HEADER, *GOOD]))
    untouched = state()[0]
    changed = (
        GOOD[1]
        .replace("Fibra 500", "Fibra 1 Giga")
        .replace("11 8871-2002 | 11 3456-2002", "11 97000-0002")
    )

    code, out, _err = run(write(tmp_path, [HEADER, GOOD[0], changed, GOOD[2]], name="v2.csv"))

    assert code == 0
    assert "criados: 0 · atualizados: 1 · sem alteração: 2" in out
    ricardo = Contract.objects.get(ref="40002")
    assert ricardo.plan_name == "Fibra 1 Giga"
    assert [p.phone for p in ricardo.phones.all()] == ["+5511970000002"]
    # Rewritten by bulk_update: still encrypted at rest, still found by its CPF's index.
    assert (ricardo.holder_name, ricardo.cpf) == ("Ricardo Nogueira", "87379681907")
    assert Contract.objects.get(cpf_index=cpf_index("87379681907")) == ricardo
    with connection.cursor() as cursor:
        cursor.execute("SELECT holder_name FROM isp_contract WHERE ref = %s", ["40002"])
        assert cursor.fetchone()[0].startswith("gAAAAA")
    assert state()[0] == untouched


def test_a_column_left_out_of_the_file_keeps_what_the_contract_had(tmp_path):
    run(write(tmp_path, [HEADER, *GOOD]))
    short = "contrato;titular;cpf;telefones;plano;situacao"
    row = "40001;Fernanda Ribeiro;363.309.466-04;(11) 99871-2001;Fibra 300;bloqueado"

    code, out, _err = run(write(tmp_path, [short, row], name="short.csv"))

    assert code == 0 and "atualizados: 1" in out
    fernanda = Contract.objects.get(ref="40001")
    assert fernanda.status == "blocked"
    assert (fernanda.city, fernanda.olt, fernanda.monthly_price) == (
        "São Paulo",
        "OLT-1",
        Decimal("99.90"),
    )


def test_a_demo_erp_contract_is_not_overwritten_by_an_import(tmp_path):
    from isp.seed import seed_isp_demo

    seed_isp_demo()
    demo = Contract.objects.get(ref="10001")
    row = "10001;Outra Pessoa;363.309.466-04;11 99871-2001;Fibra 300;cancelado;;;;"

    code, _out, _err = run(write(tmp_path, [HEADER, row]))

    assert code == 1
    assert report_rows(tmp_path / "clientes.rejeitadas.csv")[1] == [
        "2",
        "contrato",
        "Contrato do ERP de demonstração (seed_demo): a importação não o altera.",
    ]
    demo.refresh_from_db()
    assert (demo.holder_name, demo.status, demo.source) == ("Ana Souza", "active", "demo")


# --- dry run, batches, bad files -----------------------------------------------------------------


def test_dry_run_validates_and_counts_but_writes_nothing(tmp_path):
    path = write(tmp_path, [HEADER, *GOOD, "40020;Ana;111.111.111-11;11 99871-2020;P;ativo;;;;"])

    code, out, _err = run(path, "--dry-run")

    assert code == 1
    assert "só validação: nada gravado" in out
    assert "seriam criados: 3 · seriam atualizados: 0 · sem alteração: 0 · rejeitados: 1" in out
    assert not Contract.objects.exists() and not ContractPhone.objects.exists()


def _fail_inserting_phones_of(ref: str) -> None:
    """A database that refuses one contract's phones (a trigger): the batch's other statements,
    the contracts already inserted, must be undone with it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_import_fail() RETURNS trigger AS $$ BEGIN "  # noqa: S608
                "IF EXISTS (SELECT 1 FROM isp_contract WHERE id = NEW.contract_id AND ref = "
                f"'{ref}') THEN RAISE EXCEPTION 'recusado pelo teste'; END IF; RETURN NEW; "
                "END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER test_import_fail BEFORE INSERT ON isp_contractphone "
                "FOR EACH ROW EXECUTE FUNCTION test_import_fail()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER test_import_fail BEFORE INSERT ON isp_contractphone WHEN "  # noqa: S608
                f"NEW.contract_id IN (SELECT id FROM isp_contract WHERE ref = '{ref}') "
                "BEGIN SELECT RAISE(ABORT, 'recusado pelo teste'); END"
            )


def test_a_batch_that_fails_at_the_database_is_rolled_back_whole(tmp_path):
    rows = [
        f"{50000 + n};Cliente {n};363.309.466-04;11 99871-{3000 + n};Fibra 300;ativo;;;;"
        for n in range(7)
    ]
    _fail_inserting_phones_of("50004")  # in the second batch of three (lines 5-7)

    code, out, _err = run(write(tmp_path, [HEADER, *rows]), "--batch-size", "3")

    assert code == 1
    assert "criados: 4 · atualizados: 0 · sem alteração: 0 · rejeitados: 3" in out
    assert "lotes desfeitos por erro do banco de dados: 1" in out
    assert sorted(Contract.objects.values_list("ref", flat=True)) == [
        "50000",
        "50001",
        "50002",
        "50006",
    ]
    assert ContractPhone.objects.count() == 4
    report = report_rows(tmp_path / "clientes.rejeitadas.csv")
    assert [r[0] for r in report[1:]] == ["5", "6", "7"]
    assert "o lote inteiro foi desfeito" in report[1][2]


def test_a_missing_file_or_a_wrong_header_exits_2_and_writes_nothing(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Arquivo não encontrado") as missing:
        call_command("import_customers", str(tmp_path / "nao-existe.csv"))
    assert missing.value.returncode == 2

    wrong = write(tmp_path, ["contrato;nome;documento;plano", "1;Ana;52998224725;P"])
    with pytest.raises(
        CommandError, match="não tem as colunas obrigatórias: cpf, telefones, situacao"
    ) as header:
        call_command("import_customers", str(wrong))
    assert header.value.returncode == 2
    assert not Contract.objects.exists()


def test_a_file_not_in_utf8_is_refused_unless_its_encoding_is_given(tmp_path):
    from django.core.management.base import CommandError

    row = "40001;João Conceição;363.309.466-04;11 99871-2001;Fibra 300;ativo;;;;"
    path = write(tmp_path, [HEADER, row], encoding="cp1252")

    with pytest.raises(CommandError, match="não está em UTF-8") as refused:
        call_command("import_customers", str(path))
    assert refused.value.returncode == 2 and not Contract.objects.exists()

    code, _out, _err = run(path, "--encoding", "cp1252")
    assert code == 0
    assert Contract.objects.get().holder_name == "João Conceição"


def test_english_headers_a_comma_delimiter_and_a_bom_are_understood(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffContract,Holder,CPF,Phones,Plan,Status,City\n"
        '40001,"Ribeiro, Fernanda",36330946604,"11 99871-2001, 11 99871-2099",Fibra,active,Santos\n'.encode()
    )

    code, out, _err = run(path)

    assert code == 0, out
    fernanda = Contract.objects.get()
    assert (fernanda.holder_name, fernanda.city, fernanda.status) == (
        "Ribeiro, Fernanda",
        "Santos",
        "active",
    )
    assert fernanda.phones.count() == 2


def test_the_progress_bar_goes_to_stderr_and_the_summary_to_stdout(tmp_path):
    code, out, err = run(write(tmp_path, [HEADER, *GOOD]))

    assert code == 0
    assert "importando [" in err and "3/3" in err
    assert "importando [" not in out


def test_no_value_of_the_file_reaches_the_logs_or_the_report(tmp_path, caplog):
    secret_row = "40030;Zuleica Tavares;390.533.447-05;11 99871-2030;Fibra;inativo;;;;"
    with caplog.at_level(logging.DEBUG):
        run(write(tmp_path, [HEADER, *GOOD, secret_row]))
    _fail_inserting_phones_of("40031")
    with caplog.at_level(logging.DEBUG):
        run(
            write(
                tmp_path,
                [HEADER, secret_row.replace("40030", "40031").replace("inativo", "ativo")],
                name="b.csv",
            )
        )

    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    report = (tmp_path / "clientes.rejeitadas.csv").read_text("utf-8-sig")
    report += (tmp_path / "b.rejeitadas.csv").read_text("utf-8-sig")
    for value in ("Zuleica", "Tavares", "39053344705", "390.533.447-05", "99871", "40030"):
        assert value not in logged and value not in report


# --- parsing details ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("99,90", Decimal("99.90")),
        ("99.90", Decimal("99.90")),
        ("R$ 1.234,56", Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56")),
        ("1.234", Decimal("1234.00")),
        ("120", Decimal("120.00")),
        ("99,9", Decimal("99.90")),
        ("-10,00", None),
        ("dez reais", None),
    ],
)
def test_amounts_in_reais_are_read_as_erps_write_them(raw, expected):
    assert parse_brl(raw) == expected


@pytest.mark.parametrize(
    ("cell", "phones"),
    [
        ("(11) 98765-4321", ["+5511987654321"]),
        ("11 8765-4321", ["+5511987654321"]),  # old mobile: the 9th digit
        ("011 98765-4321", ["+5511987654321"]),  # trunk zero
        ("5511987654321", ["+5511987654321"]),
        ("+55 11 3232-0004", ["+551132320004"]),  # landline
        ("11 98765-4321 / 11 8765-4321", ["+5511987654321"]),  # one number, two spellings
        ("+351 912 345 678", ["+351912345678"]),  # foreign, written with +
    ],
)
def test_phones_are_normalised_to_e164_with_the_ninth_digit(cell, phones):
    parsed, problems = parse_phones(cell)
    assert problems == [] and sorted(parsed.values()) == phones


# --- compliance ----------------------------------------------------------------------------------


def test_erasure_deletes_the_imported_copies_of_a_customers_contracts(tmp_path):
    run(write(tmp_path, [HEADER, *GOOD]))
    customer = CustomerFactory(wa_id="5511987120020", phone_e164="+5511988712002")
    report = ErasureReport()

    ContractsProvider().erase(customer, report)

    assert report.deleted["isp.contract"] == 1
    assert sorted(Contract.objects.values_list("ref", flat=True)) == ["40001", "40003"]


def test_campaign_segments_and_outage_regions_reach_imported_contracts(tmp_path):
    from isp.selectors import Region, contract_phones, contracts_in_region, contracts_segment

    run(write(tmp_path, [HEADER, *GOOD]))

    segment = contracts_segment(cities=["são paulo"], statuses=["active", "blocked"])
    assert sorted(segment.values_list("ref", flat=True)) == ["40001", "40002"]
    assert list(contracts_in_region(Region(olt="OLT-2")).values_list("ref", flat=True)) == ["40003"]
    assert contract_phones(segment)["40001"] == ["+5511998712001"]
