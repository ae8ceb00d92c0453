"""accounts' personal data (staff, not customers), declared for the compliance registry.

accounts sits below compliance in the layers and may not import it, so this module only
*declares* (plain data); compliance's ``AppConfig.ready()`` reads ``STAFF_DATA`` and registers
the provider. Staff are not data subjects of customers' requests: nothing is found by customer.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

STAFF_DATA = {
    "key": "accounts.staff",
    "label": _("Colaboradores (usuários do sistema)"),
    "purpose": _("Autenticar e identificar quem atende, supervisiona e administra"),
    # model label → {field: category} (categories are compliance.registry.Category values)
    "fields": {
        "accounts.user": {
            "username": "staff",
            "first_name": "staff",
            "last_name": "staff",
            "email": "staff",
        },
        "accounts.usersession": {
            "session_key": "staff",
            "user_agent": "technical",
            "ip_address": "technical",
        },
        # the authenticator app's secret (encrypted) and the name given to the phone
        "accounts.authenticatordevice": {"key": "staff", "name": "technical"},
    },
    "exempt": {
        "accounts.team": {
            "name": "Nome da equipe, não é dado pessoal.",
            "description": "Descrição da equipe, não é dado pessoal.",
        },
        "accounts.apitoken": {"name": "Rótulo que o colaborador dá ao token."},
        "accounts.usersession": {"end_reason": "Código do motivo do encerramento."},
        "accounts.backupcodedevice": {"name": "Rótulo fixo (“Códigos de recuperação”)."},
    },
    "legal_basis": ["art7_v"],  # contract (employment / service)
    "retention_note": _("enquanto o colaborador estiver ativo; depois, desativado (não apagado)"),
}
