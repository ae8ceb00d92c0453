"""Forms of the account pages (pt-BR labels)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiToken


class OTPTokenForm(forms.Form):
    token = forms.CharField(
        label=_("Código de verificação"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text=_("Os 6 dígitos do aplicativo autenticador, ou um código de recuperação."),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].strip().replace(" ", "").lower()


def _expiry_choices() -> list[tuple[int, str]]:
    days = [d for d in (7, 30, 90, 180, 365) if d <= settings.API_TOKEN_MAX_DAYS]
    return [(d, _("%(d)s dias") % {"d": d}) for d in days]


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(label=_("Nome"), max_length=100)
    scope = forms.ChoiceField(
        label=_("Escopo"), choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ
    )
    expires_in_days = forms.TypedChoiceField(
        label=_("Validade"), coerce=int, choices=_expiry_choices, initial=90
    )
