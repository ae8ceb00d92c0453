"""What the bot says: pt-BR texts and WhatsApp interactive payloads (Graph API shapes).

Limits honoured (Meta, interactive messages): list — body ≤ 4,096 chars, header/footer ≤ 60,
button label ≤ 20, ≤ 10 rows, row title ≤ 24, description ≤ 72, section title ≤ 24;
reply buttons — ≤ 3, title ≤ 20 and unique, body ≤ 1,024. Reply ids are stable: inbound
button/list replies come back with them (``bot.services`` maps them to actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from compliance.services import protocol_moment

RESOLVED_YES = "bot.resolved.yes"
RESOLVED_NO = "bot.resolved.no"


@dataclass(frozen=True)
class MenuOption:
    id: str
    intent: str
    title: str
    description: str


def menu_options() -> list[MenuOption]:
    return [
        MenuOption(
            "menu.internet",
            "no_connection",
            _("Problemas na internet"),
            _("Sem conexão, lentidão ou Wi-Fi"),
        ),
        MenuOption(
            "menu.billing",
            "billing",
            _("2ª via do boleto / PIX"),
            _("Fatura, código PIX e pagamentos"),
        ),
        MenuOption(
            "menu.plan_change", "plan_change", _("Mudar de plano"), _("Conhecer outros planos")
        ),
        MenuOption(
            "menu.technical_visit",
            "technical_visit",
            _("Visita técnica"),
            _("Agendar ou acompanhar uma visita"),
        ),
        MenuOption("menu.cancellation", "cancellation", _("Cancelamento"), _("Cancelar o serviço")),
        MenuOption(
            "menu.human", "human", _("Falar com atendente"), _("Atendimento com uma pessoa")
        ),
    ]


MENU_INTENTS = {
    "menu.internet": "no_connection",
    "menu.billing": "billing",
    "menu.plan_change": "plan_change",
    "menu.technical_visit": "technical_visit",
    "menu.cancellation": "cancellation",
    "menu.human": "human",
}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def menu_list(*, body: str, header: str = "", footer: str = "") -> dict[str, Any]:
    """An interactive list (Graph ``interactive`` object) with the main menu."""
    interactive: dict[str, Any] = {
        "type": "list",
        "body": {"text": _clip(body, 4096)},
        "action": {
            "button": _clip(_("Ver opções"), 20),
            "sections": [
                {
                    "title": _clip(_("Como posso ajudar?"), 24),
                    "rows": [
                        {
                            "id": option.id,
                            "title": _clip(option.title, 24),
                            "description": _clip(option.description, 72),
                        }
                        for option in menu_options()
                    ],
                }
            ],
        },
    }
    if header:
        interactive["header"] = {"type": "text", "text": _clip(header, 60)}
    if footer:
        interactive["footer"] = {"text": _clip(footer, 60)}
    return interactive


def greeting(
    *, isp_name: str, protocol: str, opened_at: Any, policy_url: str, dpo_email: str
) -> tuple[str, dict[str, Any]]:
    """The first message of a contact: greeting, protocol with its date and time (RGC 765
    art. 9), privacy notice and the menu."""
    body = "\n\n".join(
        [
            _(
                "Olá! Você está falando com o atendimento virtual da %(isp)s. "
                "Seu protocolo é %(protocol)s, registrado em %(when)s (horário de Brasília)."
            )
            % {"isp": isp_name, "protocol": protocol, "when": protocol_moment(opened_at)},
            _(
                "🔒 Privacidade: usamos suas mensagens, áudios e fotos para atender você, com "
                "apoio de inteligência artificial (Google Gemini), e mascaramos CPF, telefone e "
                "outros dados antes disso. O WhatsApp (Meta) e o Google podem tratá-los fora do "
                "Brasil. Política: %(url)s · Encarregado de dados: %(dpo)s"
            )
            % {"url": policy_url, "dpo": dpo_email},
            _(
                "Como posso ajudar? Escolha uma opção ou escreva sua dúvida. "
                "Se preferir falar com uma pessoa, é só pedir."
            ),
        ]
    )
    footer = _("Protocolo %(protocol)s") % {"protocol": protocol}
    return body, menu_list(body=body, header=isp_name, footer=footer)


def clarify(*, intent: str) -> tuple[str, dict[str, Any]]:
    """The menu again, when the turn said nothing the bot can act on."""
    if intent == "greeting":
        body = _("Olá! Como posso ajudar? Escolha uma opção abaixo ou escreva sua dúvida.")
    else:
        body = _(
            "Desculpe, não entendi bem. Escolha uma opção abaixo ou descreva o problema em "
            "poucas palavras. Se preferir, peça para falar com um atendente."
        )
    return body, menu_list(body=body)


def answer_with_confirmation(answer: str) -> tuple[str, dict[str, Any]]:
    """A knowledge-base answer followed by "Resolvido? Sim / Não, quero atendente" buttons."""
    body = f"{answer.strip()}\n\n{_('Isso resolveu?')}"
    interactive = {
        "type": "button",
        "body": {"text": _clip(body, 1024)},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": RESOLVED_YES, "title": _("Sim, resolveu")}},
                {"type": "reply", "reply": {"id": RESOLVED_NO, "title": _("Não, quero atendente")}},
            ]
        },
    }
    return body, interactive


def hand_off(*, reason: str, protocol: str, team_name: str = "", media_type: str = "") -> str:
    """What the customer reads when a person takes over (never asks for data)."""
    team = _(" da equipe %(team)s") % {"team": team_name} if team_name else ""
    opening = {
        "human_requested": _("Tudo bem! Vou chamar um atendente%(team)s."),
        "cancellation": _(
            "Entendido. Vou encaminhar seu pedido de cancelamento a um atendente%(team)s, "
            "que vai concluí-lo com você."
        ),
        "contested": _(
            "Certo, vou pedir que um atendente%(team)s revise o atendimento do robô, como é "
            "seu direito."
        ),
        "negative_sentiment": _(
            "Sinto muito pelo transtorno. Vou passar você agora para um atendente%(team)s."
        ),
        "kb_hand_off": _("Vou encaminhar você a um atendente%(team)s para dar sequência."),
        "erp_unavailable": _(
            "Não consegui consultar o sistema do provedor agora. Vou passar você para um "
            "atendente%(team)s, que continua daqui."
        ),
        "identity_failed": _(
            "Não consegui confirmar seus dados por aqui. Vou passar você para um atendente"
            "%(team)s, que pode ajudar de outra forma."
        ),
    }.get(reason)
    if reason == "media_needs_human":
        what = {
            "audio": _("seu áudio"),
            "image": _("sua imagem"),
        }.get(media_type, _("seu arquivo"))
        opening = _(
            "Recebi %(what)s, mas por aqui ainda não consigo ver nem ouvir arquivos. "
            "Vou passar para um atendente%(team)s."
        ) % {"what": what, "team": "%(team)s"}
    if opening is None:
        opening = _("Vou transferir você para um atendente%(team)s, que continua daqui.")
    closing = _(
        "Seu protocolo é %(protocol)s. Você não precisa repetir nada: a pessoa verá esta conversa."
    ) % {"protocol": protocol}
    return f"{opening % {'team': team}} {closing}"


def closing(*, protocol: str, opened_at: Any, closed_at: Any) -> str:
    """The bot's goodbye: the protocol again, with the dates of registration and conclusion."""
    return _(
        "Que bom que deu certo! Vou encerrar este atendimento: protocolo %(protocol)s, "
        "registrado em %(opened)s e concluído em %(closed)s (horário de Brasília). "
        "Se precisar, é só mandar uma mensagem."
    ) % {
        "protocol": protocol,
        "opened": protocol_moment(opened_at),
        "closed": protocol_moment(closed_at),
    }


