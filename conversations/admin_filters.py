"""The supervisors' filters on the conversations list: SLA, waiting time, intent, demand kind.

Each filter is one SQL condition (``conversations.sla`` for the clocks), evaluated against one
"now" per request, so the list stays a single query however many rows it shows.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations import hooks, sla
from conversations.models import Conversation

_OPEN = ~Q(state=Conversation.State.CLOSED)


def request_now(request):
    """One "now" per request, shared by the filters, the SLA columns and the page."""
    now = getattr(request, "_sla_now", None)
    if now is None:
        now = request._sla_now = timezone.now()
    return now


class SlaFilter(admin.SimpleListFilter):
    title = _("SLA vencido / a vencer")
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [
            ("breached", _("Vencido (em aberto)")),
            ("near", _("A vencer")),
            ("attention", _("Vencido ou a vencer")),
            ("ok", _("No prazo (em aberto)")),
            ("breached_closed", _("Encerradas fora do prazo")),
        ]

    def queryset(self, request, queryset):
        now = request_now(request)
        value = self.value()
        if value == "breached":
            return queryset.filter(_OPEN & sla.breach_q(now))
        if value == "near":
            return queryset.filter(sla.near_due_q(now))
        if value == "attention":
            return queryset.filter((_OPEN & sla.breach_q(now)) | sla.near_due_q(now))
        if value == "ok":
            return queryset.filter(_OPEN & ~sla.breach_q(now) & ~sla.near_due_q(now))
        if value == "breached_closed":
            return queryset.filter(Q(state=Conversation.State.CLOSED) & sla.breach_q(now))
        return queryset


class WaitingLongerFilter(admin.SimpleListFilter):
    title = _("aguardando há mais de")
    parameter_name = "espera"
    _MINUTES = (5, 15, 30, 60, 240, 1440)

    def lookups(self, request, model_admin):
        labels = {
            5: _("5 minutos"),
            15: _("15 minutos"),
            30: _("30 minutos"),
            60: _("1 hora"),
            240: _("4 horas"),
            1440: _("1 dia"),
        }
        return [(str(m), labels[m]) for m in self._MINUTES]

    def queryset(self, request, queryset):
        try:
            minutes = int(self.value() or 0)
        except ValueError:
            return queryset.none()
        if minutes <= 0:
            return queryset
        cutoff = request_now(request) - timedelta(minutes=minutes)
        return queryset.filter(state=Conversation.State.WAITING, waiting_since__lt=cutoff)


class IntentFilter(admin.SimpleListFilter):
    """The bot's intents (labels registered by the bot app), plus "unknown"."""

    title = _("intenção")
    parameter_name = "intencao"

    def lookups(self, request, model_admin):
        labels = hooks.labels("intent")
        if not labels:  # no bot installed: the values stored
            values = (
                Conversation.objects.exclude(intent="")
                .order_by("intent")
                .values_list("intent", flat=True)
                .distinct()
            )
            labels = {value: value for value in values}
        return [*labels.items(), ("-", _("Não identificada"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(intent="" if value == "-" else value)


class RequestKindFilter(admin.SimpleListFilter):
    title = _("tipo de demanda")
    parameter_name = "tipo"

    def lookups(self, request, model_admin):
        return [*Conversation.RequestKind.choices, ("-", _("Não classificada"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(request_kind="" if value == "-" else value)
