"""Data-subject requests (LGPD Art. 18, 19): intake, identity, status, answers, deadlines."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance import registry
from compliance.models import ConsentRecord, DataSubjectRequest, RequestEvent
from compliance.services.consent import consent_revoke, consent_state, normalize_text
from compliance.services.deadlines import dsr_due_at
from ispsupport.language import in_customer_language

logger = logging.getLogger(__name__)
Kind = DataSubjectRequest.Kind
Status = DataSubjectRequest.Status
Channel = DataSubjectRequest.Channel


class RequestError(Exception):
    """A refused request operation; ``message`` is for the DPO (pt-BR)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


# --- intake from WhatsApp ------------------------------------------------------------------------
# Matched on normalize_text() (lower case, no accents, punctuation as spaces), first match wins:
# erasure before access, since "quero apagar meus dados" also says "quero … meus dados".
_DADOS = r"(os |meus |minhas |dos meus |de meus |sobre mim|pessoais)"
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        Kind.CONSENT_REVOCATION,
        re.compile(r"\b(revog|retir|cancel)\w*\b.{0,20}\bconsentimento\b"),
    ),
    (
        Kind.ERASURE,
        re.compile(
            r"\b(apag|exclu|delet|elimin|remov|anonimiz|bloque|esquec)\w*\b.{0,30}\b(meus |os |minhas )?dados\b"
        ),
    ),
    (Kind.PORTABILITY, re.compile(r"\bportabilidade\b.{0,20}\bdados\b|\blevar meus dados\b")),
    (
        Kind.CORRECTION,
        re.compile(
            r"\b(corrig|atualiz|retific)\w*\b.{0,20}\bmeus dados\b|\bmeus dados (estao )?errados\b"
        ),
    ),
    (
        Kind.SHARING_INFO,
        re.compile(r"\bcompartilh\w*\b.{0,30}\bdados\b|\bdados\b.{0,30}\bcompartilh\w*\b"),
    ),
    (
        Kind.CONFIRMATION,
        re.compile(
            r"\b(quais|que) dados\b.{0,30}\b(tem|tém|possuem|guardam|armazenam|sabem)\b"
            r"|\bvoces (tem|possuem|guardam|armazenam|tratam) (os )?(meus )?dados\b"
        ),
    ),
    (
        Kind.ACCESS,
        re.compile(
            r"\b(quero|queria|gostaria de( receber| ter| ver)?|solicito|peco|preciso( de)?)\b"
            r".{0,30}\bmeus dados\b"
            r"|\bcopia (de |dos )?" + _DADOS + r"|\bacesso a(os)? meus dados\b"
        ),
    ),
    (Kind.OPPOSITION, re.compile(r"\bme oponho\b.{0,30}\btratamento\b")),
)


def dsr_detect_kind(text: str) -> str | None:
    """The request type a customer's message asks for, or None (not a data-rights request)."""
    normalized = normalize_text(text)
    if not normalized or ("dados" not in normalized and "consentimento" not in normalized):
        return None
    for kind, pattern in _DETECTORS:
        if pattern.search(normalized):
            return kind
    return None


def dsr_detect_and_open(customer: Any, text: str) -> DataSubjectRequest | None:
    """Recognise a data-rights request in a customer's WhatsApp message and open it.

    Returns the request (a new one, or the customer's open request of the same type: a repeated
    message does not open a duplicate), or None when ``text`` is not such a request. The inbound
    path calls this before the bot; on a request it tells the customer the request number and
    deadline (``dsr_intake_reply``) — confirmations and consent revocations are answered at once
    here (Art. 19 I; Art. 8 §5).
    """
    kind = dsr_detect_kind(text)
    if kind is None or customer is None:
        return None
    existing = (
        DataSubjectRequest.objects.filter(
            customer=customer, kind=kind, status__in=DataSubjectRequest.OPEN_STATUSES
        )
        .order_by("-received_at")
        .first()
    )
    if existing is not None:
        return existing
    return dsr_open(customer=customer, kind=kind, intake_channel=Channel.WHATSAPP)


