"""The personal-data access log: append-only, hash-chained, tamper detection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from compliance.models import AccessLogCheckpoint, AccessLogEntry
from compliance.services import access_log_purge_before, access_log_record, access_log_verify
from compliance.tests.conftest import login_verified

pytestmark = pytest.mark.django_db
VIEW = AccessLogEntry.Action.VIEW_CONVERSATION


def _three(agent, customer):
    return [
        access_log_record(
            user=agent,
            customer_id=customer.pk,
            action=VIEW,
            ip="10.0.0.7",
            object_type="conversation",
            object_id=i,
        )
        for i in range(3)
    ]


def test_rows_are_chained(agent, customer):
    rows = _three(agent, customer)
    assert rows[1].prev_hash == rows[0].row_hash and rows[2].prev_hash == rows[1].row_hash
    assert access_log_verify() == (3, [])
    call_command("verify_audit_log")


def test_rows_cannot_be_changed_or_deleted_through_the_orm(agent, customer):
    row = _three(agent, customer)[0]
    row.ip = "10.9.9.9"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AccessLogEntry.objects.filter(pk=row.pk).update(ip="10.9.9.9")
    with pytest.raises(PermissionError):
        AccessLogEntry.objects.all().delete()


def test_a_raw_sql_update_is_detected_and_the_row_named(agent, customer):
    rows = _three(agent, customer)
    table = connection.ops.quote_name(AccessLogEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET customer_id = %s WHERE id = %s", [999, rows[1].pk])  # noqa: S608

    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit_log")
    assert excinfo.value.returncode == 1
    _checked, problems = access_log_verify()
    assert [p.entry_id for p in problems] == [rows[1].pk]


def test_a_removed_row_is_detected(agent, customer):
    rows = _three(agent, customer)
    AccessLogEntry.objects.filter(pk=rows[1].pk)._raw_delete(using="default")
    _checked, problems = access_log_verify()
    assert [p.entry_id for p in problems] == [rows[2].pk]


def test_nobody_may_change_the_log_in_admin(dpo, client, agent, customer):
    row = _three(agent, customer)[0]
    login_verified(client, dpo)
    assert client.get(f"/admin/compliance/accesslogentry/{row.pk}/delete/").status_code in (
        302,
        403,
    )
    response = client.post(f"/admin/compliance/accesslogentry/{row.pk}/change/", {"ip": "1.1.1.1"})
    assert response.status_code == 403
    assert AccessLogEntry.objects.get(pk=row.pk).ip == "10.0.0.7"


def test_supervisor_sees_only_their_teams_rows(client, supervisor, agent, customer, team_support):
    mine = access_log_record(
        user=agent, customer_id=customer.pk, action=VIEW, team_id=team_support.pk
    )
    other = access_log_record(user=agent, customer_id=customer.pk, action=VIEW, team_id=999_999)
    login_verified(client, supervisor)
    response = client.get("/admin/compliance/accesslogentry/")
    assert response.status_code == 200
    ids = {obj.pk for obj in response.context["cl"].result_list}
    assert mine.pk in ids and other.pk not in ids


def test_retention_removes_a_prefix_and_the_chain_still_verifies(agent, customer):
    old = timezone.now() - timedelta(days=400)
    for i in range(3):
        access_log_record(
            user=agent, customer_id=customer.pk, action=VIEW, now=old + timedelta(minutes=i)
        )
    recent = _three(agent, customer)
    cutoff = timezone.now() - timedelta(days=365)

    assert access_log_purge_before(cutoff=cutoff, batch_size=2, dry_run=True) == 3
    assert AccessLogEntry.objects.count() == 6
    assert access_log_purge_before(cutoff=cutoff, batch_size=2, dry_run=False) == 3

    assert list(AccessLogEntry.objects.order_by("pk")) == recent
    assert AccessLogCheckpoint.objects.exists()
    assert access_log_verify() == (3, [])
