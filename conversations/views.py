"""The agents' console at ``/console/``: server-rendered pages, partials for live updates, actions.

Every view goes through ``access.console_required`` (log-in + role) and reads conversations
through the selectors that encode who may see what (others' conversations answer 404). Actions
call one service; refusals come back as the service's message with a fitting status (403, 409,
400): as JSON ``{"code", "message"}`` for the console's scripts (``X-Requested-With: fetch``),
or as the page with the error for a plain form post.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role, Team, User
from conversations import access, hooks, selectors, services
from conversations.forms import (
    AssignForm,
    CloseForm,
    NoteForm,
    PriorityForm,
    ReplyForm,
    TransferForm,
)
from conversations.models import Conversation, Message
from conversations.templatetags.console import decorate_rows
from ispsupport.security import client_ip

ERROR_STATUS: dict[type[services.ServiceError], int] = {
    services.ActionNotAllowed: 403,
    services.AgentNotAllowed: 403,
    services.AlreadyAssigned: 409,
    services.InvalidTransition: 409,
    services.WindowClosed: 409,
    services.InvalidInput: 400,
}


EMOJIS = [
    "😊",
    "🙂",
    "😉",
    "👍",
    "🙏",
    "👋",
    "✅",
    "⚠️",
    "📶",
    "🔧",
    "📅",
    "💳",
    "🧾",
    "📞",
    "🏠",
    "⏳",
    "😀",
    "😅",
    "😢",
    "❤️",
]


def error_status(error: services.ServiceError) -> int:
    for cls in type(error).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 400


def _is_fetch(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


# --- log-in (Django's auth views: the seam for 2FA) ---------------------------------------------


def console_login(request: HttpRequest) -> HttpResponse:
    """``/console/login/`` goes to the project's one log-in page, coming back to the console."""
    return redirect_to_login(
        request.GET.get("next") or reverse("console:inbox"), access.console_login_url()
    )


class ConsoleLogoutView(auth_views.LogoutView):
    next_page = "console:login"


# --- pages --------------------------------------------------------------------------------------


def row_labels() -> dict[str, str]:
    """Words every inbox row repeats, translated once per page rather than once per row."""
    return {
        "url": reverse("console:conversation", args=[0])[: -len("0/")],
        "waiting_since": _("Aguardando há"),
        "last_message": _("Última mensagem"),
        "bot": _("Robô:"),
        "system": _("Sistema:"),
        "you": _("Você:"),
        "team_member": _("Equipe:"),
        "bot_badge": _("Robô"),
        "agent": _("Atendente"),
        "closed": _("Encerrada"),
        "window": _("Janela de 24 horas do WhatsApp"),
        "unread": _("não lidas"),
    }


def _queue_from(request: HttpRequest) -> str:
    queue = request.GET.get("queue") or request.session.get("console_queue") or "waiting"
    if queue not in selectors.queues_for_user(request.user):
        queue = selectors.Queue.WAITING
    request.session["console_queue"] = queue
    return queue


def _inbox_context(request: HttpRequest) -> dict[str, Any]:
    queue = _queue_from(request)
    search = (request.GET.get("s") or "").strip()[:100]
    page = selectors.conversation_list_for_user(
        user=request.user, queue=queue, search=search, with_counts=True
    )
    labels = row_labels()
    decorate_rows(page.rows, request.user, labels)
    return {
        "page": page,
        "queue": queue,
        "search": search,
        "queues": _queue_tabs(request.user, page.counts),
        "is_supervisor": access.user_is_supervisor(request.user),
        "latest_seq": selectors.live_event_latest_seq(),
        "now": timezone.now(),
        "labels": labels,
    }


def _queue_tabs(user: User, counts: dict[str, int]) -> list[dict[str, Any]]:
    labels = {
        "waiting": _("Aguardando"),
        "mine": _("Minhas"),
        "teams": _("Minhas equipes"),
        "all": _("Todas"),
    }
    keys = {"waiting": "1", "mine": "2", "teams": "3", "all": "4"}
    return [
        {"key": q, "label": labels[q], "count": counts.get(q), "shortcut": keys[q]}
        for q in selectors.queues_for_user(user)
    ]