@in_customer_language
def dsr_intake_reply(request: DataSubjectRequest) -> str:
    """What the bot says after opening a request (pt-BR; no personal data)."""
    if request.status == Status.ANSWERED:
        return request.answer_text
    due = timezone.localtime(request.due_at)
    return _(
        "Recebemos sua solicitação sobre seus dados pessoais (nº %(number)s: %(kind)s). "
        "O encarregado de dados vai responder até %(due)s, por este canal. "
        "Contato do encarregado: %(dpo)s."
    ) % {
        "number": request.pk,
        "kind": request.get_kind_display(),
        "due": due.strftime("%d/%m/%Y"),
        "dpo": settings.DPO_EMAIL,
    }


def _event(request: DataSubjectRequest, old: str, new: str, actor: Any, note: str = "") -> None:
    RequestEvent.objects.create(
        request=request, from_status=old, to_status=new, actor=actor, note=note[:255]
    )


def dsr_open(
    *,
    kind: str,
    customer: Any = None,
    intake_channel: str = Channel.WHATSAPP,
    answer_channel: str | None = None,
    answer_address: str = "",
    details: str = "",
    by_representative: bool = False,
    representative_name: str = "",
    created_by: Any = None,
    received_at: datetime | None = None,
) -> DataSubjectRequest:
    """Register a request; its 15-day clock starts at ``received_at`` (Art. 19 II).

    A request arriving on WhatsApp from the customer's own number counts as identity verified by
    possession of the number (recorded as such); any other intake waits for the DPO to record
    the verification. Confirmations and consent revocations from a verified subject are answered
    immediately (Art. 19 I; Art. 8 §5).
    """
    if kind not in Kind.values:
        raise RequestError(_("Tipo de requisição inválido."))
    received_at = received_at or timezone.now()
    answer_channel = answer_channel or intake_channel
    if answer_channel in (Channel.EMAIL, Channel.PRINTED) and not answer_address:
        raise RequestError(_("Informe o e-mail ou o endereço para a resposta."))
    from_own_number = intake_channel == Channel.WHATSAPP and customer is not None
    with transaction.atomic():
        request = DataSubjectRequest.objects.create(
            customer=customer,
            kind=kind,
            intake_channel=intake_channel,
            answer_channel=answer_channel,
            answer_address=answer_address,
            details=details,
            by_representative=by_representative,
            representative_name=representative_name,
            received_at=received_at,
            due_at=dsr_due_at(received_at),
            created_by=created_by,
            status=Status.IN_PROGRESS if from_own_number else Status.IDENTITY_PENDING,
            identity_verified_at=received_at if from_own_number else None,
            identity_method=(
                DataSubjectRequest.IdentityMethod.WHATSAPP_NUMBER if from_own_number else ""
            ),
        )
        _event(request, "", request.status, created_by, note=f"intake:{intake_channel}")
    logger.info("dsr opened", extra={"request_id": request.pk, "kind": kind})
    if from_own_number:
        _answer_immediately_when_possible(request)
    return request


@in_customer_language
def _answer_immediately_when_possible(request: DataSubjectRequest) -> None:
    if request.kind == Kind.CONFIRMATION:
        dsr_answer(request=request, text=dsr_confirmation_text(request.customer), actor=None)
    elif request.kind == Kind.CONSENT_REVOCATION:
        revoked = []
        for purpose, granted in consent_state(customer=request.customer).items():
            if granted or purpose == ConsentRecord.Purpose.MARKETING:
                row = consent_revoke(
                    customer=request.customer,
                    purpose=purpose,
                    channel=request.intake_channel,
                    proof={"kind": "data_request", "request_id": request.pk},
                )
                if row is not None:
                    revoked.append(str(ConsentRecord.Purpose(purpose).label))
        dsr_answer(request=request, text=dsr_revocation_text(revoked), actor=None)
    elif request.kind == Kind.SHARING_INFO:
        dsr_answer(request=request, text=dsr_sharing_text(), actor=None)
    elif request.kind == Kind.CONSENT_INFO:
        dsr_answer(request=request, text=dsr_consent_info_text(), actor=None)


