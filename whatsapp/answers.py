"""Answers to data-subject requests on WhatsApp (the sender compliance calls for "whatsapp").

- Inside the 24-hour window, on an open conversation: the answer is an outbound message (the
  outbox delivers it, with retries).
- Otherwise: an approved template (``DSR_ANSWER_TEMPLATE``, "{{1}}" = the request number) tells
  the customer the answer is ready; compliance sends the answer itself when they next write.
- Erasure: the answer must arrive *before* the data goes, and nothing may remain afterwards, so
  it is sent at once through the Graph client with no Message row (the text when the window is
  open, else ``DSR_ERASURE_TEMPLATE``). A passing Graph failure raises ``DeliveryPostponed``
  and the erasure waits for the retry.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from compliance.registry import NOT_SENT, SENT_NOTICE, SENT_TEXT, DeliveryPostponed
from conversations import services as conv_services
from conversations.models import Conversation, Message
from whatsapp.client import ErrorKind, GraphError, get_client
from whatsapp.delivery import TEXT_MAX, InvalidBody, recipient_of, sending_number
from whatsapp.models import MessageTemplate
from whatsapp.templates import approved_template

logger = logging.getLogger(__name__)


def _template_payload(template: MessageTemplate, request_number: str) -> dict[str, Any]:
    components = []
    if template.parameter_count:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": request_number}]}
        )
    return {
        "name": template.name,
        "language": {"code": template.language},
        "components": components,
    }


def _rendered(template: MessageTemplate, request_number: str) -> str:
    return template.body_text.replace("{{1}}", request_number)


def send_request_answer(
    *, customer: Any, text: str, request_number: str = "", erasure: bool = False
) -> str:
    """Deliver a request's answer; returns SENT_TEXT, SENT_NOTICE or NOT_SENT (see module)."""
    conversation = (
        customer.conversations.exclude(state=Conversation.State.CLOSED).first()
        or customer.conversations.order_by("-opened_at", "-pk").first()
    )
    if conversation is None:
        return NOT_SENT
    free_form = conversation.is_open and conversation.window_is_open()
    if erasure:
        return _send_now(conversation, text, request_number, free_form=free_form)
    if free_form:
        try:
            conv_services.message_record_outbound(
                conversation=conversation,
                sender_kind=Message.SenderKind.SYSTEM,
                text=text[:TEXT_MAX],
            )
            return SENT_TEXT
        except conv_services.ServiceError:
            pass  # the window closed meanwhile: fall through to the template
    template = approved_template(settings.DSR_ANSWER_TEMPLATE)
    if template is None:
        logger.warning("dsr answer: window closed and no approved template to announce it")
        return NOT_SENT
    conv_services.message_record_outbound(
        conversation=conversation,
        sender_kind=Message.SenderKind.SYSTEM,
        type=Message.Type.TEMPLATE,
        text=_rendered(template, request_number),
        payload={"template": _template_payload(template, request_number)},
    )
    return SENT_NOTICE


def _send_now(conversation: Conversation, text: str, request_number: str, *, free_form: bool):
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    try:
        body.update(recipient_of(conversation.customer))
    except InvalidBody:
        return NOT_SENT
    if free_form:
        body.update(type="text", text={"preview_url": False, "body": text[:TEXT_MAX]})
        outcome = SENT_TEXT
    else:
        template = approved_template(settings.DSR_ERASURE_TEMPLATE)
        if template is None:
            logger.warning("erasure answer: window closed and no approved template")
            return NOT_SENT
        body.update(type="template", template=_template_payload(template, request_number))
        outcome = SENT_NOTICE
    try:
        get_client().send(sending_number(conversation), body)
    except GraphError as exc:
        log = {"graph_code": exc.code, "http_status": exc.http_status}
        if exc.kind in (ErrorKind.RETRYABLE, ErrorKind.PAIR_LIMIT):
            logger.warning("erasure answer: Meta failed for now, erasure postponed", extra=log)
            raise DeliveryPostponed(str(exc.code or exc.http_status)) from exc
        logger.warning("erasure answer: Meta refused it", extra=log)
        return NOT_SENT
    logger.info("erasure answer: sent", extra={"kind": outcome})
    return outcome
