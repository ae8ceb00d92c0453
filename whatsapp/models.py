"""What the WhatsApp channel keeps of its own: raw webhook events, templates, early statuses."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport.crypto import EncryptedTextField


class WebhookEvent(models.Model):
    """One POST from Meta, stored raw before we answer 200 (the durable acknowledgement).

    ``body`` is the exact text Meta signed. It holds personal data (message texts, phones) and
    is kept only for the raw-event retention period (30 days by default).

    Indexes: (status, received_at) for the sweeper that re-dispatches unprocessed events;
    received_at alone for retention.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("Recebido")
        PROCESSED = "processed", _("Processado")
        IGNORED = "ignored", _("Ignorado")
        FAILED = "failed", _("Falhou")

    received_at = models.DateTimeField(_("recebido em"), default=timezone.now)
    # Encrypted at rest (ispsupport.crypto): the most sensitive blob we keep.
    body = EncryptedTextField(_("corpo bruto"))
    body_sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(_("tentativas"), default=0)
    processed_at = models.DateTimeField(_("processado em"), null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    status_count = models.PositiveIntegerField(default=0)
    note = models.CharField(
        _("observação"), max_length=255, blank=True, help_text=_("Sem dados pessoais.")
    )
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("evento de webhook")
        verbose_name_plural = _("eventos de webhook")
        indexes = [
            models.Index(fields=["status", "received_at"], name="whevent_status_received"),
            models.Index(fields=["received_at"], name="whevent_received"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status} {self.received_at:%Y-%m-%d %H:%M:%S}"


class MessageTemplate(models.Model):
    """An approved WhatsApp template (synced from Meta; editable in admin for the demo).

    The only kind of message Meta accepts outside the 24-hour customer-service window.
    ``body_text`` uses Meta's ``{{1}}`` placeholders; ``parameter_count`` of them.
    """

    class Category(models.TextChoices):
        UTILITY = "UTILITY", _("Utilidade")
        MARKETING = "MARKETING", _("Marketing")
        AUTHENTICATION = "AUTHENTICATION", _("Autenticação")

    class Status(models.TextChoices):
        APPROVED = "APPROVED", _("Aprovado")
        PENDING = "PENDING", _("Em análise")
        REJECTED = "REJECTED", _("Rejeitado")
        PAUSED = "PAUSED", _("Pausado")
        DISABLED = "DISABLED", _("Desativado")

    name = models.SlugField(_("nome"), max_length=512)
    language = models.CharField(_("idioma"), max_length=15, default="pt_BR")
    category = models.CharField(
        _("categoria"), max_length=20, choices=Category.choices, default=Category.UTILITY
    )
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.APPROVED
    )
    body_text = models.TextField(_("texto"))
    parameter_count = models.PositiveSmallIntegerField(_("parâmetros"), default=0)
    components = models.JSONField(_("componentes (Meta)"), default=list, blank=True)
    # Meta's template id; empty for a row typed in admin (demo) that Meta never listed.
    meta_id = models.CharField(_("id na Meta"), max_length=32, blank=True)
    status_reason = models.CharField(_("motivo (Meta)"), max_length=64, blank=True)
    synced_at = models.DateTimeField(_("sincronizado em"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("modelo de mensagem")
        verbose_name_plural = _("modelos de mensagem")
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="template_name_language"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class EarlyStatus(models.Model):
    """A delivery status that arrived before we stored the wamid Meta returned for the send.

    Meta may deliver ``sent``/``delivered`` webhooks before our worker saves the send call's
    response; these rows are applied as soon as the wamid is recorded, and purged after a day.
    """

    wamid = models.CharField(max_length=191, db_index=True)
    status = models.CharField(max_length=10)
    timestamp = models.DateTimeField()
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    # Meta's details can echo the message or the number (as on Message.error_details).
    error_details = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("status antecipado")
        verbose_name_plural = _("status antecipados")
        constraints = [
            models.UniqueConstraint(fields=["wamid", "status"], name="earlystatus_wamid_status"),
        ]

    def __str__(self) -> str:
        return f"{self.wamid} {self.status}"
