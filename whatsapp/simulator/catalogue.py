"""The templates the simulated business account has "approved" (Meta's list format).

The Graph simulator lists them at ``GET /{waba-id}/message_templates``; ``make run`` loads the
same list into the template table (``sync_whatsapp_templates --demo``) so the console offers
them with no Meta account. Texts are ours, in pt-BR; ``{{n}}`` are Meta's placeholders.
"""

from __future__ import annotations

from typing import Any


def _template(meta_id: str, name: str, body: str, category: str = "UTILITY") -> dict[str, Any]:
    return {
        "id": meta_id,
        "name": name,
        "language": "pt_BR",
        "status": "APPROVED",
        "category": category,
        "components": [{"type": "BODY", "text": body}],
    }


DEMO_TEMPLATES: list[dict[str, Any]] = [
    _template(
        "900000000000001",
        "retomar_atendimento",
        "Olá, {{1}}! Aqui é o atendimento da {{2}}. Podemos continuar a conversa sobre o seu "
        "protocolo? Responda esta mensagem para retomarmos.",
    ),
    _template(
        "900000000000002",
        "protocolo_encerrado",
        "Seu atendimento de protocolo {{1}} foi encerrado. Se precisar, é só responder.",
    ),
    _template(
        "900000000000003",
        "solicitacao_dados_respondida",
        "Sua solicitação nº {{1}} sobre seus dados pessoais foi respondida. Responda esta "
        "mensagem para recebê-la aqui.",
    ),
    _template(
        "900000000000004",
        "solicitacao_dados_eliminados",
        "Sua solicitação nº {{1}} foi concluída: eliminamos seus dados pessoais do nosso "
        "atendimento. Guardamos apenas o registro do atendimento exigido pela Anatel, bloqueado, "
        "pelo prazo legal.",
    ),
    _template(
        "900000000000005",
        "aviso_manutencao",
        "Aviso de manutenção programada em {{1}}, das {{2}} às {{3}}. Sua conexão pode oscilar "
        "nesse período.",
    ),
    _template(
        "900000000000006",
        "falha_resolvida",
        "Boa notícia: a falha na rede que afetava a sua internet em {{1}} foi resolvida. Se a "
        "conexão ainda não voltou, desligue e ligue o roteador; se continuar, responda esta "
        "mensagem.",
    ),
    _template(
        "900000000000007",
        "lembrete_vencimento",
        "Lembrete: a fatura da sua internet vence em {{1}}. A 2ª via, com PIX e código de "
        "barras, está aqui no WhatsApp: responda 2ª via.",
    ),
    _template(
        "900000000000008",
        "oferta_upgrade",
        "Sua internet pode ficar mais rápida: {{1}}. Quer saber mais? Responda esta mensagem. "
        "Para não receber ofertas, responda SAIR.",
        category="MARKETING",
    ),
]