@access.console_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    context = _inbox_context(request)
    if context["is_supervisor"]:
        context["board"] = selectors.presence_board(user=request.user)
    return render(request, "console/inbox.html", context)


def _reply_mode(user: User, conversation: Conversation) -> str:
    if conversation.state == Conversation.State.CLOSED:
        return "closed"
    if not services.conversation_may_handle(user=user, conversation=conversation):
        return "claim"
    if conversation.state != Conversation.State.ASSIGNED:
        return "claim"
    if conversation.template_required or not conversation.window_is_open():
        return "template"
    return "free"


def _panel_context(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    user = request.user
    mode = _reply_mode(user, conversation)
    canned = []
    if mode == "free":
        for response in selectors.canned_responses_for_user(user=user, conversation=conversation):
            canned.append(
                {
                    "shortcut": response.shortcut,
                    "title": response.title,
                    "text": selectors.canned_render(
                        body=response.body, conversation=conversation, agent=user
                    ),
                }
            )
    templates = hooks.approved_templates() if mode == "template" else []
    is_supervisor = access.user_is_supervisor(user)
    return {
        "conversation": conversation,
        "mode": mode,
        "may_handle": services.conversation_may_handle(user=user, conversation=conversation),
        "is_supervisor": is_supervisor,
        "canned": canned,
        "templates": templates,
        "teams": list(Team.objects.filter(is_active=True).order_by("name")),
        "agents": _console_agents(),
        "priorities": Conversation.Priority.choices,
        "resolutions": CloseForm.base_fields["resolution"].choices,
        "emojis": EMOJIS,
    }


def _console_agents() -> list[User]:
    return list(
        User.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR])
        .distinct()
        .order_by("first_name", "username")
    )


