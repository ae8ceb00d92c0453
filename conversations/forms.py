"""Console forms: parse and validate what agents post; the rules themselves live in services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from conversations.models import Conversation, Message


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Mensagem"),
        required=False,
        max_length=4096,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)
    attachment = forms.FileField(label=_("Anexo"), required=False)

    def __init__(self, *args, conversation: Conversation | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conversation = conversation

    def clean_reply_to(self) -> Message | None:
        pk = self.cleaned_data.get("reply_to")
        if not pk:
            return None
        message = Message.objects.filter(pk=pk, conversation=self.conversation).first()
        if message is None:
            raise forms.ValidationError(_("A mensagem citada não é desta conversa."))
        return message

    def clean(self):
        data = super().clean()
        if not (data.get("text") or "").strip() and not data.get("attachment"):
            raise forms.ValidationError(_("Escreva a mensagem ou anexe um arquivo."))
        return data


class TemplateSendForm(forms.Form):
    template = forms.IntegerField(label=_("Modelo"))
    params = forms.CharField(required=False)  # one per line is not used; see the view


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Nota interna"), max_length=4000)


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(
        label=_("Prioridade"), choices=Conversation.Priority.choices, coerce=int
    )


class CloseForm(forms.Form):
    resolution = forms.ChoiceField(
        label=_("Resolução"),
        choices=[
            c
            for c in Conversation.Resolution.choices
            if c[0] != Conversation.Resolution.RESOLVED_BY_BOT
        ],
    )
    note = forms.CharField(label=_("Nota de encerramento"), required=False, max_length=4000)


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(
        label=_("Atendente"), queryset=User.objects.filter(is_active=True), to_field_name="pk"
    )


class TransferForm(forms.Form):
    team = forms.ModelChoiceField(
        label=_("Equipe"), queryset=Team.objects.filter(is_active=True), required=False
    )
    agent = forms.ModelChoiceField(
        label=_("Atendente"), queryset=User.objects.filter(is_active=True), required=False
    )
    note = forms.CharField(label=_("Nota para quem recebe"), required=False, max_length=4000)

    def clean(self):
        data = super().clean()
        if not data.get("team") and not data.get("agent"):
            raise forms.ValidationError(_("Escolha uma equipe ou um atendente."))
        return data
