"""``/console/dashboard/``: the supervisors' live dashboard, its partial, JSON and CSV export.

Supervisors and admins only: anonymous users go to the log-in page, agents and the DPO get
403 (``access.console_required`` + ``dashboard.dashboard_allowed``). The page opens the
console's socket and subscribes to the dashboard group; on each "changed" notice it fetches
``live/`` — the same partial template as the first render, with the charts drawn as SVG on
the server. ``?from=AAAA-MM-DD&to=AAAA-MM-DD`` picks whole São Paulo days (default: today).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from conversations import access, charts, dashboard, hooks


def _supervisors_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not dashboard.dashboard_allowed(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return access.console_required(require_GET(wrapper))


def _period(request: HttpRequest) -> dashboard.Period:
    return dashboard.period_parse(request.GET.get("from"), request.GET.get("to"))


def _context(snapshot: dashboard.Snapshot) -> dict[str, Any]:
    figures = snapshot.figures
    csat_rows = [
        (f"{score} · {_csat_word(score)}", figures.csat.distribution[score])
        for score in range(5, 0, -1)
    ]
    return {
        "s": snapshot,
        "f": figures,
        "period_from": snapshot.period.first.isoformat(),
        "period_to": snapshot.period.last.isoformat(),
        "is_today": snapshot.period.first == snapshot.period.last == timezone.localdate(),
        "hours_chart": charts.columns(
            snapshot.by_hour,
            [f"{hour:02d}h" for hour in range(24)],
            title=_("Conversas abertas por hora"),
            label_every=3,
        ),
        "intent_chart": charts.rows(
            [(item.label, item.count) for item in snapshot.by_intent],
            title=_("Conversas por intenção"),
        ),
        "reasons_chart": charts.rows(
            [(item.label, item.count) for item in snapshot.escalation_reasons],
            title=_("Motivos de encaminhamento"),
        ),
        "csat_chart": charts.rows(
            csat_rows,
            title=_("Distribuição das notas"),
            label_width=150,
            css=[f"score-{score}" for score in range(5, 0, -1)],
        ),
        "containment_meter": charts.meter(figures.containment_rate),
        # Tiles of higher layers (isp: outages in progress and detection alerts).
        "extra_tiles": hooks.dashboard_tiles(),
    }


def _csat_word(score: int) -> str:
    return {
        5: _("Excelente"),
        4: _("Bom"),
        3: _("Regular"),
        2: _("Ruim"),
        1: _("Péssimo"),
    }[score]


@_supervisors_only
def dashboard_page(request: HttpRequest) -> HttpResponse:
    status, error = 200, ""
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:
        status, error, period = 400, exc.message, dashboard.period_today()
    snapshot = dashboard.dashboard_snapshot(user=request.user, period=period)
    context = _context(snapshot)
    context["period_error"] = error
    return render(request, "console/dashboard.html", context, status=status)


@_supervisors_only
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's body, re-rendered for a live refresh."""
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    snapshot = dashboard.dashboard_snapshot(user=request.user, period=period)
    return render(request, "console/partials/dashboard.html", _context(snapshot))


@_supervisors_only
def dashboard_snapshot(request: HttpRequest) -> HttpResponse:
    """The same figures as JSON (integrations, wall screens)."""
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:
        return JsonResponse({"code": "invalid_period", "message": exc.message}, status=400)
    snapshot = dashboard.dashboard_snapshot(user=request.user, period=period)
    return JsonResponse(dashboard.snapshot_as_json(snapshot))


def _number(value: float | None, digits: int = 1) -> str:
    """pt-BR decimal comma; empty when there is no figure."""
    if value is None:
        return ""
    return f"{value:.{digits}f}".replace(".", ",")


def _minutes(seconds: float | None) -> str:
    return _number(seconds / 60 if seconds is not None else None)


def csv_header() -> list[str]:
    return [
        _("Data"),
        _("Conversas abertas"),
        _("Encaminhadas para atendentes"),
        _("Encerradas"),
        _("Resolvidas pelo robô sem atendente"),
        _("Contenção do robô (%)"),
        _("Primeira resposta p50 (min)"),
        _("Primeira resposta p90 (min)"),
        _("Resolução p50 (min)"),
        _("Resolução p90 (min)"),
        _("Chegaram às pessoas"),
        _("Fora do prazo (SLA)"),
        _("Pesquisas de satisfação enviadas"),
        _("Avaliações recebidas"),
        _("CSAT médio (1 a 5)"),
        *[_("Notas %(score)d") % {"score": score} for score in range(1, 6)],
        _("Comentários"),
    ]


def csv_row(label: str, figures: dashboard.PeriodFigures) -> list[str]:
    csat = figures.csat
    return [
        label,
        str(figures.opened),
        str(figures.escalated),
        str(figures.closed),
        str(figures.closed_by_bot),
        _number(figures.containment_rate),
        _minutes(figures.first_response.p50),
        _minutes(figures.first_response.p90),
        _minutes(figures.resolution.p50),
        _minutes(figures.resolution.p90),
        str(figures.sla_started),
        str(figures.sla_breached),
        str(csat.requested),
        str(csat.answered),
        _number(csat.average, 2),
        *[str(csat.distribution[score]) for score in range(1, 6)],
        str(csat.comments),
    ]


@_supervisors_only
def dashboard_export(request: HttpRequest) -> HttpResponse:
    """The period's figures as CSV: one row per day and a total row.

    Excel-friendly for Brazil: UTF-8 with BOM, ``;`` between columns, decimal comma, dates as
    DD/MM/AAAA, durations in minutes.
    """
    try:
        period = _period(request)
    except dashboard.PeriodError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    days = dashboard.daily_figures(user=request.user, period=period)
    total = dashboard.period_figures(user=request.user, period=period)
    filename = f"painel-{period.first:%Y-%m-%d}_{period.last:%Y-%m-%d}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";", lineterminator="\r\n")
    writer.writerow(csv_header())
    for day, figures in days:
        writer.writerow(csv_row(day.strftime("%d/%m/%Y"), figures))
    writer.writerow(csv_row(_("Total do período"), total))
    return response
