"""django-auditlog on every domain model: who changed what, when and from where; diffs carry
no secrets, raw bodies, message texts nor personal values."""

import json

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.test import Client

from accounts.tests.helpers import login_verified
from ispsupport.crypto import encrypted_fields
from whatsapp.models import WebhookEvent

pytestmark = pytest.mark.django_db

DOMAIN_APPS = ("accounts", "compliance", "conversations", "isp", "bot", "whatsapp")
NOT_TRACKED = {  # settings.AUDITLOG_EXCLUDE_TRACKING_MODELS, domain part (with the reason there)
    "accounts.backupcode",  # the backup codes themselves (their device is tracked)
    "compliance.accesslogentry",
    "compliance.accesslogcheckpoint",
    "compliance.retentionrun",
    "conversations.liveevent",
    "conversations.protocolcounter",
    # Machine-written, append-only (each row carries its author and time); auditing them would
    # double the writes on the webhook and bot paths.
    "whatsapp.webhookevent",
    "whatsapp.earlystatus",
    "conversations.message",
    "conversations.conversationevent",
    "bot.botdecision",
    # Written by the bot on self-service turns, each row with its own time and conversation.
    "isp.conversationcontract",
    "isp.trustunlock",
    # Written by the bot and the bulk-send tasks, one row per customer (ids, states, times).
    "isp.outageconversation",
    "isp.outagereport",
    "isp.campaignrecipient",
}


def _changes(entry) -> dict:
    return entry.changes if isinstance(entry.changes, dict) else json.loads(entry.changes)


def _options(model):
    return auditlog._registry[model]


def test_every_domain_model_is_tracked():
    untracked = [
        m._meta.label_lower
        for app in DOMAIN_APPS
        for m in apps.get_app_config(app).get_models()
        if not auditlog.contains(m) and m._meta.label_lower not in NOT_TRACKED
    ]
    assert not untracked, f"models without an audit trail: {untracked}"


def test_no_encrypted_field_reaches_a_diff():
    leaks = []
    for model in apps.get_models():
        if not auditlog.contains(model):
            continue
        options = _options(model)
        hidden = set(options["exclude_fields"]) | set(options["mask_fields"])
        leaks += [
            f"{model._meta.label}.{f.name}" for f in encrypted_fields(model) if f.name not in hidden
        ]
    assert not leaks, (
        "Encrypted fields must be listed in settings.AUDITLOG_INCLUDE_TRACKING_MODELS under "
        f"'exclude_fields' (or 'mask_fields'): {leaks}"
    )


def test_secrets_are_never_in_diffs():
    from accounts.models import ApiToken, AuthenticatorDevice, User, UserSession

    assert "password" in _options(User)["exclude_fields"]
    assert "key" in _options(AuthenticatorDevice)["exclude_fields"]
    assert "key_hash" in _options(ApiToken)["exclude_fields"]
    assert {"session_key", "key_hash"} <= set(_options(UserSession)["exclude_fields"])


def test_an_admin_change_records_actor_and_address(admin_member, team_support):
    client = Client(REMOTE_ADDR="203.0.113.77")
    login_verified(client, admin_member)
    url = f"/admin/accounts/team/{team_support.pk}/change/"
    # The team page edits its members, calendar and SLA targets inline: send their (empty)
    # management forms as the browser would.
    inlines = {}
    for formset in client.get(url).context["inline_admin_formsets"]:
        management = formset.formset.management_form
        inlines.update({management.add_prefix(k): v for k, v in management.initial.items()})
    response = client.post(
        url,
        {
            "name": "Suporte N1",
            "slug": team_support.slug,
            "description": "",
            "is_active": "on",
            "closed_on_national_holidays": "on",
            **inlines,
        },
        HTTP_X_FORWARDED_FOR="6.6.6.6",  # forged: ignored without trusted proxies
    )
    assert response.status_code == 302
    entry = LogEntry.objects.get_for_object(team_support).latest("timestamp")
    assert entry.actor == admin_member
    assert entry.remote_addr == "203.0.113.77"
    assert _changes(entry)["name"] == ["Suporte técnico", "Suporte N1"]


def test_raw_bodies_and_personal_values_stay_out_of_the_log(customer):
    event = WebhookEvent.objects.create(body='{"from": "5511987654321"}', body_sha256="0" * 64)
    event.status = WebhookEvent.Status.PROCESSED
    event.save()
    customer.name = "Ana Maria Souza"
    customer.save()
    everything = " ".join(str(e.changes) for e in LogEntry.objects.all())
    assert "5511987654321" not in everything
    assert "Ana Maria Souza" not in everything and "Ana Souza" not in everything
    name_change = LogEntry.objects.get_for_object(customer).latest("timestamp")
    assert _changes(name_change)["name"] == ["***", "***"]


def test_blind_indexes_are_never_in_a_diff():
    from ispsupport.crypto import blind_index_fields

    leaks = [
        f"{model._meta.label}.{f.name}"
        for model in apps.get_models()
        if auditlog.contains(model)
        for f in blind_index_fields(model)
        if f.name not in _options(model)["exclude_fields"]
    ]
    assert not leaks, f"blind-index columns must be in 'exclude_fields': {leaks}"


def test_the_change_history_names_a_customer_by_id_not_by_name(admin_member):
    from conversations import services

    customer = services.customer_resolve(wa_id="5511987650000", name="Joaquina Brandão")
    client = Client()
    login_verified(client, admin_member)
    response = client.post(
        f"/admin/conversations/customer/{customer.pk}/change/",
        {"name": "Joaquina B. Souza", "username": "", "cpf": "", "contract_ref": "C-1",
         "status": "active", "metadata": "{}"},
    )  # fmt: skip
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Joaquina B. Souza"
    from django.contrib.admin.models import LogEntry as AdminLogEntry

    audit = LogEntry.objects.get_for_object(customer)
    admin_entries = AdminLogEntry.objects.filter(object_id=str(customer.pk))
    assert audit.count() >= 2 and admin_entries.exists()
    reprs = [e.object_repr for e in audit] + [e.object_repr for e in admin_entries]
    assert all(r == f"cliente #{customer.pk}" for r in reprs), reprs
    everything = " ".join(str(e.changes) for e in audit) + " ".join(
        e.change_message for e in admin_entries
    )
    assert "Joaquina" not in everything and "5511987650000" not in everything