def dsr_verify_identity(
    *, request: DataSubjectRequest, method: str, actor: Any, note: str = ""
) -> DataSubjectRequest:
    """Record how the requester's identity (or representation, Art. 18 §3) was verified."""
    if method not in DataSubjectRequest.IdentityMethod.values:
        raise RequestError(_("Forma de verificação inválida."))
    if not request.is_open:
        raise RequestError(_("A requisição já foi encerrada."))
    with transaction.atomic():
        old = request.status
        request.identity_verified_at = timezone.now()
        request.identity_verified_by = actor
        request.identity_method = method
        request.identity_note = note[:255]
        request.status = Status.IN_PROGRESS
        request.save(
            update_fields=[
                "identity_verified_at",
                "identity_verified_by",
                "identity_method",
                "identity_note",
                "status",
                "updated_at",
            ]
        )
        _event(request, old, request.status, actor, note=f"identity:{method}")
    _answer_immediately_when_possible(request)
    return request


_ALLOWED = {
    Status.RECEIVED: {Status.IDENTITY_PENDING, Status.IN_PROGRESS, Status.CANCELLED},
    Status.IDENTITY_PENDING: {Status.IN_PROGRESS, Status.REJECTED, Status.CANCELLED},
    Status.IN_PROGRESS: {Status.ANSWERED, Status.REJECTED, Status.CANCELLED},
}


def dsr_set_status(
    *, request: DataSubjectRequest, status: str, actor: Any, note: str = ""
) -> DataSubjectRequest:
    """Move a request along its workflow (answered/rejected/cancelled are final)."""
    if status not in _ALLOWED.get(request.status, set()):
        raise RequestError(_("A requisição não pode mudar para essa situação."))
    with transaction.atomic():
        old = request.status
        request.status = status
        request.save(update_fields=["status", "updated_at"])
        _event(request, old, status, actor, note)
    return request


def dsr_answer(
    *,
    request: DataSubjectRequest,
    text: str,
    actor: Any,
    retained_legal_basis: str = "",
    third_parties: list[str] | None = None,
    reject: bool = False,
    delivered: bool | None = None,
) -> DataSubjectRequest:
    """Record the answer and send it through the channel the subject chose (Art. 19 §2).

    WhatsApp answers go through the channel's sender: inside the 24-hour window as a message
    (the outbox delivers it); outside it, an approved template tells the customer the answer is
    ready (``answer_notified_at``) and the answer itself goes out when they next write
    (``dsr_deliver_awaiting``). E-mail answers go by ``send_mail``; printed answers are
    delivered by hand. ``delivered`` (already sent by the caller, e.g. before an erasure)
    skips the sending.
    """
    if not request.is_open:
        raise RequestError(_("A requisição já foi encerrada."))
    if not text.strip():
        raise RequestError(_("Escreva a resposta."))
    if request.identity_verified_at is None and not reject:
        raise RequestError(_("Registre a verificação de identidade antes de responder."))
    with transaction.atomic():
        old = request.status
        request.answer_text = text
        request.answered_at = timezone.now()
        request.status = Status.REJECTED if reject else Status.ANSWERED
        fields = ["answer_text", "answered_at", "status", "updated_at"]
        if retained_legal_basis:
            request.retained_legal_basis = retained_legal_basis
            fields.append("retained_legal_basis")
        if third_parties is not None:
            request.third_parties = third_parties
            fields.append("third_parties")
        request.save(update_fields=fields)
        _event(request, old, request.status, actor, note="answer")
    outcome = (
        dsr_deliver(request=request, text=text)
        if delivered is None
        else (registry.SENT_TEXT if delivered else registry.NOT_SENT)
    )
    _record_delivery(request, outcome)
    return request


