"""Erasure (LGPD Art. 18 IV and VI, Art. 16): delete or irreversibly anonymise a subject's data,
provider by provider, keeping under legal hold only what a legal obligation requires."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance import registry
from compliance.models import DataSubjectRequest, LegalHold
from compliance.registry import ErasureReport
from compliance.services.dsr import RequestError, dsr_answer, dsr_deliver, third_parties
from ispsupport.language import customer_language, in_customer_language

logger = logging.getLogger(__name__)


def active_holds(customer: Any) -> list[LegalHold]:
    today = timezone.localdate()
    return [
        hold
        for hold in LegalHold.objects.filter(customer=customer, released_at__isnull=True)
        if hold.until is None or hold.until >= today
    ]


def held_customer_ids() -> set[int]:
    """Customers under an active legal hold: retention skips them."""
    today = timezone.localdate()
    return set(
        LegalHold.objects.filter(released_at__isnull=True)
        .exclude(until__lt=today)
        .values_list("customer_id", flat=True)
    )


def legal_hold_release(*, hold: LegalHold, actor: Any) -> LegalHold:
    LegalHold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
        released_at=timezone.now()
    )
    hold.refresh_from_db()
    logger.info("legal hold released", extra={"hold_id": hold.pk})
    return hold


@in_customer_language
def erasure_retained_text() -> str:
    """What is kept after an erasure, and why (Art. 18 §4 II; Art. 16 I), from the registry."""
    lines = [
        f"• {provider.label}: {provider.legal_hold}"
        for provider in registry.providers()
        if provider.legal_hold
    ]
    return "\n".join(lines)


@in_customer_language
def erasure_answer_text() -> str:
    recipients = "\n".join(f"• {name}" for name in third_parties())
    return _(
        "Seus dados pessoais do atendimento foram eliminados ou anonimizados de forma "
        "irreversível: cadastro, conversas, mensagens, mídias, decisões do robô e cópias em "
        "cache.\n\nMantemos somente, bloqueado para qualquer outro uso, o que a lei nos obriga "
        "a guardar (LGPD art. 16, I):\n%(retained)s\n\n"
        "Operadores com quem os dados foram compartilhados e o que acontece com as cópias "
        "deles após a eliminação (LGPD art. 18, §6º):\n%(recipients)s\n\n"
        "Dúvidas: %(dpo)s (%(email)s). Você também pode peticionar à ANPD ou ao PROCON."
    ) % {
        "retained": erasure_retained_text(),
        "recipients": recipients,
        "dpo": settings.DPO_NAME,
        "email": settings.DPO_EMAIL,
    }


def erasure_start(*, request: DataSubjectRequest, actor: Any) -> DataSubjectRequest:
    """Check the request can be executed and queue the erasure job.

    Refused (``RequestError``) when the identity is not verified or the subject is under an
    active legal hold; a refusal because of a hold is answered to the subject with the reason.
    """
    from compliance import tasks  # entry point; imported late

    if request.kind != DataSubjectRequest.Kind.ERASURE:
        raise RequestError(_("Só requisições de eliminação podem ser executadas."))
    if not request.is_open:
        raise RequestError(_("A requisição já foi encerrada."))
    if request.identity_verified_at is None:
        raise RequestError(_("Registre a verificação de identidade antes de eliminar."))
    if request.customer_id is None:
        raise RequestError(_("A requisição não está ligada a um cliente."))
    holds = active_holds(request.customer)
    if holds:
        reasons = "; ".join(f"{h.reason} ({h.legal_basis})" for h in holds)
        with customer_language():
            text = _(
                "Não podemos eliminar seus dados agora: eles estão sob retenção legal (%(why)s). "
                "LGPD art. 16 e art. 18, §4º, II. Assim que a retenção terminar, a eliminação "
                "poderá ser feita. Encarregado: %(email)s."
            ) % {"why": reasons, "email": settings.DPO_EMAIL}
        dsr_answer(
            request=request,
            text=text,
            actor=actor,
            retained_legal_basis=reasons,
            reject=True,
        )
        raise RequestError(_("O titular está sob retenção legal: eliminação recusada."))
    transaction.on_commit(lambda: tasks.erase_subject.delay(request.pk))
    return request


def erasure_run(*, request_id: int) -> ErasureReport:
    """Erase the subject of an erasure request; idempotent (a finished request is skipped).

    Order: the answer is composed and sent first (it must reach the customer's number, which is
    erased next); then, in one transaction, each provider erases in registry order (the
    customer row last); files are removed from storage after commit; cached copies are deleted.
    The request keeps only counts (``erasure_report``), never personal data.
    """
    request = DataSubjectRequest.objects.get(pk=request_id)
    if not request.is_open:
        stored = request.erasure_report or {}
        return ErasureReport(
            deleted=stored.get("deleted", {}),
            anonymized=stored.get("anonymized", {}),
            held=stored.get("held", {}),
            files_removed=stored.get("files_removed", 0),
            cache_keys_removed=stored.get("cache_keys_removed", 0),
        )
    customer = type(request).customer.field.related_model.objects.get(pk=request.customer_id)
    if active_holds(customer):
        raise RequestError(_("O titular está sob retenção legal: eliminação recusada."))
    report = ErasureReport()
    refs: list[tuple[str, str]] = []
    keys: list[str] = []
    for provider in registry.providers():
        refs.extend(provider.object_refs(customer))
        keys.extend(provider.cache_keys(customer))
    report.object_refs = refs  # type: ignore[attr-defined]  # read by the change-log provider

    # Deliver the answer first, at once and without keeping a copy: the channel needs the
    # number, which the erasure removes. A passing failure (DeliveryPostponed) leaves
    # everything as it was and the task retries; an answer already sent is not sent twice when
    # the erasure itself is retried.
    text = erasure_answer_text()
    delivered = request.answer_delivered
    if not delivered:
        delivered = dsr_deliver(request=request, text=text, erasure=True) != registry.NOT_SENT
        if delivered:
            DataSubjectRequest.objects.filter(pk=request.pk).update(answer_delivered=True)
    with transaction.atomic():
        for provider in registry.providers():
            provider.erase(customer, report, request=request)
        dsr_answer(
            request=request,
            text=text,
            actor=None,
            retained_legal_basis=erasure_retained_text(),
            third_parties=third_parties(),
            delivered=delivered,
        )
        files = list(report.files_to_delete)
        transaction.on_commit(lambda: _delete_files(files))
        report.files_removed = len(files)
        report.cache_keys_removed = len(keys)
        DataSubjectRequest.objects.filter(pk=request.pk).update(
            erasure_report=report.as_dict(), updated_at=timezone.now()
        )
    _forget_cached(keys, customer_id=customer.pk)
    logger.info("erasure done", extra={"request_id": request.pk, **report.as_dict()["deleted"]})
    return report


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("erasure: could not delete a file", extra={"file": "<hidden>"})


def _forget_cached(keys: list[str], *, customer_id: int) -> None:
    if keys:
        cache.delete_many(keys)
    # django-redis: also anything namespaced with the customer's id by convention.
    delete_pattern = getattr(cache, "delete_pattern", None)
    if delete_pattern is not None:
        delete_pattern(f"*customer:{customer_id}:*")