def _conversation_context(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    context = _inbox_context(request)
    timeline = selectors.conversation_timeline(conversation=conversation)
    context.update(_panel_context(request, conversation))
    context.update(
        {
            "timeline": timeline,
            "names": _names_for(timeline.items),
            "previous": selectors.customer_previous_conversations(
                user=request.user, conversation=conversation
            ),
        }
    )
    return context


def _names_for(items: list[selectors.TimelineItem]) -> dict[str, Any]:
    """Staff and team names the system lines mention (two queries for the whole page)."""
    user_ids: set[str] = set()
    team_ids: set[int] = set()
    for item in items:
        if item.kind != "event":
            continue
        data = item.obj.data or {}
        for key in ("agent_id", "previous_agent_id", "from_agent_id", "to_agent_id"):
            if data.get(key):
                user_ids.add(str(data[key]))
        for key in ("from_team_id", "to_team_id"):
            if isinstance(data.get(key), int):
                team_ids.add(data[key])
    users = {}
    if user_ids:
        valid = []
        for raw in user_ids:
            try:
                valid.append(uuid.UUID(raw))
            except ValueError:
                continue
        users = {
            str(u.pk): u.get_full_name() or u.username for u in User.objects.filter(pk__in=valid)
        }
    teams = {}
    if team_ids:
        teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    return {"users": users, "teams": teams}


def _get_conversation(request: HttpRequest, pk: int) -> Conversation:
    try:
        return selectors.conversation_get_for_user(user=request.user, pk=pk)
    except Conversation.DoesNotExist:
        raise Http404 from None


def _shown(request: HttpRequest, conversation: Conversation, *, repeat: bool = True) -> None:
    """The personal-data access log for a page (or live partial) showing ``conversation``."""
    selectors.conversation_shown_to_staff(
        user=request.user, conversation=conversation, ip=client_ip(request) or None, repeat=repeat
    )


@access.console_required
@require_GET
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _get_conversation(request, pk)
    _shown(request, conversation, repeat=False)
    if services.conversation_mark_read(conversation=conversation, user=request.user):
        hooks.send_read_receipts_on_commit(conversation.pk)
    return render(
        request, "console/conversation.html", _conversation_context(request, conversation)
    )


# --- partials (the same templates as the first page load) ---------------------------------------


@access.console_required
@require_GET
def list_partial(request: HttpRequest) -> HttpResponse:
    queue = request.GET.get("queue") or "waiting"
    if queue not in selectors.queues_for_user(request.user):
        raise Http404
    search = (request.GET.get("s") or "").strip()[:100]
    try:
        limit = int(request.GET.get("limit") or 50)
    except ValueError:
        limit = 50
    try:
        page = selectors.conversation_list_for_user(
            user=request.user,
            queue=queue,
            search=search,
            cursor=request.GET.get("cursor") or None,
            limit=limit,
            with_counts=not request.GET.get("cursor"),
        )
    except selectors.InvalidCursor:
        return HttpResponse(status=400)
    labels = row_labels()
    decorate_rows(page.rows, request.user, labels)
    response = render(
        request,
        "console/partials/rows.html",
        {
            "page": page,
            "queue": queue,
            "search": search,
            "now": timezone.now(),
            "labels": labels,
        },
    )
    if page.counts:
        response["X-Queue-Counts"] = ",".join(f"{k}={v}" for k, v in page.counts.items())
    return response


@access.console_required
@require_GET
def row_partial(request: HttpRequest, pk: int) -> HttpResponse:
    """One inbox row: 200 when it belongs in ``?queue=``, 204 when it does not, 404 unseen."""
    conversation = _get_conversation(request, pk)
    queue = request.GET.get("queue") or "waiting"
    if not selectors.conversation_in_queue(
        user=request.user, conversation_id=conversation.pk, queue=queue
    ):
        return HttpResponse(status=204)
    labels = row_labels()
    decorate_rows([conversation], request.user, labels)
    return render(
        request,
        "console/partials/row.html",
        {"c": conversation, "queue": queue, "now": timezone.now(), "labels": labels},
    )


@access.console_required
@require_GET
def timeline_partial(request: HttpRequest, pk: int) -> HttpResponse:
    """Older items (``?before=<cursor>``) or items since a time (``?since=<iso>``)."""
    conversation = _get_conversation(request, pk)
    _shown(request, conversation)
    since = parse_datetime(request.GET.get("since") or "") if request.GET.get("since") else None
    try:
        timeline = selectors.conversation_timeline(
            conversation=conversation, before=request.GET.get("before") or None, since=since
        )
    except selectors.InvalidCursor:
        return HttpResponse(status=400)
    return render(
        request,
        "console/partials/timeline.html",
        {
            "conversation": conversation,
            "timeline": timeline,
            "names": _names_for(timeline.items),
            "may_handle": services.conversation_may_handle(
                user=request.user, conversation=conversation
            ),
        },
    )


@access.console_required
@require_GET
def message_partial(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        message = selectors.message_get_for_user(user=request.user, pk=pk)
    except Message.DoesNotExist:
        raise Http404 from None
    if message.type == Message.Type.REACTION:
        return HttpResponse(status=204)
    _shown(request, message.conversation)
    return render(
        request,
        "console/partials/message.html",
        {
            "m": message,
            "conversation": message.conversation,
            "may_handle": services.conversation_may_handle(
                user=request.user, conversation=message.conversation
            ),
        },
    )


@access.console_required
@require_GET
def panel_partial(request: HttpRequest, pk: int) -> HttpResponse:
    """The conversation header, actions and reply box (re-rendered on state changes)."""
    conversation = _get_conversation(request, pk)
    _shown(request, conversation)
    return render(request, "console/partials/panel.html", _panel_context(request, conversation))


@access.console_required
@require_GET
def sidebar_partial(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _get_conversation(request, pk)
    _shown(request, conversation)
    return render(
        request,
        "console/partials/sidebar.html",
        {
            "conversation": conversation,
            "previous": selectors.customer_previous_conversations(
                user=request.user, conversation=conversation
            ),
        },
    )


@access.console_required
@require_GET
def presence_partial(request: HttpRequest) -> HttpResponse:
    if not access.user_is_supervisor(request.user):
        raise PermissionDenied
    return render(
        request,
        "console/partials/presence.html",
        {"board": selectors.presence_board(user=request.user)},
    )


# --- actions ------------------------------------------------------------------------------------


def _done(request: HttpRequest, conversation: Conversation, note: str = "") -> HttpResponse:
    if _is_fetch(request):
        return JsonResponse({"ok": True, "conversation": conversation.pk})
    if note:
        messages.success(request, note)
    return redirect("console:conversation", pk=conversation.pk)


def _refused(
    request: HttpRequest,
    conversation: Conversation,
    error: services.ServiceError | str,
    status: int,
) -> HttpResponse:
    if isinstance(error, services.ServiceError):
        code, message = error.code, str(error.message)
    else:
        code, message = "invalid_input", str(error)
    if _is_fetch(request):
        return JsonResponse({"code": code, "message": message}, status=status)
    conversation.refresh_from_db()
    context = _conversation_context(request, conversation)
    context["action_error"] = message
    return render(request, "console/conversation.html", context, status=status)


def _form_error(form) -> str:
    for errors in form.errors.values():
        return str(errors[0])
    return _("Dados inválidos.")


def _action(request: HttpRequest, pk: int, run) -> HttpResponse:
    conversation = _get_conversation(request, pk)
    try:
        note = run(conversation)
    except services.ServiceError as error:
        return _refused(request, conversation, error, error_status(error))
    except _FormInvalid as invalid:
        return _refused(request, conversation, invalid.message, 400)
    return _done(request, conversation, note or "")


class _FormInvalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _valid(form):
    if not form.is_valid():
        raise _FormInvalid(_form_error(form))
    return form.cleaned_data


@access.console_required
@require_POST
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        services.conversation_claim(conversation=conversation, agent=request.user)
        return _("Conversa assumida.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        data = _valid(AssignForm(request.POST))
        services.conversation_assign_by_staff(
            conversation=conversation, agent=data["agent"], actor=request.user
        )
        return _("Conversa atribuída.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def transfer(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        data = _valid(TransferForm(request.POST))
        services.conversation_transfer(
            conversation=conversation,
            actor=request.user,
            team=data.get("team"),
            agent=data.get("agent"),
            note=data.get("note") or "",
        )
        return _("Conversa transferida.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def reply(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        form = ReplyForm(request.POST, request.FILES, conversation=conversation)
        data = _valid(form)
        message = services.message_send_by_agent(
            conversation=conversation,
            agent=request.user,
            text=data.get("text") or "",
            reply_to=data.get("reply_to"),
            attachment=data.get("attachment"),
        )
        request._sent_message_id = message.pk
        return ""

    response = _action(request, pk, run)
    if _is_fetch(request) and response.status_code == 200:
        return JsonResponse({"ok": True, "message": getattr(request, "_sent_message_id", None)})
    return response


@access.console_required
@require_POST
def send_template(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        try:
            template_id = int(request.POST.get("template") or 0)
        except ValueError:
            template_id = 0
        template = next((t for t in hooks.approved_templates() if t.id == template_id), None)
        if template is None:
            raise _FormInvalid(_("Escolha um modelo aprovado."))
        params = [
            request.POST.get(f"param_{i}", "") for i in range(1, template.parameter_count + 1)
        ]
        services.message_send_template_by_agent(
            conversation=conversation,
            agent=request.user,
            name=template.name,
            language=template.language,
            body_text=template.body_text,
            parameters=params,
        )
        return _("Modelo enviado.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def add_note(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        data = _valid(NoteForm(request.POST))
        services.note_add(conversation=conversation, author=request.user, text=data["text"])
        return _("Nota registrada.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def set_priority(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        data = _valid(PriorityForm(request.POST))
        services.conversation_set_priority(
            conversation=conversation, priority=data["priority"], actor=request.user
        )
        return _("Prioridade alterada.")

    return _action(request, pk, run)


@access.console_required
@require_POST
def close(request: HttpRequest, pk: int) -> HttpResponse:
    def run(conversation):
        data = _valid(CloseForm(request.POST))
        services.conversation_close_by_staff(
            conversation=conversation,
            actor=request.user,
            resolution=data["resolution"],
            note=data.get("note") or "",
        )
        return _("Conversa encerrada.")

    return _action(request, pk, run)