def _record_delivery(request: DataSubjectRequest, outcome: str) -> None:
    if outcome == registry.SENT_TEXT:
        request.answer_delivered = True
        DataSubjectRequest.objects.filter(pk=request.pk).update(answer_delivered=True)
    elif outcome == registry.SENT_NOTICE:
        request.answer_notified_at = timezone.now()
        DataSubjectRequest.objects.filter(pk=request.pk).update(
            answer_notified_at=request.answer_notified_at
        )


@in_customer_language
def customer_subject(number: int) -> str:
    return _("Sua solicitação de dados pessoais nº %(n)s") % {"n": number}


def dsr_deliver(*, request: DataSubjectRequest, text: str, erasure: bool = False) -> str:
    """Send ``text`` to the subject on the request's answer channel; returns what was sent
    (``registry.SENT_TEXT``, ``SENT_NOTICE`` or ``NOT_SENT``).

    ``erasure``: the channel sends at once and keeps no copy (the data goes right after);
    ``registry.DeliveryPostponed`` propagates so the erasure task retries later.
    """
    channel = request.answer_channel
    if channel == Channel.EMAIL and request.answer_address:
        sent = send_mail(
            subject=customer_subject(request.pk),
            message=text,
            from_email=None,
            recipient_list=[request.answer_address],
            fail_silently=True,
        )
        return registry.SENT_TEXT if sent else registry.NOT_SENT
    sender = registry.channel_sender(channel)
    if sender is None or request.customer is None:
        return registry.NOT_SENT
    try:
        return sender(
            customer=request.customer,
            text=text,
            request_number=str(request.pk),
            erasure=erasure,
        )
    except registry.DeliveryPostponed:
        raise
    except Exception:
        logger.exception("dsr answer delivery failed", extra={"request_id": request.pk})
        return registry.NOT_SENT


# Answers announced by template and not collected after this long are left to the DPO.
AWAITING_ANSWER_DAYS = 30


def _awaiting(now: Any) -> Any:
    """Requests whose answer was announced by template and not delivered yet."""
    return DataSubjectRequest.objects.filter(
        answer_delivered=False,
        answer_notified_at__gte=now - timedelta(days=AWAITING_ANSWER_DAYS),
    ).exclude(answer_text="")


def dsr_answers_awaiting(customer: Any, *, now: Any = None) -> list[DataSubjectRequest]:
    """Answers announced by template that the customer has not received yet (oldest first)."""
    return list(_awaiting(now or timezone.now()).filter(customer=customer).order_by("answered_at"))


def dsr_customers_with_answers_awaiting(customer_ids: Any, *, now: Any = None) -> set[int]:
    """Which of these customers have answers awaiting (one query for a batch of messages:
    ``dsr_deliver_awaiting`` need only run for them)."""
    return set(
        _awaiting(now or timezone.now())
        .filter(customer_id__in=list(customer_ids))
        .values_list("customer_id", flat=True)
    )


def dsr_deliver_awaiting(customer: Any) -> int:
    """The customer wrote (the window is open again): send the answers they were told about.

    Called by the channel's inbound path; returns how many answers went out.
    """
    sent = 0
    for request in dsr_answers_awaiting(customer):
        if dsr_deliver(request=request, text=request.answer_text) == registry.SENT_TEXT:
            with transaction.atomic():
                DataSubjectRequest.objects.filter(pk=request.pk).update(answer_delivered=True)
                _event(request, request.status, request.status, None, note="answer delivered")
            sent += 1
    return sent


# --- texts (pt-BR, no personal data beyond counts) -----------------------------------------------


