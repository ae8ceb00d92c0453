"""bot's personal data, declared to the compliance registry.

The bot stores its decisions (intent, route, confidence, a masked input summary) so their
criteria can be explained on request (LGPD Art. 20 §1). Text sent to Gemini is masked first
(``bot.masking``); Google is a processor (paid API, abuse logs up to 55 days).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from compliance import registry
from compliance.registry import Category, ErasureReport, LegalBasis, Provider, Retention
from compliance.services import batched_delete
from compliance.services.retention import retention_cutoff

GOOGLE = _lazy(
    "Google (Gemini API, plano pago), operador: classifica e sugere respostas com o texto "
    "mascarado; registros de abuso por até 55 dias; transferência internacional (LGPD art. 33)"
)


class BotProvider(Provider):
    key = "bot.decisions"
    label = _lazy("Decisões do robô de triagem")
    purpose = _lazy(
        "Classificar a demanda e encaminhar ao atendimento humano; explicar os critérios da "
        "decisão automatizada quando pedido (LGPD art. 20)"
    )
    fields = {
        "bot.botdecision": {
            "transcript": Category.CONTENT,  # transcription of the customer's voice note
            "matched": Category.CONTENT,  # classifier rules/keywords that matched
        },
    }
    exempt = {
        "bot.botdecision": {
            "escalation_reason": "Código do motivo (choices), sem texto do cliente.",
            "fallback_reason": "Código técnico do motivo do uso das regras.",
            "prompt_version": "Versão do prompt.",
        },
        "bot.escalationrule": {"reason": "Código do motivo (choices)."},
        "bot.knowledgeentry": {
            "answer": "Resposta da base de conhecimento, escrita pelo provedor.",
            "intents": "Intenções a que a resposta se aplica (códigos).",
            "keywords": "Palavras-chave escritas pelo provedor.",
        },
    }
    legal_basis = (LegalBasis.CONTRACT, LegalBasis.LEGITIMATE_INTEREST)
    retention = (Retention("bot_decisions", _lazy("após a decisão")),)
    recipients = (GOOGLE,)
    order = 20

    @staticmethod
    def _decision_model():
        try:
            return apps.get_model("bot", "BotDecision")
        except LookupError:
            return None

    def _decisions(self, customer: Any):
        model = self._decision_model()
        if model is None:
            return None
        return model.objects.filter(conversation__customer=customer)

    def count(self, customer: Any) -> dict[str, int]:
        qs = self._decisions(customer)
        return {_("Decisões do robô"): qs.count()} if qs is not None else {}

    def export(self, customer: Any) -> dict[str, Any]:
        qs = self._decisions(customer)
        if qs is None:
            return {"bot_decisions": []}
        rows = []
        for decision in qs.order_by("pk"):
            row = {}
            for f in decision._meta.concrete_fields:
                value = getattr(decision, f.attname)
                row[f.name] = value.isoformat() if hasattr(value, "isoformat") else value
            rows.append(row)
        return {"bot_decisions": rows}

    def object_refs(self, customer: Any):
        qs = self._decisions(customer)
        if qs is not None:
            for pk in qs.values_list("pk", flat=True):
                yield ("bot.botdecision", str(pk))

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        qs = self._decisions(customer)
        if qs is not None:
            report.add("deleted", "bot.botdecision", qs.delete()[0])

    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        model = self._decision_model()
        if model is None:
            return {}
        return {
            "bot_decisions": batched_delete(
                model.objects.filter(created_at__lt=retention_cutoff("bot_decisions", now)),
                batch_size=batch_size,
                dry_run=dry_run,
            )
        }


def register_all() -> None:
    registry.register(BotProvider())
