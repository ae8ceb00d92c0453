"""The consent ledger and revocation by keyword (LGPD Art. 8 §5)."""

from __future__ import annotations

import pytest

from compliance.models import ConsentRecord
from compliance.services import (
    consent_grant,
    consent_revoke_by_keyword,
    consent_state,
    marketing_allowed,
)

pytestmark = pytest.mark.django_db
MARKETING = ConsentRecord.Purpose.MARKETING


@pytest.mark.parametrize("text", ["SAIR", "parar", " Stop! ", "CANCELAR PROPAGANDA", "Pare."])
def test_stop_keywords_revoke_marketing_at_once(customer, text):
    consent_grant(customer=customer, purpose=MARKETING, channel="whatsapp", proof={"wamid": "w1"})
    assert marketing_allowed(customer=customer)

    assert consent_revoke_by_keyword(customer, text, wamid="wamid.X") is True

    assert not marketing_allowed(customer=customer)
    latest = ConsentRecord.objects.filter(customer=customer, purpose=MARKETING).first()
    assert latest.action == ConsentRecord.Action.REVOKED
    assert latest.proof["wamid"] == "wamid.X" and latest.text_version


@pytest.mark.parametrize(
    "text", ["não quero parar de receber o boleto", "quero sair do plano", "stopped", ""]
)
def test_other_messages_are_not_revocations(customer, text):
    consent_grant(customer=customer, purpose=MARKETING, channel="whatsapp")
    assert consent_revoke_by_keyword(customer, text) is False
    assert marketing_allowed(customer=customer)


def test_revoking_twice_records_once(customer):
    consent_grant(customer=customer, purpose=MARKETING, channel="whatsapp")
    assert consent_revoke_by_keyword(customer, "SAIR")
    assert consent_revoke_by_keyword(customer, "SAIR")
    assert ConsentRecord.objects.filter(action="revoked").count() == 1


def test_stop_without_a_grant_still_records_an_opt_out(customer):
    assert consent_revoke_by_keyword(customer, "PARAR")
    assert consent_state(customer=customer)[MARKETING] is False


def test_ledger_keeps_history_per_purpose(customer):
    consent_grant(customer=customer, purpose=MARKETING, channel="whatsapp")
    consent_revoke_by_keyword(customer, "SAIR")
    consent_grant(customer=customer, purpose=MARKETING, channel="whatsapp")
    consent_grant(customer=customer, purpose=ConsentRecord.Purpose.AI_NOTICE, channel="whatsapp")
    state = consent_state(customer=customer)
    assert state[MARKETING] is True
    assert state[ConsentRecord.Purpose.AI_NOTICE] is True
    assert state[ConsentRecord.Purpose.SERVICE_MESSAGES] is None
    assert ConsentRecord.objects.filter(customer=customer).count() == 4