@in_customer_language
def dsr_confirmation_text(customer: Any) -> str:
    """Simplified confirmation (Art. 19 I): whether and what we process, from the registry."""
    lines = []
    for provider in registry.providers():
        for label, count in provider.count(customer).items():
            if count:
                lines.append(f"• {label}: {count}")
    if not lines:
        return _(
            "Não encontramos dados pessoais seus em nosso atendimento. Encarregado de dados: "
            "%(dpo)s (%(email)s)."
        ) % {"dpo": settings.DPO_NAME, "email": settings.DPO_EMAIL}
    return _(
        "Sim, %(isp)s trata dados pessoais seus para prestar o atendimento (execução do "
        "contrato e obrigações da Anatel). O que temos hoje:\n%(lines)s\n"
        'Você pode pedir uma cópia completa ("quero meus dados"), a correção ou a eliminação '
        '("apagar meus dados"). Política de privacidade: %(url)s. Encarregado: %(dpo)s '
        "(%(email)s)."
    ) % {
        "isp": settings.ISP_NAME,
        "lines": "\n".join(lines),
        "url": settings.PRIVACY_POLICY_URL,
        "dpo": settings.DPO_NAME,
        "email": settings.DPO_EMAIL,
    }


def third_parties() -> list[str]:
    """Every recipient the registry declares (Art. 18 VII and §6)."""
    seen: dict[str, None] = {}
    for provider in registry.providers():
        for recipient in provider.recipients:
            seen[str(recipient)] = None
    return list(seen)


@in_customer_language
def dsr_sharing_text() -> str:
    names = "\n".join(f"• {name}" for name in third_parties()) or "—"
    return _(
        "Compartilhamos dados do atendimento somente com estes operadores, que os tratam em "
        "nosso nome:\n%(names)s\nPolítica de privacidade: %(url)s."
    ) % {"names": names, "url": settings.PRIVACY_POLICY_URL}


@in_customer_language
def dsr_consent_info_text() -> str:
    return _(
        "O atendimento não depende do seu consentimento (é parte do contrato e das regras da "
        "Anatel). Só pedimos consentimento para campanhas e ofertas: você pode recusar ou "
        "revogar a qualquer momento respondendo SAIR, sem nenhuma consequência para o seu "
        "serviço. Política de privacidade: %(url)s."
    ) % {"url": settings.PRIVACY_POLICY_URL}


@in_customer_language
def dsr_revocation_text(revoked: list[str]) -> str:
    if not revoked:
        return _(
            "Não havia consentimento ativo para revogar. Nada mais será enviado com base nele."
        )
    return _(
        "Consentimento revogado: %(what)s. O atendimento continua normalmente (ele não depende "
        "de consentimento)."
    ) % {"what": ", ".join(revoked)}


# --- deadlines -------------------------------------------------------------------------------


def dsr_deadline_alerts(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Flag open requests past due or due within ``COMPLIANCE_DSR_NEAR_DUE_DAYS``; return ids.

    Run daily by ``compliance.check_request_deadlines``; logs a warning per request (ids only)
    and stamps ``alerted_at``. The admin list shows the same state live.
    """
    now = now or timezone.now()
    near = now + timedelta(days=settings.COMPLIANCE_DSR_NEAR_DUE_DAYS)
    open_qs = DataSubjectRequest.objects.filter(status__in=DataSubjectRequest.OPEN_STATUSES)
    overdue = list(open_qs.filter(due_at__lt=now).values_list("pk", flat=True))
    near_due = list(open_qs.filter(due_at__gte=now, due_at__lte=near).values_list("pk", flat=True))
    for pk in overdue:
        logger.warning("dsr overdue", extra={"request_id": pk})
    for pk in near_due:
        logger.warning("dsr near due", extra={"request_id": pk})
    DataSubjectRequest.objects.filter(pk__in=overdue + near_due).update(alerted_at=now)
    return {"overdue": overdue, "near_due": near_due}
