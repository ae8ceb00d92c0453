"""The supervisors' bulk actions on conversations, with the small form each one needs.

Every action goes through ``services.conversation_supervise`` once per conversation: the rules
(who supervises which team, which transitions are allowed), the events and the live updates are
the console's. An action that needs input first shows an intermediate page (the chosen
conversations, the form); the page posts back to the list with ``apply`` and the same
selection, as Django's own "delete selected" does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Role, Team, User
from conversations import services
from conversations.models import Conversation
from conversations.services import SupervisorAction


def _staff_who_serve(user: User):
    """People a supervisor may hand conversations to: active agents and supervisors; for a
    supervisor, those of their own teams."""
    qs = User.objects.filter(
        is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR]
    ).distinct()
    if not (user.is_superuser or user.has_role(Role.ADMIN)):
        qs = qs.filter(teams__in=user.teams.all())
    return qs.order_by("username")


class _ActionForm(forms.Form):
    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)


class ReassignForm(_ActionForm):
    agent = forms.ModelChoiceField(label=_("atendente"), queryset=User.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = _staff_who_serve(self.user)


class TransferForm(_ActionForm):
    team = forms.ModelChoiceField(label=_("equipe"), queryset=Team.objects.none())
    agent = forms.ModelChoiceField(
        label=_("atendente (opcional)"),
        queryset=User.objects.none(),
        required=False,
        help_text=_("Vazio: a conversa volta à fila da equipe escolhida."),
    )
    note = forms.CharField(
        label=_("nota interna (opcional)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.filter(is_active=True).order_by("name")
        self.fields["agent"].queryset = (
            User.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.SUPERVISOR])
            .distinct()
            .order_by("username")
        )

    def clean(self):
        cleaned = super().clean()
        team, agent = cleaned.get("team"), cleaned.get("agent")
        if team and agent and not agent.teams.filter(pk=team.pk).exists():
            self.add_error("agent", _("Este atendente não é da equipe escolhida."))
        return cleaned


class PriorityForm(_ActionForm):
    priority = forms.TypedChoiceField(
        label=_("prioridade"), choices=Conversation.Priority.choices, coerce=int
    )


class CloseForm(_ActionForm):
    resolution = forms.ChoiceField(
        label=_("resolução"),
        choices=[
            (value, label)
            for value, label in Conversation.Resolution.choices
            if value != Conversation.Resolution.RESOLVED_BY_BOT
        ],
    )
    note = forms.CharField(
        label=_("nota de encerramento"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class RequestKindForm(_ActionForm):
    request_kind = forms.ChoiceField(
        label=_("tipo de demanda"),
        choices=Conversation.RequestKind.choices,
        help_text=_("Define o prazo da Anatel para a demanda."),
    )


@dataclass(frozen=True)
class ActionSpec:
    action: str
    title: Any
    form: type[_ActionForm] | None
    params: Callable[[dict[str, Any]], dict[str, Any]]
    done: Any


ACTIONS: dict[str, ActionSpec] = {
    "reassign_conversations": ActionSpec(
        SupervisorAction.REASSIGN,
        _("Reatribuir a um atendente"),
        ReassignForm,
        lambda d: {"agent": d["agent"]},
        _("atribuída"),
    ),
    "transfer_conversations": ActionSpec(
        SupervisorAction.TRANSFER,
        _("Transferir para uma equipe"),
        TransferForm,
        lambda d: {"team": d["team"], "agent": d.get("agent"), "note": d.get("note") or ""},
        _("transferida"),
    ),
    "change_priority": ActionSpec(
        SupervisorAction.PRIORITY,
        _("Alterar a prioridade"),
        PriorityForm,
        lambda d: {"priority": d["priority"]},
        _("com prioridade alterada"),
    ),
    "close_conversations": ActionSpec(
        SupervisorAction.CLOSE,
        _("Encerrar com resolução"),
        CloseForm,
        lambda d: {"resolution": d["resolution"], "note": d.get("note") or ""},
        _("encerrada"),
    ),
    "return_to_queue": ActionSpec(
        SupervisorAction.RETURN_TO_QUEUE,
        _("Devolver à fila"),
        None,
        lambda d: {},
        _("devolvida à fila"),
    ),
    "set_request_kind": ActionSpec(
        SupervisorAction.REQUEST_KIND,
        _("Definir o tipo de demanda (prazo Anatel)"),
        RequestKindForm,
        lambda d: {"request_kind": d["request_kind"]},
        _("classificada"),
    ),
}


def run(modeladmin, request, queryset, name: str):
    """Run action ``name`` on the selected conversations: the form first when it needs one,
    then the service for each conversation; report what changed, what was refused and why,
    and what was ignored (selected but not among the conversations the user may see)."""
    spec = ACTIONS[name]
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    conversations = list(queryset.select_related("team", "assigned_agent").order_by("pk"))
    data: dict[str, Any] = {}
    if spec.form is not None:
        if "apply" not in request.POST:
            form = spec.form(user=request.user)
            return _intermediate(modeladmin, request, spec, name, conversations, form)
        form = spec.form(request.POST, user=request.user)
        if not form.is_valid():
            return _intermediate(modeladmin, request, spec, name, conversations, form)
        data = form.cleaned_data
    changed = 0
    for conversation in conversations:
        try:
            services.conversation_supervise(
                conversation=conversation,
                actor=request.user,
                action=spec.action,
                **spec.params(data),
            )
        except services.ServiceError as error:
            modeladmin.message_user(
                request,
                _("%(protocol)s: %(reason)s")
                % {"protocol": conversation.protocol, "reason": error.message},
                messages.ERROR,
            )
            continue
        changed += 1
    if changed:
        modeladmin.message_user(
            request,
            ngettext("%(n)d conversa %(done)s.", "%(n)d conversas: %(done)s.", changed)
            % {"n": changed, "done": spec.done},
            messages.SUCCESS,
        )
    ignored = len(set(selected) - {str(c.pk) for c in conversations}) if selected else 0
    if ignored:
        modeladmin.message_user(
            request,
            ngettext(
                "%(n)d conversa ignorada: fora das conversas que você pode ver.",
                "%(n)d conversas ignoradas: fora das conversas que você pode ver.",
                ignored,
            )
            % {"n": ignored},
            messages.WARNING,
        )
    return None


def _intermediate(modeladmin, request, spec: ActionSpec, name: str, conversations, form):
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": spec.title,
        "opts": opts,
        "action_name": name,
        "form": form,
        "conversations": conversations,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return TemplateResponse(
        request, "admin/conversations/conversation/action_form.html", context, status=status
    )


def make_admin_action(name: str):
    """The ModelAdmin action for ``name`` (shown to supervisors and admins only)."""
    from django.contrib import admin

    spec = ACTIONS[name]

    @admin.action(description=spec.title, permissions=["supervise"])
    def action(modeladmin, request, queryset):
        return run(modeladmin, request, queryset, name)

    action.__name__ = name
    return action


__all__ = ["ACTIONS", "make_admin_action", "run"]