# --- Self-service with the ISP's ERP (bot.selfservice) ------------------------------------------
# Reply ids start with "isp." (bot.analysis routes them to bot.selfservice); a list row's id
# carries only an index into what this conversation was offered, never a contract or CPF.

SS_CONTRACT = "isp.contract."  # + index into the conversation's contracts
SS_WINDOW = "isp.window."  # + index into the windows offered
SS_UNLOCK_YES = "isp.unlock.yes"
SS_ACTION = "isp.action."  # + bill | visit | unlock | status | plan
HUMAN = "menu.human"


def _button(reply_id: str, title: str) -> dict[str, Any]:
    return {"type": "reply", "reply": {"id": reply_id, "title": _clip(title, 20)}}


def buttons(body: str, items: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """A reply-button message (≤ 3 buttons, body ≤ 1,024 characters)."""
    body = _clip(body.strip(), 1024)
    return body, {
        "type": "button",
        "body": {"text": body},
        "action": {"buttons": [_button(rid, title) for rid, title in items[:3]]},
    }


def resolved_buttons(body: str, *, extra: tuple[str, str] | None = None) -> tuple[str, dict]:
    """``body`` + "Isso resolveu?" with Sim / Não, quero atendente (and one more option)."""
    items = [(RESOLVED_YES, _("Sim, resolveu")), (RESOLVED_NO, _("Não, quero atendente"))]
    if extra is not None:
        items.insert(1, extra)
    return buttons(f"{body.strip()}\n\n{_('Isso resolveu?')}", items)


def choice_list(
    *, body: str, button: str, section: str, rows: list[tuple[str, str, str]]
) -> tuple[str, dict[str, Any]]:
    """An interactive list of ``(id, title, description)`` rows (≤ 10) for one choice."""
    body = _clip(body.strip(), 1024)
    return body, {
        "type": "list",
        "body": {"text": body},
        "action": {
            "button": _clip(button, 20),
            "sections": [
                {
                    "title": _clip(section, 24),
                    "rows": [
                        {
                            "id": rid,
                            "title": _clip(title, 24),
                            "description": _clip(description, 72),
                        }
                        for rid, title, description in rows[:10]
                    ],
                }
            ],
        },
    }


def ask_cpf() -> tuple[str, dict[str, Any]]:
    return buttons(
        _(
            "Para mostrar dados do contrato, preciso confirmar quem é você. Envie o CPF do "
            "titular do contrato (só os números, por exemplo 12345678900). Ele é usado só para "
            "a consulta e não vai para a inteligência artificial."
        ),
        [(HUMAN, _("Falar com atendente"))],
    )


def cpf_invalid(*, attempts_left: int) -> tuple[str, dict[str, Any]]:
    return buttons(
        _(
            "Esse CPF não é válido. Confira os 11 números e envie de novo "
            "(tentativas restantes: %(n)d)."
        )
        % {"n": attempts_left},
        [(HUMAN, _("Falar com atendente"))],
    )


def cpf_refused(*, attempts_left: int) -> tuple[str, dict[str, Any]]:
    """The same words whether the CPF is unknown or has no active contract (reveal nothing)."""
    return buttons(
        _(
            "Não consegui confirmar seus dados com esse CPF. Confira se é o CPF do titular do "
            "contrato e envie de novo (tentativas restantes: %(n)d)."
        )
        % {"n": attempts_left},
        [(HUMAN, _("Falar com atendente"))],
    )


def cpf_missing() -> tuple[str, dict[str, Any]]:
    return buttons(
        _(
            "Não encontrei um CPF na sua mensagem. Envie os 11 números do CPF do titular, ou "
            "fale com um atendente."
        ),
        [(HUMAN, _("Falar com atendente"))],
    )


def stale_choice() -> tuple[str, dict[str, Any]]:
    body = _("Essa opção expirou. Escolha de novo o que você precisa, ou escreva sua dúvida.")
    return body, menu_list(body=body)
