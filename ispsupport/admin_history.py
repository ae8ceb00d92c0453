"""Change history (django-auditlog) on an object's admin page, for whoever may see the object.

Supervisors edit configuration (canned responses, the bot's knowledge base and thresholds,
WhatsApp templates, teams' calendars and SLA targets) without seeing the global audit log, which
copies personal data of every model and stays admin/DPO-only. ``AuditHistoryMixin`` gives each
such ModelAdmin a ``<id>/historico/`` page listing the django-auditlog entries of that object and,
through ``audit_related``, of the rows edited inline with it (a policy's rules, a team's hours):
who changed what, when, old → new values.

Only for configuration models: the page shows values as django-auditlog recorded them (masked
and excluded fields stay so), and is reachable by anyone with view permission on the object.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, Q, QuerySet
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

PER_PAGE = 25


class AuditHistoryMixin:
    """Adds the ``historico`` page and a "Histórico de alterações" link on the change form."""

    audit_history_template = "admin/audit_history.html"

    def audit_related(self, obj: Model) -> list[QuerySet]:
        """Querysets of rows edited together with ``obj`` (inlines) whose entries are shown
        on its page too."""
        return []

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/historico/",
                self.admin_site.admin_view(self.audit_history_view),
                name=f"{opts.app_label}_{opts.model_name}_audit_history",
            ),
            *super().get_urls(),
        ]

    def audit_entries(self, obj: Model) -> QuerySet[LogEntry]:
        query = Q(pk__in=LogEntry.objects.get_for_object(obj).values("pk"))
        for related in self.audit_related(obj):
            query |= Q(pk__in=LogEntry.objects.get_for_objects(related).values("pk"))
        return LogEntry.objects.filter(query).select_related("actor", "content_type")

    def audit_history_view(self, request, object_id: str, extra_context: dict | None = None):
        obj = self.get_object(request, unquote(object_id))
        # As Django's own object pages: permissions first, then "does not exist".
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        page = Paginator(self.audit_entries(obj).order_by("-timestamp", "-pk"), PER_PAGE).get_page(
            request.GET.get("p")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Histórico de alterações: %s") % obj,
            "object": obj,
            "opts": self.opts,
            "page": page,
            "entries": [_entry_row(entry) for entry in page.object_list],
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.audit_history_template, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        opts = self.model._meta
        extra = {
            "audit_history_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_audit_history", args=[object_id]
            ),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)


def _entry_row(entry: LogEntry) -> dict[str, Any]:
    try:
        changes = entry.changes_display_dict
    except Exception:  # a field removed since: show the raw names
        changes = entry.changes_dict
    model = entry.content_type.model_class()
    kind = model._meta.verbose_name if model is not None else entry.content_type.model
    return {
        "timestamp": entry.timestamp,
        "actor": entry.actor.get_username() if entry.actor_id and entry.actor else "",
        "action": entry.get_action_display(),
        "object": f"{kind}: {entry.object_repr}",
        "changes": [(field, values[0], values[1]) for field, values in changes.items()],
    }
