"""What ``save()`` would have triggered, for rows written with ``bulk_create``.

``bulk_create`` sends no ``post_save``: django-auditlog writes no entry and receivers that
count rows (the metrics modules) see nothing. ``created_in_bulk(rows)`` makes up for it:
the audit entries in one INSERT (``audit_log_created``) and then ``post_save(created=True)``
for every row, with auditlog off so it does not write them a second time, one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings


def created_in_bulk(instances: Sequence[Any]) -> None:
    """Call right after ``Model.objects.bulk_create(instances)`` (rows of one model, with
    their primary keys set: PostgreSQL and SQLite return them)."""
    if not instances:
        return
    from auditlog.context import disable_auditlog
    from django.db.models.signals import post_save

    audit_log_created(list(instances))
    model = type(instances[0])
    with disable_auditlog():
        for instance in instances:
            post_save.send(
                sender=model,
                instance=instance,
                created=True,
                update_fields=None,
                raw=False,
                using=instance._state.db or "default",
            )


def audit_log_created(instances: list[Any]) -> None:
    """django-auditlog's "create" entries for rows of one model inserted with ``bulk_create``.

    What one ``save()`` per row would have written, in one INSERT: auditlog's own diff with the model's
    ``exclude_fields``/``mask_fields`` (concrete fields only: a new row has no reverse
    relations worth reading), and ``LogEntry``'s ``pre_save`` receivers run for each entry
    (the actor of the audit context, :func:`hide_personal_object_repr`). Rows of models
    auditlog does not track, and calls while auditlog is disabled, write nothing.
    """
    if not instances:
        return
    from auditlog.cid import get_cid
    from auditlog.context import auditlog_disabled
    from auditlog.diff import model_instance_diff
    from auditlog.models import LogEntry
    from auditlog.registry import auditlog
    from auditlog.signals import post_log, pre_log
    from django.contrib.contenttypes.models import ContentType
    from django.db.models.signals import pre_save
    from django.utils.encoding import smart_str

    model = type(instances[0])
    if auditlog_disabled.get() or not auditlog.contains(model):
        return
    content_type = ContentType.objects.get_for_model(model)
    names = [f.name for f in model._meta.concrete_fields]
    use_json = settings.AUDITLOG_STORE_JSON_CHANGES
    cid = get_cid()
    entries, logged = [], []
    for instance in instances:
        vetoes = pre_log.send(model, instance=instance, action=LogEntry.Action.CREATE)
        if any(result is False for _receiver, result in vetoes):
            continue
        changes = model_instance_diff(
            None, instance, fields_to_check=names, use_json_for_changes=use_json
        )
        if not changes:
            continue
        pk = instance.pk
        entry = LogEntry(
            content_type=content_type,
            object_pk=pk,
            object_id=pk if isinstance(pk, int) else None,
            object_repr=smart_str(instance),
            serialized_data=LogEntry.objects._get_serialized_data_or_none(instance),
            action=LogEntry.Action.CREATE,
            changes=changes,
            cid=cid,
        )
        if callable(getattr(instance, "get_additional_data", None)):
            entry.additional_data = instance.get_additional_data()
        pre_save.send(
            sender=LogEntry, instance=entry, raw=False, using="default", update_fields=None
        )
        entries.append(entry)
        logged.append((instance, changes, vetoes))
    LogEntry.objects.bulk_create(entries)
    for entry, (instance, changes, vetoes) in zip(entries, logged, strict=True):
        post_log.send(
            model,
            instance=instance,
            instance_old=None,
            action=LogEntry.Action.CREATE,
            error=None,
            pre_log_results=vetoes,
            changes=changes,
            log_entry=entry,
            log_created=True,
            use_json_for_changes=use_json,
        )
