"""No personal data in the logs: the filter on the root handler masks phones, CPFs, e-mails
and tokens in messages, args, extra fields and exceptions; and a whole webhook → conversation
→ bot flow at DEBUG level writes none of the customer's identifiers."""

import io
import logging

import pytest

from ispsupport.logging import PIIMaskingFilter, mask
from whatsapp.testing import envelope, signed_post, text_message

PHONE = "5511987654321"
PERSONAL = [
    PHONE,
    "+55 11 98765-4321",
    "(11) 98765-4321",
    "123.456.789-09",
    "12345678909",
    "ana.souza@example.com.br",
    "isp_abcdefghijklmnopqrstuvwxyz0123456789",
    "EAAG-secret-access-token",
]


@pytest.fixture
def log_output():
    """What the configured root handler writes (its stream swapped for a buffer)."""
    root = logging.getLogger()
    handler = next(
        h for h in root.handlers if any(isinstance(f, PIIMaskingFilter) for f in h.filters)
    )
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield buffer
    root.setLevel(old_level)
    handler.setStream(old_stream)


def test_the_root_handler_masks_message_args_extra_and_exception(log_output):
    logger = logging.getLogger("conversations.services")
    logger.info("cliente %s escreveu de %s", PHONE, "+55 11 98765-4321")
    logger.warning(
        "cadastro: cpf=%s mail=%s",
        "123.456.789-09",
        "ana.souza@example.com.br",
        extra={"wa_id": PHONE, "doc": "12345678909", "nested": {"phone": "(11) 98765-4321"}},
    )
    logger.info("chamada com Authorization: Bearer EAAG-secret-access-token")
    logger.info("token isp_abcdefghijklmnopqrstuvwxyz0123456789 usado")
    try:
        raise ValueError(f"duplicate key wa_id={PHONE}")
    except ValueError:
        logger.exception("falhou para %s", PHONE)
    output = log_output.getvalue()
    assert "[phone]" in output and "[cpf]" in output and "[email]" in output
    for value in PERSONAL:
        assert value not in output, value


def test_mask_keeps_what_is_not_personal():
    text = "protocolo 20261125000042 em 2026-11-25 14:03:00 ip 10.0.0.1 conversa 42"
    assert mask(text) == text


@pytest.mark.django_db
def test_a_whole_inbound_flow_logs_no_personal_data(
    client, log_output, django_capture_on_commit_callbacks
):
    text = (
        "Sou a Ana, CPF 123.456.789-09, e-mail ana.souza@example.com.br, "
        "telefone (11) 98765-4321: estou sem internet"
    )
    body = envelope(messages=[text_message(wa_id=PHONE, text=text)])
    with django_capture_on_commit_callbacks(execute=True):
        assert signed_post(client, body).status_code == 200
    output = log_output.getvalue()
    assert output  # the flow did log something
    # ...nor the message itself, nor the profile name Meta sent
    for value in [*PERSONAL, text, "Sou a Ana", "estou sem internet", "Cliente Teste"]:
        assert value not in output, value
