"""Template helpers for the console: system lines, previews, delivery ticks, media."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from conversations.models import Conversation, ConversationEvent, Message

register = template.Library()

# gettext_noop marks them for makemessages; they are translated where shown.
REASONS = {
    "claim": gettext_noop("assumida pelo atendente"),
    "manual": gettext_noop("atribuição manual"),
    "assigned_by_supervisor": gettext_noop("atribuída pela supervisão"),
    "auto_previous_agent": gettext_noop("automática: atendente anterior do cliente"),
    "auto_least_loaded": gettext_noop("automática: atendente com menos conversas"),
    "agent_offline": gettext_noop("atendente ficou offline"),
    "agent_away": gettext_noop("atendente ficou ausente"),
    "transfer": gettext_noop("transferência"),
    "returned_by_supervisor": gettext_noop("devolvida pela supervisão"),
    "demo": gettext_noop("demonstração"),
}


def reason_label(reason: Any) -> str:
    if not reason:
        return ""
    label = REASONS.get(str(reason))
    return _(label) if label else str(reason).replace("_", " ")


@register.simple_tag
def event_line(event: ConversationEvent, names: dict[str, Any]) -> str:
    """The system line for an event (no customer text: events never hold any)."""
    data = event.data or {}
    users = names.get("users", {}) if names else {}
    teams = names.get("teams", {}) if names else {}
    actor = event.actor.get_full_name() or event.actor.username if event.actor else ""
    kind = event.kind
    K = ConversationEvent.Kind
    if kind == K.OPENED:
        return _("Conversa aberta")
    if kind == K.ESCALATED:
        parts = [_("Encaminhada para atendimento humano")]
        if data.get("reason"):
            parts.append(_("motivo: %(reason)s") % {"reason": reason_label(data["reason"])})
        if data.get("intent"):
            parts.append(_("intenção: %(intent)s") % {"intent": data["intent"]})
        if data.get("sentiment"):
            parts.append(_("sentimento: %(s)s") % {"s": data["sentiment"]})
        if data.get("outside_hours_until"):
            with contextlib.suppress(TypeError, ValueError):
                back = timezone.localtime(datetime.fromisoformat(data["outside_hours_until"]))
                parts.append(
                    _("fora do horário: cliente avisado da volta em %(when)s")
                    % {"when": back.strftime("%d/%m %H:%M")}
                )
        return " · ".join(parts)
    if kind == K.CLASSIFIED:
        labels = dict(Conversation.RequestKind.choices)
        text = _("Tipo de demanda: %(kind)s") % {"kind": labels.get(data.get("to"), "?")}
        if actor:
            text += " · " + _("por %(actor)s") % {"actor": actor}
        return text
    if kind == K.BOT_DECISION:
        parts = [_("Robô")]
        if data.get("intent"):
            parts.append(_("intenção: %(intent)s") % {"intent": data["intent"]})
        if data.get("sentiment"):
            parts.append(_("sentimento: %(s)s") % {"s": data["sentiment"]})
        if data.get("confidence") is not None:
            with contextlib.suppress(TypeError, ValueError):
                parts.append(
                    _("confiança: %(c)d%%") % {"c": round(float(data["confidence"]) * 100)}
                )
        action = data.get("action") or data.get("decision")
        if action:
            parts.append(_("decisão: %(a)s") % {"a": action})
        if data.get("escalate") or data.get("escalated"):
            why = data.get("reason") or data.get("escalation_reason") or ""
            parts.append(_("escalou: %(why)s") % {"why": why} if why else _("escalou"))
        elif data.get("reason"):
            parts.append(_("motivo: %(why)s") % {"why": data["reason"]})
        return " · ".join(parts)
    if kind == K.ASSIGNED:
        who = users.get(str(data.get("agent_id")), _("atendente"))
        text = _("Atribuída a %(who)s") % {"who": who}
        if data.get("reason"):
            text += f" · {reason_label(data['reason'])}"
        if actor and data.get("reason") not in ("claim",):
            text += " · " + _("por %(actor)s") % {"actor": actor}
        return text
    if kind == K.UNASSIGNED:
        text = _("Devolvida à fila")
        if data.get("reason"):
            text += f" · {reason_label(data['reason'])}"
        return text
    if kind == K.TRANSFERRED:
        targets = []
        if data.get("to_team_id") and data.get("to_team_id") != data.get("from_team_id"):
            targets.append(teams.get(data["to_team_id"], _("outra equipe")))
        if data.get("to_agent_id"):
            targets.append(users.get(str(data["to_agent_id"]), _("atendente")))
        text = _("Transferida para %(to)s") % {"to": " / ".join(targets) or _("a fila")}
        if actor:
            text += " · " + _("por %(actor)s") % {"actor": actor}
        return text
    if kind == K.PRIORITY:
        labels = dict(Conversation.Priority.choices)
        return _("Prioridade: %(old)s → %(new)s") % {
            "old": labels.get(data.get("from"), "?"),
            "new": labels.get(data.get("to"), "?"),
        }
    if kind == K.DELIVERY_FAILED:
        return _("Falha de entrega (código %(code)s)") % {"code": data.get("error_code") or "?"}
    if kind == K.CLOSED:
        labels = dict(Conversation.Resolution.choices)
        text = _("Encerrada · %(r)s") % {"r": labels.get(data.get("resolution"), "")}
        if actor:
            text += " · " + _("por %(actor)s") % {"actor": actor}
        return text
    return event.get_kind_display()


TYPE_PREVIEW = {
    "image": gettext_noop("📷 Imagem"),
    "audio": gettext_noop("🎤 Áudio"),
    "video": gettext_noop("🎬 Vídeo"),
    "document": gettext_noop("📄 Documento"),
    "sticker": gettext_noop("Figurinha"),
    "location": gettext_noop("📍 Localização"),
    "contacts": gettext_noop("👤 Contato"),
    "reaction": gettext_noop("Reação"),
    "order": gettext_noop("🛒 Pedido"),
    "unsupported": gettext_noop("Mensagem não suportada"),
}


@register.filter
def preview(message: Message | None) -> str:
    """A one-line preview of a message for the inbox."""
    if message is None:
        return ""
    if message.deleted_by_customer_at:
        return _("Mensagem apagada")
    text = (message.text or "").strip().replace("\n", " ")
    if message.type in TYPE_PREVIEW:
        label = _(TYPE_PREVIEW[message.type])
        if message.type == "reaction":
            emoji = (message.payload.get("reaction") or {}).get("emoji", "")
            return f"{label} {emoji}".strip()
        return f"{label}: {text[:80]}" if text else label
    if not text and message.type == "interactive":
        return interactive_reply_title(message) or _("Mensagem interativa")
    if not text and message.type == "button":
        return (message.payload.get("button") or {}).get("text", "")
    return text[:120]


@register.filter
def interactive_reply_title(message: Message) -> str:
    interactive = (message.payload or {}).get("interactive") or {}
    for key in ("button_reply", "list_reply"):
        if isinstance(interactive.get(key), dict):
            return interactive[key].get("title", "")
    if isinstance(interactive.get("nfm_reply"), dict):
        return _("Formulário respondido")
    return ""


@register.filter
def interactive_options(message: Message) -> list[str]:
    """Button titles / list rows of an interactive message we sent."""
    interactive = (message.payload or {}).get("interactive") or {}
    action = interactive.get("action") or {}
    options = [b.get("reply", {}).get("title", "") for b in action.get("buttons", []) or []]
    for section in action.get("sections", []) or []:
        options += [row.get("title", "") for row in section.get("rows", []) or []]
    return [o for o in options if o]


TICKS = {
    "pending": ("🕓", gettext_noop("Enviando")),
    "sent": ("✓", gettext_noop("Enviada")),
    "delivered": ("✓✓", gettext_noop("Entregue")),
    "read": ("✓✓", gettext_noop("Lida")),
    "played": ("✓✓", gettext_noop("Reproduzida")),
    "failed": ("!", gettext_noop("Falhou")),
}


@register.simple_tag
def ticks(message: Message) -> str:
    if message.direction != Message.Direction.OUTBOUND:
        return ""
    symbol, label = TICKS.get(message.status, ("", message.status))
    title = _(label)
    if message.status == "failed":
        reason = message.error_title or _("erro desconhecido")
        if message.error_code:
            reason = f"{reason} ({message.error_code})"
        title = f"{title}: {reason}"
    return format_html(
        '<span class="ticks ticks-{}" title="{}" aria-label="{}">{}</span>',
        message.status,
        title,
        title,
        symbol,
    )


@register.filter
def location_url(message: Message) -> str:
    location = (message.payload or {}).get("location") or {}
    try:
        lat = float(location.get("latitude"))
        lon = float(location.get("longitude"))
    except (TypeError, ValueError):
        return ""
    query = urlencode({"mlat": f"{lat:.6f}", "mlon": f"{lon:.6f}"})
    return f"https://www.openstreetmap.org/?{query}#map=17/{lat:.6f}/{lon:.6f}"


@register.filter
def location_label(message: Message) -> str:
    location = (message.payload or {}).get("location") or {}
    return location.get("name") or location.get("address") or _("Ver no mapa")


@register.filter
def contact_cards(message: Message) -> list[dict[str, str]]:
    cards = []
    for contact in (message.payload or {}).get("contacts") or []:
        name = (contact.get("name") or {}).get("formatted_name", "")
        phones = ", ".join(p.get("phone", "") for p in contact.get("phones") or [])
        cards.append({"name": name, "phones": phones})
    return cards


@register.filter
def filesize(value: int | None) -> str:
    if not value:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}".replace(".", ",")
        size /= 1024
    return ""


@register.filter
def sender_name(message: Message) -> str:
    if message.sender_kind == Message.SenderKind.AGENT and message.sender_user:
        return message.sender_user.get_full_name() or message.sender_user.username
    if message.sender_kind == Message.SenderKind.BOT:
        return _("Robô")
    if message.sender_kind == Message.SenderKind.SYSTEM:
        return _("Sistema")
    return ""


@register.filter
def window_expires_iso(conversation: Conversation) -> str:
    expires = conversation.window_expires_at
    return expires.isoformat() if expires else ""


@register.filter
def iso(value) -> str:
    return value.isoformat() if value else ""


@register.filter
def priority_class(conversation: Conversation) -> str:
    return {0: "low", 1: "normal", 2: "high", 3: "urgent"}.get(conversation.priority, "normal")


@register.filter
def ago(value) -> str:
    """Elapsed time, short: "agora", "5 min", "2 h 10", "3 d"."""
    if not value:
        return ""
    from django.utils import timezone

    seconds = max(0, int((timezone.now() - value).total_seconds()))
    if seconds < 60:
        return _("agora")
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest:02d}" if rest else f"{hours} h"
    return f"{hours // 24} d"


@register.filter
def window_left(conversation: Conversation) -> str:
    """Time left in the 24-hour window: "23h 10m", or "encerrada"."""
    expires = conversation.window_expires_at
    if expires is None:
        return _("sem janela")
    from django.utils import timezone

    seconds = int((expires - timezone.now()).total_seconds())
    if seconds <= 0 or conversation.template_required:
        return _("janela encerrada")
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    return f"{hours}h {minutes:02d}m"


@register.filter
def window_state(conversation: Conversation) -> str:
    expires = conversation.window_expires_at
    if expires is None or conversation.template_required:
        return "closed"
    from django.utils import timezone

    seconds = (expires - timezone.now()).total_seconds()
    if seconds <= 0:
        return "closed"
    return "ending" if seconds < 3 * 3600 else "open"


def decorate_rows(rows, user, labels: dict[str, str]) -> None:
    """Compute what an inbox row shows once, in Python (``row.html`` reads ``c.v``): the same
    filters as above, without hundreds of template look-ups per page."""
    for c in rows:
        last = c.last_message
        sender = ""
        if last is not None and last.direction == Message.Direction.OUTBOUND:
            if last.sender_kind == Message.SenderKind.BOT:
                sender = labels["bot"]
            elif last.sender_kind == Message.SenderKind.SYSTEM:
                sender = labels["system"]
            elif last.sender_user_id == getattr(user, "pk", None):
                sender = labels["you"]
            else:
                sender = labels["team_member"]
        since = c.waiting_since if c.state == Conversation.State.WAITING else c.last_message_at
        agent = c.assigned_agent
        c.v = {
            "prio": priority_class(c),
            "since_iso": iso(since),
            "since_title": labels["waiting_since"]
            if c.state == Conversation.State.WAITING
            else labels["last_message"],
            "ago": ago(since),
            "sender": sender,
            "preview": preview(last),
            "agent": (agent.first_name or agent.username) if agent else "",
            "window_state": window_state(c),
            "window_iso": window_expires_iso(c),
            "window_left": window_left(c),
        }


@register.filter
def seconds_short(value: float | None) -> str:
    """A duration for the dashboard: "45 s", "12 min", "2 h 05", "3 d 4 h"; "—" when none."""
    if value is None:
        return "—"
    seconds = max(0, round(value))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def percent(value: float | None) -> str:
    """ "37,5%" (pt-BR decimal comma), "—" when there is no figure."""
    if value is None:
        return "—"
    return f"{value:.1f}".replace(".", ",") + "%"


@register.filter
def decimal1(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}".replace(".", ",")
