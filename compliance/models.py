"""Compliance records: data-subject requests, exports, consent, legal holds, the access log,
incidents and retention runs.

State changes go through ``compliance.services``. ``Customer`` lives in ``conversations``
(a higher layer), so it is referenced by its label only ("conversations.Customer"); no import.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport.crypto import EncryptedJSONField, EncryptedTextField


class DataSubjectRequest(models.Model):
    """A data subject's request under LGPD Art. 18 (one type per right).

    Deadline: ``due_at`` = received + 15 calendar days (Art. 19 II). The simplified
    confirmation (Art. 19 I) is answered at intake. Free-text fields may hold personal data and
    are cleared when the subject's data is erased (only type, dates, status and counts remain).

    Indexes: (status, due_at) for the DPO's queue and the daily deadline check; customer (FK).
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("Confirmação da existência de tratamento (art. 18, I)")
        ACCESS = "access", _("Acesso aos dados (art. 18, II)")
        CORRECTION = "correction", _("Correção de dados (art. 18, III)")
        ERASURE = "erasure", _("Anonimização, bloqueio ou eliminação (art. 18, IV e VI)")
        PORTABILITY = "portability", _("Portabilidade (art. 18, V)")
        SHARING_INFO = "sharing_info", _("Informação sobre compartilhamento (art. 18, VII)")
        CONSENT_INFO = "consent_info", _("Informação sobre o consentimento (art. 18, VIII)")
        CONSENT_REVOCATION = "consent_revocation", _("Revogação do consentimento (art. 18, IX)")
        OPPOSITION = "opposition", _("Oposição ao tratamento (art. 18, §2º)")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Recebida")
        IDENTITY_PENDING = "identity_pending", _("Aguardando verificação de identidade")
        IN_PROGRESS = "in_progress", _("Em andamento")
        ANSWERED = "answered", _("Respondida")
        REJECTED = "rejected", _("Negada (com justificativa)")
        CANCELLED = "cancelled", _("Cancelada")

    class Channel(models.TextChoices):
        WHATSAPP = "whatsapp", _("WhatsApp")
        EMAIL = "email", _("E-mail")
        PRINTED = "printed", _("Impresso (correio ou retirada)")
        IN_PERSON = "in_person", _("Presencial")

    class IdentityMethod(models.TextChoices):
        WHATSAPP_NUMBER = "whatsapp_number", _("Mensagem do próprio número cadastrado")
        DOCUMENT = "document", _("Documento de identidade conferido")
        CONTRACT_DATA = "contract_data", _("Dados do contrato confirmados")
        IN_PERSON = "in_person", _("Presencialmente")
        REPRESENTATIVE = "representative", _("Procuração ou representação legal conferida")

    OPEN_STATUSES = (Status.RECEIVED, Status.IDENTITY_PENDING, Status.IN_PROGRESS)

    customer = models.ForeignKey(
        "conversations.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_requests",
        verbose_name=_("titular (cliente)"),
    )
    kind = models.CharField(_("tipo"), max_length=24, choices=Kind.choices)
    status = models.CharField(
        _("situação"), max_length=20, choices=Status.choices, default=Status.RECEIVED
    )
    intake_channel = models.CharField(
        _("canal de entrada"), max_length=12, choices=Channel.choices, default=Channel.WHATSAPP
    )
    answer_channel = models.CharField(
        _("canal de resposta escolhido"),
        max_length=12,
        choices=Channel.choices,
        default=Channel.WHATSAPP,
        help_text=_("Escolha do titular: meio eletrônico seguro ou impresso (art. 19, §2º)."),
    )
    # Free text and contact data about the subject: encrypted at rest (ispsupport.crypto).
    answer_address = EncryptedTextField(
        _("endereço para a resposta"),
        max_length=255,
        blank=True,
        help_text=_("E-mail ou endereço postal, quando a resposta não é pelo WhatsApp."),
    )
    by_representative = models.BooleanField(_("feita por representante legal"), default=False)
    representative_name = EncryptedTextField(_("nome do representante"), max_length=200, blank=True)
    details = EncryptedTextField(
        _("descrição do pedido"),
        blank=True,
        help_text=_("O que o titular pediu, sem copiar dados além do necessário."),
    )
    received_at = models.DateTimeField(_("recebida em"), default=timezone.now)
    due_at = models.DateTimeField(_("prazo"), db_index=True)
    identity_verified_at = models.DateTimeField(
        _("identidade verificada em"), null=True, blank=True
    )
    identity_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("verificada por"),
    )
    identity_method = models.CharField(
        _("forma de verificação"), max_length=20, choices=IdentityMethod.choices, blank=True
    )
    identity_note = EncryptedTextField(_("observação da verificação"), max_length=255, blank=True)
    answer_text = EncryptedTextField(_("resposta"), blank=True)
    answered_at = models.DateTimeField(_("respondida em"), null=True, blank=True)
    answer_delivered = models.BooleanField(_("resposta entregue no canal"), default=False)
    # Outside WhatsApp's 24-hour window the customer gets an approved template saying the answer
    # is ready; the answer itself goes out when they next write (``dsr_deliver_awaiting``).
    answer_notified_at = models.DateTimeField(
        _("titular avisado por modelo em"), null=True, blank=True
    )
    retained_legal_basis = models.TextField(
        _("dados mantidos e fundamento legal"),
        blank=True,
        help_text=_("Informado ao titular (art. 18, §4º; art. 16, I)."),
    )
    third_parties = models.JSONField(
        _("terceiros comunicados (art. 18, §6º)"), default=list, blank=True
    )
    erasure_report = models.JSONField(_("relatório da eliminação (só contagens)"), default=dict)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("responsável"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registrada por"),
    )
    alerted_at = models.DateTimeField(_("último alerta de prazo"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("requisição de titular")
        verbose_name_plural = _("requisições de titulares")
        ordering = ["due_at"]
        indexes = [models.Index(fields=["status", "due_at"], name="dsr_status_due")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, now=None) -> bool:
        return self.is_open and (now or timezone.now()) > self.due_at


class RequestEvent(models.Model):
    """Status history of a request (who moved it, when). ``note`` holds no personal data."""

    request = models.ForeignKey(DataSubjectRequest, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("observação"), max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("histórico da requisição")
        verbose_name_plural = _("histórico das requisições")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '—'} → {self.to_status}"


class DataExport(models.Model):
    """A ZIP with everything the registry knows about a subject (Art. 18 II/V, Art. 19 §3).

    ``token`` is the secret part of the download link; the link stops working at
    ``expires_at`` and every download is written to the access log.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Na fila")
        RUNNING = "running", _("Gerando")
        READY = "ready", _("Pronto")
        FAILED = "failed", _("Falhou")
        EXPIRED = "expired", _("Expirado")

    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="exports"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progresso (%)"), default=0)
    file = models.FileField(_("arquivo"), upload_to="compliance/exports/", blank=True)
    size = models.PositiveBigIntegerField(default=0)
    token = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(_("link expira em"), null=True, blank=True)
    download_count = models.PositiveIntegerField(_("downloads"), default=0)
    error = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("exportação de dados")
        verbose_name_plural = _("exportações de dados")

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"

    def is_downloadable(self, now=None) -> bool:
        return (
            self.status == self.Status.READY
            and bool(self.file)
            and self.expires_at is not None
            and (now or timezone.now()) < self.expires_at
        )


class ConsentRecord(models.Model):
    """The consent ledger: one row per grant or revocation, per purpose (LGPD Art. 8).

    Never updated: the current state of a purpose is its latest row. ``proof`` says how the
    will was shown (message id, keyword, staff member) without copying message text.
    """

    class Purpose(models.TextChoices):
        SERVICE_MESSAGES = "service_messages", _("Mensagens de atendimento e avisos do serviço")
        MARKETING = "marketing", _("Campanhas e ofertas (marketing)")
        AI_NOTICE = "ai_notice", _("Atendimento com inteligência artificial (aviso e ciência)")

    class Action(models.TextChoices):
        GRANTED = "granted", _("Concedido")
        REVOKED = "revoked", _("Revogado")

    customer = models.ForeignKey(
        "conversations.Customer", on_delete=models.PROTECT, related_name="consents"
    )
    purpose = models.CharField(_("finalidade"), max_length=20, choices=Purpose.choices)
    action = models.CharField(_("ação"), max_length=8, choices=Action.choices)
    text_version = models.CharField(_("versão do texto apresentado"), max_length=40)
    channel = models.CharField(_("canal"), max_length=20)
    proof = EncryptedJSONField(_("prova"), default=dict, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("registrado em"), default=timezone.now)

    class Meta:
        verbose_name = _("registro de consentimento")
        verbose_name_plural = _("registros de consentimento")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["customer", "purpose", "-created_at"], name="consent_latest")
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()}: {self.get_action_display()}"


class LegalHold(models.Model):
    """A hold on one customer's data (litigation, authority request: LGPD Art. 7 VI, Art. 16 I).

    While active, retention skips the customer and erasure is refused with the reason.
    """

    customer = models.ForeignKey(
        "conversations.Customer", on_delete=models.PROTECT, related_name="legal_holds"
    )
    reason = EncryptedTextField(_("motivo"), max_length=255)
    legal_basis = models.CharField(_("fundamento legal"), max_length=255)
    until = models.DateField(_("até"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(_("liberada em"), null=True, blank=True)

    # str() shows the reason: the change history names the hold by id instead.
    audit_repr_is_personal = True

    class Meta:
        verbose_name = _("retenção legal")
        verbose_name_plural = _("retenções legais")

    def __str__(self) -> str:
        return f"#{self.pk} {self.reason}"


class ServiceRecordHold(models.Model):
    """The Anatel/SAC service record kept after a subject's data is erased (Art. 16 I).

    Holds the protocol, timestamps, classification and a synthesis generated from structured
    fields (never message text), for ``retain_until`` (RGC 765: 3 years). Blocked from ordinary
    use: only the DPO sees it. ``subject_digest`` is a keyed HMAC of the phone so the same
    person's later history request can be matched; it is pseudonymous data, blocked and purged
    with the record.
    """

    protocol = models.CharField(_("protocolo"), max_length=20, unique=True)
    opened_at = models.DateTimeField(_("aberto em"))
    closed_at = models.DateTimeField(_("concluído em"), null=True, blank=True)
    classification = models.CharField(_("classificação"), max_length=100, blank=True)
    synthesis = EncryptedTextField(_("síntese (sem texto de mensagens)"), blank=True)
    response = models.CharField(_("tratamento dado"), max_length=255, blank=True)
    legal_basis = models.CharField(_("fundamento legal"), max_length=255)
    retain_until = models.DateField(_("manter até"))
    subject_digest = models.CharField(max_length=64, blank=True, db_index=True)
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("registro de atendimento retido (Anatel)")
        verbose_name_plural = _("registros de atendimento retidos (Anatel)")

    def __str__(self) -> str:
        return self.protocol


class AccessLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the personal-data access log is append-only")

    def delete(self):
        raise PermissionError("the personal-data access log is append-only")


class AccessLogEntry(models.Model):
    """Who revealed which customer's personal data, when, from where (LGPD Art. 37, 46;
    Decreto 8.771/2016 art. 13 III). Append-only, hash-chained.

    ``row_hash`` = SHA-256 over the previous row's hash and this row's content, so editing or
    removing a row breaks the chain (``manage.py verify_audit_log``). Rows are only inserted by
    ``compliance.services.access_log_record``; ``save`` refuses updates and the queryset refuses
    ``update``/``delete``. ``customer_id`` and ``team_id`` are plain numbers (no FK), so erasing
    a customer never rewrites the log.
    """

    class Action(models.TextChoices):
        VIEW_CONVERSATION = "view_conversation", _("Abriu conversa")
        VIEW_CUSTOMER = "view_customer", _("Abriu cadastro do cliente")
        VIEW_MEDIA = "view_media", _("Abriu mídia")
        SEARCH = "search", _("Pesquisou cliente")
        EXPORT_CREATE = "export_create", _("Gerou exportação")
        EXPORT_DOWNLOAD = "export_download", _("Baixou exportação")
        VIEW_SERVICE_RECORD = "view_service_record", _("Consultou registro retido")
        API_READ = "api_read", _("Leitura pela API")

    created_at = models.DateTimeField(_("quando"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("usuário"),
    )
    username = models.CharField(_("usuário (no momento)"), max_length=150, blank=True)
    customer_id = models.BigIntegerField(_("cliente"), null=True, blank=True, db_index=True)
    team_id = models.BigIntegerField(_("equipe"), null=True, blank=True)
    action = models.CharField(_("ação"), max_length=24, choices=Action.choices)
    object_type = models.CharField(_("objeto"), max_length=50, blank=True)
    object_id = models.CharField(_("id do objeto"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64, unique=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("acesso a dados pessoais")
        verbose_name_plural = _("acessos a dados pessoais")
        ordering = ["-pk"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.pk} {self.username} {self.action}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("the personal-data access log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the personal-data access log is append-only")


class AccessLogCheckpoint(models.Model):
    """Where the chain starts after retention removed its oldest rows: the last removed row's
    id and hash, so ``verify_audit_log`` still proves the remaining rows untouched."""

    last_removed_id = models.BigIntegerField()
    last_removed_hash = models.CharField(max_length=64)
    removed_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("ponto de verificação do registro de acessos")
        verbose_name_plural = _("pontos de verificação do registro de acessos")
        ordering = ["-last_removed_id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"≤ #{self.last_removed_id}"


class Incident(models.Model):
    """A security incident with personal data (LGPD Art. 48; Res. CD/ANPD 15/2024).

    Every incident is registered, notified or not, and kept at least 5 years (art. 10).
    ``anpd_due_at`` / ``subjects_due_at``: 3 business days from ``discovered_at`` (arts. 6, 9),
    Brazilian national holidays considered (``compliance.services.deadlines``).
    """

    class Risk(models.TextChoices):
        PENDING = "pending", _("Em avaliação")
        RELEVANT = "relevant", _("Risco ou dano relevante: comunicar")
        NOT_RELEVANT = "not_relevant", _("Sem risco relevante: registrar sem comunicar")

    title = models.CharField(_("título"), max_length=200)
    discovered_at = models.DateTimeField(_("ciência do incidente em"))
    occurred_at = models.DateTimeField(_("ocorrido em (se conhecido)"), null=True, blank=True)
    # What the registry declares personal (it may name or describe subjects) is encrypted.
    description = EncryptedTextField(_("descrição e causa principal (XI)"))
    data_nature = EncryptedTextField(_("natureza e categoria dos dados afetados (I)"))
    sensitive_data = models.BooleanField(_("envolve dados sensíveis"), default=False)
    financial_data = models.BooleanField(_("envolve dados financeiros"), default=False)
    authentication_data = models.BooleanField(_("envolve dados de autenticação"), default=False)
    large_scale = models.BooleanField(_("larga escala"), default=False)
    subjects_affected = models.PositiveIntegerField(_("titulares afetados (II)"), default=0)
    subjects_children = models.PositiveIntegerField(_("crianças"), default=0)
    subjects_adolescents = models.PositiveIntegerField(_("adolescentes"), default=0)
    subjects_elderly = models.PositiveIntegerField(_("idosos"), default=0)
    subjects_total_in_activity = models.PositiveIntegerField(
        _("total de titulares na atividade afetada (XII)"), default=0
    )
    measures_before = models.TextField(
        _("medidas de segurança antes do incidente (III)"), blank=True
    )
    measures_after = models.TextField(
        _("medidas de segurança depois do incidente (III)"), blank=True
    )
    risks = EncryptedTextField(_("riscos e impactos aos titulares (IV)"), blank=True)
    delay_reasons = EncryptedTextField(_("motivos da demora (V)"), blank=True)
    mitigation = models.TextField(_("medidas para reverter ou mitigar (VI)"), blank=True)
    operator = models.CharField(_("operador envolvido (X)"), max_length=200, blank=True)
    risk_assessment = models.CharField(
        _("avaliação de risco"), max_length=14, choices=Risk.choices, default=Risk.PENDING
    )
    reason_not_notified = EncryptedTextField(_("motivo para não comunicar"), blank=True)
    anpd_due_at = models.DateTimeField(_("prazo ANPD"), null=True, blank=True)
    subjects_due_at = models.DateTimeField(_("prazo titulares"), null=True, blank=True)
    anpd_notified_at = models.DateTimeField(_("comunicado à ANPD em"), null=True, blank=True)
    complement_due_at = models.DateTimeField(_("prazo de complementação"), null=True, blank=True)
    subjects_notified_at = models.DateTimeField(
        _("comunicado aos titulares em"), null=True, blank=True
    )
    communication_note = EncryptedTextField(_("forma e conteúdo da comunicação"), blank=True)
    retain_until = models.DateField(_("manter até"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("incidente de segurança")
        verbose_name_plural = _("incidentes de segurança")
        ordering = ["-discovered_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(risk_assessment="not_relevant") | ~Q(reason_not_notified=""),
                name="incident_unnotified_has_reason",
            )
        ]

    def __str__(self) -> str:
        return self.title


class RetentionRun(models.Model):
    """One run of the retention purge: counts per data class, never personal data."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = _("execução da retenção")
        verbose_name_plural = _("execuções da retenção")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M}"
