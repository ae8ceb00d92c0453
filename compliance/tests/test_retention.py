"""Retention: the purge removes what is past its period in batches, keeps legal holds, reports
counts; the dry run (the command's default) deletes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from compliance.models import LegalHold, RetentionRun
from compliance.services import retention_apply
from compliance.tasks import apply_retention
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from whatsapp.models import WebhookEvent

pytestmark = pytest.mark.django_db


def _closed_conversation(customer, *, days_ago: int, messages: int = 2, photo: bool = False):
    closed = timezone.now() - timedelta(days=days_ago)
    conversation = ConversationFactory(
        customer=customer, state=Conversation.State.CLOSED, closed_at=closed, opened_at=closed
    )
    for _ in range(messages):
        MessageFactory(conversation=conversation)
    if photo:
        m = MessageFactory(conversation=conversation, type="image", text="")
        m.media_file.save("old.jpg", ContentFile(b"old photo"), save=True)
    return conversation


@pytest.fixture
def world(media_root):
    held_customer = CustomerFactory()
    LegalHold.objects.create(
        customer=held_customer, reason="Ação judicial", legal_basis="art. 7º, VI"
    )
    old = _closed_conversation(CustomerFactory(), days_ago=800, photo=True)
    held = _closed_conversation(held_customer, days_ago=800)
    recent = _closed_conversation(CustomerFactory(), days_ago=10)
    ancient = _closed_conversation(CustomerFactory(), days_ago=1200, messages=1)
    open_conv = ConversationFactory(customer=CustomerFactory())
    MessageFactory(conversation=open_conv)
    WebhookEvent.objects.create(
        body="{}", body_sha256="a", received_at=timezone.now() - timedelta(days=40)
    )
    WebhookEvent.objects.create(
        body="{}", body_sha256="b", received_at=timezone.now() - timedelta(days=2)
    )
    return {"old": old, "held": held, "recent": recent, "ancient": ancient, "open": open_conv}


def test_dry_run_counts_and_deletes_nothing(world, capsys):
    before = (Message.objects.count(), Conversation.objects.count(), WebhookEvent.objects.count())
    call_command("apply_retention")  # dry run is the default
    out = capsys.readouterr().out
    assert "messages: 4 would delete" in out  # old (2 + photo) + ancient (1); held skipped
    assert "webhook_events: 1 would delete" in out
    assert "dry run" in out
    assert (
        Message.objects.count(),
        Conversation.objects.count(),
        WebhookEvent.objects.count(),
    ) == before
    assert not RetentionRun.objects.exists()


def test_apply_purges_in_batches_and_honours_legal_holds(world, django_capture_on_commit_callbacks):
    photo = Message.objects.get(conversation=world["old"], type="image").media_file.name
    assert default_storage.exists(photo)

    with django_capture_on_commit_callbacks(execute=True):  # files go after each commit
        counts = retention_apply(dry_run=False, batch_size=2)

    assert counts["messages"] == 4
    assert counts["media_files"] == 1
    assert counts["webhook_events"] == 1
    assert counts["service_records"] == 1  # the 1200-day-old conversation (3-year record)
    assert not Message.objects.filter(conversation=world["old"]).exists()
    assert Conversation.objects.filter(pk=world["old"].pk).exists()  # record kept 3 years
    assert not Conversation.objects.filter(pk=world["ancient"].pk).exists()
    assert Message.objects.filter(conversation=world["held"]).count() == 2  # legal hold
    assert Message.objects.filter(conversation=world["recent"]).count() == 2
    assert Message.objects.filter(conversation=world["open"]).count() == 1
    assert not default_storage.exists(photo)
    run = RetentionRun.objects.get()
    assert run.counts["messages"] == 4 and run.finished_at is not None


def test_purge_goes_by_conversation_and_marks_what_it_purged(world):
    counts = retention_apply(dry_run=False, batch_size=1)

    assert counts["messages"] == 4
    purged = set(
        Conversation.objects.filter(messages_purged_at__isnull=False).values_list("pk", flat=True)
    )
    assert purged == {world["old"].pk}  # "ancient" went whole, as a service record past 3 years
    for kept in ("held", "recent", "open"):
        world[kept].refresh_from_db()
        assert world[kept].messages_purged_at is None
    assert Message.objects.filter(conversation=world["recent"]).count() == 2
    # The next night has nothing to read: the purged conversation is not due any more.
    assert retention_apply(dry_run=True)["messages"] == 0
    assert retention_apply(dry_run=False)["messages"] == 0


def test_a_released_hold_is_purged_the_next_night(world):
    retention_apply(dry_run=False)
    assert Message.objects.filter(conversation=world["held"]).count() == 2

    LegalHold.objects.update(released_at=timezone.now())
    counts = retention_apply(dry_run=False)

    assert counts["messages"] == 2
    assert not Message.objects.filter(conversation=world["held"]).exists()
    assert Conversation.objects.filter(pk=world["held"].pk).exists()  # the service record stays
    assert Message.objects.filter(conversation=world["recent"]).count() == 2


def test_a_long_conversation_goes_in_row_batches(media_root):
    conversation = _closed_conversation(CustomerFactory(), days_ago=800, messages=7)
    recent = _closed_conversation(CustomerFactory(), days_ago=700, messages=3)

    counts = retention_apply(dry_run=False, batch_size=2)

    assert counts["messages"] == 7
    assert not Message.objects.filter(conversation=conversation).exists()
    assert Message.objects.filter(conversation=recent).count() == 3


def test_the_nightly_task_applies_and_is_scheduled(world, settings):
    assert "compliance.apply_retention" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    counts = apply_retention.delay().get()
    assert counts["messages"] == 4
    assert retention_apply(dry_run=False)["messages"] == 0  # idempotent


def test_consent_proof_outlives_the_consent_by_the_limitation_period():
    """The consent in force always stays; a superseded row stays five years as proof of what
    the customer had agreed to; an erased customer's rows go five years after their last one;
    a legal hold keeps everything."""
    from compliance.models import ConsentRecord

    now = timezone.now()

    def row(customer, action, days_ago, purpose="marketing"):
        return ConsentRecord.objects.create(
            customer=customer,
            purpose=purpose,
            action=action,
            text_version="v1",
            channel="whatsapp",
            created_at=now - timedelta(days=days_ago),
        )

    active = CustomerFactory()
    old_grant = row(active, "granted", 3000)
    old_revocation = row(active, "revoked", 2000)  # superseded 1900 days ago: past 1825
    recent_grant = row(active, "granted", 1900)  # superseded 100 days ago: proof still needed
    current = row(active, "revoked", 100)
    untouched = row(active, "granted", 4000, purpose="ai_notice")  # in force, however old
    erased = CustomerFactory(status="anonymized", wa_id=None, phone_e164=None, bsuid=None)
    erased_old = row(erased, "granted", 1900)
    erased_recent = row(CustomerFactory(status="anonymized"), "granted", 30)
    held = CustomerFactory()
    LegalHold.objects.create(customer=held, reason="Processo", legal_basis="art. 7º, VI")
    held_rows = [row(held, "granted", 4000), row(held, "revoked", 3000)]

    assert retention_apply(dry_run=True)["consents"] == 3
    assert ConsentRecord.objects.count() == 9
    assert retention_apply(dry_run=False, batch_size=2)["consents"] == 3

    kept = set(ConsentRecord.objects.values_list("pk", flat=True))
    assert kept == {p.pk for p in (recent_grant, current, untouched, erased_recent, *held_rows)}
    assert not kept & {old_grant.pk, old_revocation.pk, erased_old.pk}


def test_change_logs_go_after_their_period(settings):
    from auditlog.models import LogEntry as AuditEntry
    from django.contrib.admin.models import LogEntry as AdminEntry

    customer = CustomerFactory()
    customer.name = "Outro Nome"
    customer.save()
    assert AuditEntry.objects.exists()
    AuditEntry.objects.update(timestamp=timezone.now() - timedelta(days=1900))
    fresh_count = AuditEntry.objects.count()
    customer.name = "Mais Um"
    customer.save()
    AdminEntry.objects.create(
        user=UserFactory(), action_flag=2, object_repr="x", change_message="[]"
    )
    AdminEntry.objects.update(action_time=timezone.now() - timedelta(days=1900))

    counts = retention_apply(dry_run=False)

    assert counts["audit_log"] == fresh_count
    assert counts["admin_log"] == 1
    assert AuditEntry.objects.count() >= 1  # the recent change stays
    assert not AdminEntry.objects.exists()
