"""What only an ISP needs: contracts with their plan, status and place in the network, invoices,
technical-visit windows, trust unlocks, and who a WhatsApp conversation has proved to be.

Three kinds of ``Contract`` rows share one table, told apart by ``source``:

- ``demo``: the demo ERP's own records (``seed_demo``), read by ``isp.erp.demo``. They stand for
  the ISP's management system, so erasure keeps them (the ERP owns them) and only our cached
  copies go.
- ``erp``: our cached copy of a contract the real ERP returned (``isp.erp.rest``), refreshed on
  every look-up; erased on request and purged when stale.
- ``import``: our copy of a contract from the ERP's export file (``manage.py import_customers``
  or the admin upload, ``isp.imports``), so campaigns and outages reach the whole customer base,
  not only the customers the bot looked up. A copy like ``erp`` (erased on request, purged
  when no import or look-up brought it for ``RETENTION_ERP_CACHE_DAYS``); the demo ERP serves
  these too, so an imported base can be tried in ``make run``.

Both carry the same **region/node tags** — ``city``, ``neighbourhood``, ``pop``, ``olt``,
``box`` (CTO/splitter box) — in plain, indexed columns so an outage register ("every contract
behind OLT 3") and campaign segments (plan, city, status) can filter them with ordinary
queries (``isp.selectors.contracts_in_region``). Name, CPF, street address and phones are
personal data: encrypted at rest, with keyed blind indexes for the exact look-ups the bot needs.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport.crypto import EncryptedTextField, blind_index

CPF_INDEX_PURPOSE = "isp.cpf"
PHONE_INDEX_PURPOSE = "isp.phone"


def cpf_index(digits: str) -> str:
    """Blind index of an 11-digit CPF (normalise first: digits only)."""
    return blind_index(digits, purpose=CPF_INDEX_PURPOSE)


def phone_index(e164: str) -> str:
    """Blind index of a canonical E.164 phone (``conversations.phones.normalize_phone``)."""
    return blind_index(e164, purpose=PHONE_INDEX_PURPOSE)


class Contract(models.Model):
    """One service contract of the ISP (an installation address with a plan)."""

    class Source(models.TextChoices):
        DEMO = "demo", _("ERP de demonstração")
        ERP = "erp", _("Cópia do ERP")
        IMPORT = "import", _("Importado do ERP (arquivo)")

    # Our copies of the ERP's records: erased on request, purged when stale.
    COPY_SOURCES = (Source.ERP, Source.IMPORT)

    class Status(models.TextChoices):
        ACTIVE = "active", _("Ativo")
        BLOCKED = "blocked", _("Bloqueado por falta de pagamento")
        CANCELLED = "cancelled", _("Cancelado")

    class Connection(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline")
        UNKNOWN = "unknown", _("Desconhecida")

    ref = models.CharField(
        _("contrato"), max_length=64, unique=True, help_text=_("O número do contrato no ERP.")
    )
    source = models.CharField(
        _("origem"), max_length=8, choices=Source.choices, default=Source.DEMO
    )
    holder_name = EncryptedTextField(_("titular"), blank=True)
    cpf = EncryptedTextField(_("CPF do titular"), blank=True)
    cpf_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    address = EncryptedTextField(
        _("endereço de instalação"), blank=True, help_text=_("Rua, número e complemento.")
    )
    # Region/node tags: plain so outages and campaigns can query them (not personal alone).
    city = models.CharField(_("cidade"), max_length=80, blank=True)
    neighbourhood = models.CharField(_("bairro"), max_length=80, blank=True)
    pop = models.CharField(_("POP"), max_length=40, blank=True)
    olt = models.CharField(_("OLT"), max_length=40, blank=True)
    box = models.CharField(_("caixa (CTO)"), max_length=40, blank=True)
    plan_name = models.CharField(_("plano"), max_length=80)
    download_mbps = models.PositiveIntegerField(_("download (Mbps)"), default=0)
    upload_mbps = models.PositiveIntegerField(_("upload (Mbps)"), default=0)
    monthly_price = models.DecimalField(
        _("mensalidade (R$)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    connection = models.CharField(
        _("conexão"), max_length=8, choices=Connection.choices, default=Connection.UNKNOWN
    )
    connection_since = models.DateTimeField(_("conexão nesse estado desde"), null=True, blank=True)
    trust_unlocked_until = models.DateTimeField(
        _("desbloqueio em confiança até"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)
    synced_at = models.DateTimeField(
        _("lido do ERP em"),
        null=True,
        blank=True,
        help_text=_(
            "Só para cópias do ERP: a última consulta ou importação que trouxe o contrato."
        ),
    )

    class Meta:
        verbose_name = _("contrato")
        verbose_name_plural = _("contratos")
        ordering = ["ref"]
        indexes = [
            # The outage register and campaign segments filter on these.
            models.Index(fields=["city", "neighbourhood"], name="contract_city_hood"),
            models.Index(fields=["olt"], name="contract_olt"),
            models.Index(fields=["pop"], name="contract_pop"),
            models.Index(fields=["box"], name="contract_box"),
            models.Index(fields=["status", "plan_name"], name="contract_status_plan"),
        ]

    def __str__(self) -> str:
        return f"{self.ref} · {self.plan_name}"

    def set_cpf(self, digits: str) -> None:
        """Store the CPF and its blind index together (never one without the other)."""
        self.cpf = digits
        self.cpf_index = cpf_index(digits) if digits else ""

    @property
    def blocked_now(self) -> bool:
        """Blocked for non-payment and not inside a trust unlock."""
        if self.status != self.Status.BLOCKED:
            return False
        return not (self.trust_unlocked_until and self.trust_unlocked_until > timezone.now())


class ContractPhone(models.Model):
    """A phone the ISP registered on a contract. One phone may sit on several contracts (a
    household); matching the WhatsApp number against these is the first identity check."""

    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="phones", verbose_name=_("contrato")
    )
    phone = EncryptedTextField(_("telefone (E.164)"))
    phone_index = models.CharField(max_length=64, db_index=True, editable=False)

    class Meta:
        verbose_name = _("telefone do contrato")
        verbose_name_plural = _("telefones do contrato")
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "phone_index"], name="contract_phone_unique"
            )
        ]

    def __str__(self) -> str:
        p = self.phone or ""
        return f"{p[:5]}•••••{p[-4:]}" if len(p) > 9 else "•••"


def import_upload_to(instance: models.Model, filename: str) -> str:
    """A random storage name: the name the file had on the uploader's computer is not kept."""
    return f"isp/imports/{uuid.uuid4().hex}.csv"


def import_report_to(instance: models.Model, filename: str) -> str:
    return f"isp/imports/reports/{uuid.uuid4().hex}.csv"


class ContractImport(models.Model):
    """One upload of the customer base through the admin (``isp.imports``), and its outcome.

    The uploaded CSV holds personal data: it is written through the default (encrypted)
    storage, read by the import task and **deleted when the import ends**, whatever the outcome
    (retention ``contract_import_files`` removes any left behind). The rejected-rows report keeps
    only line numbers, column names and reasons. Runs are purged by ``contract_imports``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Na fila")
        RUNNING = "running", _("Importando")
        DONE = "done", _("Concluída")
        FAILED = "failed", _("Arquivo recusado")

    file = models.FileField(_("arquivo CSV"), upload_to=import_upload_to, blank=True)
    dry_run = models.BooleanField(
        _("só validar"), default=False, help_text=_("Confere todas as linhas sem gravar nada.")
    )
    status = models.CharField(
        _("situação"), max_length=8, choices=Status.choices, default=Status.PENDING
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("enviado por"),
    )
    created_at = models.DateTimeField(_("enviado em"), auto_now_add=True)
    started_at = models.DateTimeField(_("início"), null=True, blank=True)
    finished_at = models.DateTimeField(_("fim"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("último lote em"), null=True, blank=True)
    total_rows = models.PositiveIntegerField(_("linhas no arquivo"), default=0)
    processed_rows = models.PositiveIntegerField(_("linhas processadas"), default=0)
    created_count = models.PositiveIntegerField(_("criados"), default=0)
    updated_count = models.PositiveIntegerField(_("atualizados"), default=0)
    unchanged_count = models.PositiveIntegerField(_("sem alteração"), default=0)
    rejected_count = models.PositiveIntegerField(_("rejeitados"), default=0)
    error = models.TextField(_("motivo da recusa do arquivo"), blank=True)
    report = models.FileField(
        _("relatório das linhas rejeitadas"), upload_to=import_report_to, blank=True
    )

    class Meta:
        verbose_name = _("importação da base de clientes")
        verbose_name_plural = _("importações da base de clientes")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="contract_import_status")]

    def __str__(self) -> str:
        return f"#{self.pk} · {timezone.localtime(self.created_at):%d/%m/%Y %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)


class Invoice(models.Model):
    """A monthly bill of a contract (demo ERP data; the real ERP keeps its own)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Em aberto")
        PAID = "paid", _("Paga")
        CANCELLED = "cancelled", _("Cancelada")

    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="invoices", verbose_name=_("contrato")
    )
    number = models.CharField(_("número"), max_length=40)
    reference_month = models.DateField(_("mês de referência"))
    due_date = models.DateField(_("vencimento"))
    amount = models.DecimalField(
        _("valor (R$)"),
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    digitable_line = models.CharField(_("linha digitável do boleto"), max_length=60, blank=True)
    pix_code = models.TextField(_("PIX copia e cola"), blank=True)
    paid_at = models.DateTimeField(_("paga em"), null=True, blank=True)

    class Meta:
        verbose_name = _("fatura")
        verbose_name_plural = _("faturas")
        ordering = ["contract", "due_date"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "number"], name="invoice_unique_number"),
        ]
        indexes = [models.Index(fields=["status", "due_date"], name="invoice_status_due")]

    def __str__(self) -> str:
        return f"{self.number} ({self.due_date:%d/%m/%Y})"


class VisitWindow(models.Model):
    """A period when technicians can visit (demo ERP data). ``city`` empty: any city."""

    starts_at = models.DateTimeField(_("início"))
    ends_at = models.DateTimeField(_("fim"))
    city = models.CharField(_("cidade"), max_length=80, blank=True)
    capacity = models.PositiveSmallIntegerField(_("vagas"), default=2)
    booked = models.PositiveSmallIntegerField(_("agendadas"), default=0)

    class Meta:
        verbose_name = _("janela de visita técnica")
        verbose_name_plural = _("janelas de visita técnica")
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="visit_window_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(booked__lte=F("capacity")), name="visit_window_not_overbooked"
            ),
        ]

    def __str__(self) -> str:
        start = timezone.localtime(self.starts_at)
        end = timezone.localtime(self.ends_at)
        return f"{start:%d/%m/%Y %H:%M}–{end:%H:%M}"


class ServiceOrder(models.Model):
    """A technical visit booked for a contract (demo ERP data)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Agendada")
        DONE = "done", _("Concluída")
        CANCELLED = "cancelled", _("Cancelada")

    contract = models.ForeignKey(
        Contract,
        on_delete=models.CASCADE,
        related_name="service_orders",
        verbose_name=_("contrato"),
    )
    window = models.ForeignKey(
        VisitWindow,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("janela"),
    )
    number = models.CharField(_("número"), max_length=40, unique=True)
    reason = models.CharField(_("motivo"), max_length=40, default="technical_visit")
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.SCHEDULED
    )
    created_at = models.DateTimeField(_("criada em"), auto_now_add=True)

    class Meta:
        verbose_name = _("ordem de serviço")
        verbose_name_plural = _("ordens de serviço")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number


class TrustUnlock(models.Model):
    """A trust unlock ("desbloqueio em confiança") granted through the bot.

    Our own record whatever the adapter, because the ISP's policy (once per
    ``ISP_TRUST_UNLOCK_INTERVAL_DAYS``) is enforced here before the ERP is asked. Keyed by the
    contract's ERP reference so it works without a local contract row.
    """

    contract_ref = models.CharField(_("contrato"), max_length=64, db_index=True)
    adapter = models.CharField(_("ERP"), max_length=20)
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("conversa"),
    )
    granted_at = models.DateTimeField(_("concedido em"), default=timezone.now)
    until = models.DateTimeField(_("válido até"))

    class Meta:
        verbose_name = _("desbloqueio em confiança")
        verbose_name_plural = _("desbloqueios em confiança")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["contract_ref", "granted_at"], name="trustunlock_ref")]

    def __str__(self) -> str:
        return f"{self.contract_ref} · {timezone.localtime(self.granted_at):%d/%m/%Y}"


class ConversationContract(models.Model):
    """Who this conversation has proved to be, and what the bot is waiting for.

    ``contract_refs`` are the contracts the person may see: those whose phone is the WhatsApp
    number, or those of the CPF they typed (never stored here). ``selected_ref`` is the one
    chosen for ``pending_action``. Everything expires at ``expires_at``
    (``ISP_IDENTITY_TTL_MINUTES``): a later request identifies again. Written only by
    ``isp.services`` under the conversation's row lock (the bot's decision transaction).
    """

    class Method(models.TextChoices):
        NONE = "", _("Não identificado")
        PHONE = "phone", _("Número do WhatsApp")
        CPF = "cpf", _("CPF")

    class Awaiting(models.TextChoices):
        NOTHING = "", _("Nada")
        CPF = "cpf", _("CPF do titular")
        CONTRACT = "contract", _("Escolha do contrato")
        WINDOW = "window", _("Escolha da janela de visita")
        UNLOCK = "unlock", _("Confirmação do desbloqueio")

    conversation = models.OneToOneField(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="isp_identity",
        verbose_name=_("conversa"),
    )
    method = models.CharField(
        _("identificado por"), max_length=8, choices=Method.choices, blank=True
    )
    contract_refs = models.JSONField(_("contratos liberados"), default=list, blank=True)
    selected_ref = models.CharField(_("contrato escolhido"), max_length=64, blank=True)
    awaiting = models.CharField(
        _("aguardando"), max_length=10, choices=Awaiting.choices, blank=True
    )
    pending_action = models.CharField(_("pedido em andamento"), max_length=20, blank=True)
    # Window ids offered in the last list, so a reply can only pick one of them.
    offered = models.JSONField(_("opções oferecidas"), default=list, blank=True)
    cpf_attempts = models.PositiveSmallIntegerField(_("tentativas de CPF"), default=0)
    identified_at = models.DateTimeField(_("identificado em"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expira em"))
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)

    class Meta:
        verbose_name = _("identificação na conversa")
        verbose_name_plural = _("identificações nas conversas")
        indexes = [models.Index(fields=["expires_at"], name="convcontract_expires")]

    def __str__(self) -> str:
        return f"{self.conversation_id}: {self.get_method_display()}"

    @property
    def is_live(self) -> bool:
        return self.expires_at > timezone.now()

    @property
    def identified(self) -> bool:
        return self.is_live and bool(self.method) and bool(self.contract_refs)


# --- outages --------------------------------------------------------------------------------------


REGION_TAGS = ("city", "neighbourhood", "pop", "olt", "box")


class RegionFields(models.Model):
    """Where in the network: any combination of the contract tags (blank = not constrained).

    Matched case-insensitively against ``Contract`` (``isp.selectors.Region``).
    """

    city = models.CharField(_("cidade"), max_length=80, blank=True)
    neighbourhood = models.CharField(_("bairro"), max_length=80, blank=True)
    pop = models.CharField(_("POP"), max_length=40, blank=True)
    olt = models.CharField(_("OLT"), max_length=40, blank=True)
    box = models.CharField(_("caixa (CTO)"), max_length=40, blank=True)

    class Meta:
        abstract = True

    @property
    def region_label(self) -> str:
        """``Moema, São Paulo · OLT-SAO-02``: how staff and customers read the place."""
        place = ", ".join(x for x in (self.neighbourhood, self.city) if x)
        network = " · ".join(x for x in (self.pop, self.olt, self.box) if x)
        return " · ".join(x for x in (place, network) if x)

    def region_values(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in REGION_TAGS if getattr(self, name)}


class Outage(RegionFields):
    """A known failure of the network in one region (the outage register).

    While it is open, customers of the region who write about no or slow connection get
    ``public_message`` and the estimate from the bot instead of a queue, and their conversation
    is attached (``OutageConversation``); resolving it sends each of them the all-clear once.
    Written in admin by supervisors and admins (audited); resolved through
    ``isp.outages.outage_resolve``.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Em andamento")
        RESOLVED = "resolved", _("Encerrada")

    title = models.CharField(
        _("título interno"), max_length=120, help_text=_("Para a equipe; o cliente não vê.")
    )
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.OPEN
    )
    starts_at = models.DateTimeField(_("início"), default=timezone.now)
    estimated_end_at = models.DateTimeField(
        _("previsão de normalização"),
        null=True,
        blank=True,
        help_text=_("Horário de São Paulo. Vazio: o cliente lê que ainda não há previsão."),
    )
    public_message = models.TextField(
        _("mensagem ao cliente"),
        max_length=600,
        help_text=_(
            "O que o robô diz aos clientes da região (pt-BR), antes da previsão. "
            "Ex.: Um rompimento de fibra afeta a sua região e nossa equipe já está no local."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("registrada por"),
    )
    created_at = models.DateTimeField(_("registrada em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizada em"), auto_now=True)
    resolved_at = models.DateTimeField(_("encerrada em"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("encerrada por"),
    )

    class Meta:
        verbose_name = _("falha na rede")
        verbose_name_plural = _("falhas na rede")
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(city="", neighbourhood="", pop="", olt="", box=""),
                name="outage_has_a_region",
            ),
            models.CheckConstraint(
                condition=~Q(status="resolved") | Q(resolved_at__isnull=False),
                name="resolved_outage_has_resolved_at",
            ),
        ]
        # The bot asks "which outages are open?" on every message about no connection.
        indexes = [models.Index(fields=["status", "starts_at"], name="outage_status")]

    def __str__(self) -> str:
        return f"{self.title} ({self.region_label})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class OutageConversation(models.Model):
    """A conversation the bot answered with an outage instead of queuing it.

    ``all_clear`` says what the customer got when the outage was resolved: at most one notice
    per customer and outage (the customer's other attached conversations are ``covered``).
    """

    class AllClear(models.TextChoices):
        PENDING = "", _("Aguardando o fim da falha")
        TEXT = "text", _("Aviso enviado (mensagem)")
        TEMPLATE = "template", _("Aviso enviado (modelo aprovado)")
        COVERED = "covered", _("Avisado em outra conversa")
        NO_TEMPLATE = "no_template", _("Não avisado: sem modelo aprovado")
        UNREACHABLE = "unreachable", _("Não avisado: conversa indisponível")

    outage = models.ForeignKey(
        Outage, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("falha")
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("conversa"),
    )
    customer = models.ForeignKey(
        "conversations.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("cliente"),
    )
    contract_ref = models.CharField(_("contrato"), max_length=64, blank=True)
    attached_at = models.DateTimeField(_("vinculada em"), default=timezone.now)
    all_clear = models.CharField(
        _("aviso de normalização"),
        max_length=12,
        choices=AllClear.choices,
        blank=True,
        default=AllClear.PENDING,
    )
    all_clear_message = models.ForeignKey(
        "conversations.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("mensagem do aviso"),
    )
    all_clear_at = models.DateTimeField(_("avisado em"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversa vinculada a falha")
        verbose_name_plural = _("conversas vinculadas a falhas")
        constraints = [
            models.UniqueConstraint(
                fields=["outage", "conversation"], name="outage_conversation_once"
            )
        ]
        indexes = [
            # The all-clear task walks the pending links of one outage in batches.
            models.Index(fields=["outage", "all_clear", "id"], name="outage_link_pending"),
            models.Index(fields=["outage", "customer"], name="outage_link_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.outage_id} · {self.conversation_id}"


class OutageReport(RegionFields):
    """One report of no connection by an identified customer, with the contract's region.

    Detection counts distinct customers per tag over the last minutes with an indexed query;
    rows are purged after ``RETENTION_OUTAGE_REPORTS_DAYS``.
    """

    customer = models.ForeignKey(
        "conversations.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("cliente"),
    )
    contract_ref = models.CharField(_("contrato"), max_length=64, blank=True)
    reported_at = models.DateTimeField(_("relatado em"), default=timezone.now)

    class Meta:
        verbose_name = _("relato de falta de conexão")
        verbose_name_plural = _("relatos de falta de conexão")
        indexes = [
            models.Index(fields=["city", "neighbourhood", "reported_at"], name="report_hood"),
            models.Index(fields=["city", "reported_at"], name="report_city"),
            models.Index(fields=["pop", "reported_at"], name="report_pop"),
            models.Index(fields=["olt", "reported_at"], name="report_olt"),
            models.Index(fields=["box", "reported_at"], name="report_box"),
            models.Index(fields=["reported_at"], name="report_at"),
        ]

    def __str__(self) -> str:
        return f"{self.region_label} {self.reported_at:%Y-%m-%d %H:%M}"


class OutageAlert(RegionFields):
    """Detection's proposal: many customers of one region reported no connection.

    At most one pending alert per region (a partial unique constraint, so racing workers
    cannot raise two). A supervisor opens an outage from it (pre-filled) or dismisses it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Aguardando análise")
        ACCEPTED = "accepted", _("Falha registrada")
        DISMISSED = "dismissed", _("Descartado")

    class Tag(models.TextChoices):
        CITY = "city", _("Cidade")
        NEIGHBOURHOOD = "neighbourhood", _("Bairro")
        POP = "pop", _("POP")
        OLT = "olt", _("OLT")
        BOX = "box", _("Caixa (CTO)")

    tag = models.CharField(_("agrupado por"), max_length=16, choices=Tag.choices)
    customers = models.PositiveIntegerField(_("clientes sem conexão"))
    window_minutes = models.PositiveIntegerField(_("em minutos"))
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    created_at = models.DateTimeField(_("alertado em"), default=timezone.now)
    outage = models.ForeignKey(
        Outage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        verbose_name=_("falha registrada"),
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("analisado por"),
    )
    handled_at = models.DateTimeField(_("analisado em"), null=True, blank=True)

    class Meta:
        verbose_name = _("alerta de possível falha")
        verbose_name_plural = _("alertas de possível falha")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tag", "city", "neighbourhood", "pop", "olt", "box"],
                condition=Q(status="pending"),
                name="outage_alert_one_pending",
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="outage_alert_status")]

    def __str__(self) -> str:
        return f"{self.get_tag_display()}: {self.region_label}"


# --- campaigns ------------------------------------------------------------------------------------


class Campaign(models.Model):
    """A template sent to a segment of customers (maintenance notice, due-date reminder, offer).

    Life cycle (``isp.campaigns``): draft → scheduled → running ⇄ paused → completed, or
    cancelled from any of them. Recipients are listed when it starts (``CampaignRecipient``);
    each send goes through the outbox as a template Message, so delivery, retries and statuses
    are the channel's. Consent is checked when the list is made and again right before each
    send (a "SAIR" in between stops the remaining sends to that customer).
    """

    class Purpose(models.TextChoices):
        # Same values as compliance.ConsentRecord.Purpose: the consent that governs the send.
        SERVICE_MESSAGES = "service_messages", _("Aviso do serviço (manutenção, vencimento)")
        MARKETING = "marketing", _("Oferta (marketing)")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Rascunho")
        SCHEDULED = "scheduled", _("Agendada")
        RUNNING = "running", _("Enviando")
        PAUSED = "paused", _("Pausada")
        COMPLETED = "completed", _("Concluída")
        CANCELLED = "cancelled", _("Cancelada")

    title = models.CharField(_("nome da campanha"), max_length=120)
    purpose = models.CharField(_("finalidade"), max_length=20, choices=Purpose.choices)
    template_name = models.CharField(_("modelo aprovado"), max_length=512)
    template_language = models.CharField(_("idioma do modelo"), max_length=15, default="pt_BR")
    template_body = models.TextField(_("texto do modelo"), blank=True, editable=False)
    parameters = models.JSONField(
        _("parâmetros do modelo"),
        default=list,
        blank=True,
        help_text=_("Os mesmos para todos os destinatários, na ordem {{1}}, {{2}}…"),
    )
    # The segment: each criterion left empty matches everything; all of them are ANDed.
    plans = models.JSONField(_("planos"), default=list, blank=True)
    cities = models.JSONField(_("cidades"), default=list, blank=True)
    contract_statuses = models.JSONField(_("situações do contrato"), default=list, blank=True)
    region_city = models.CharField(_("região: cidade"), max_length=80, blank=True)
    region_neighbourhood = models.CharField(_("região: bairro"), max_length=80, blank=True)
    region_pop = models.CharField(_("região: POP"), max_length=40, blank=True)
    region_olt = models.CharField(_("região: OLT"), max_length=40, blank=True)
    region_box = models.CharField(_("região: caixa (CTO)"), max_length=40, blank=True)
    outage = models.ForeignKey(
        Outage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("clientes vinculados à falha"),
        help_text=_("Envia só aos clientes cujas conversas foram vinculadas a esta falha."),
    )
    starts_at = models.DateTimeField(_("começar em"), default=timezone.now)
    status = models.CharField(
        _("situação"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("criada por"),
    )
    created_at = models.DateTimeField(_("criada em"), auto_now_add=True)
    started_at = models.DateTimeField(_("iniciada em"), null=True, blank=True)
    finished_at = models.DateTimeField(_("terminada em"), null=True, blank=True)
    # Bookkeeping of the sending task (machine-written): when the next batch is due, and how
    # many numbers of the segment had no WhatsApp conversation with us.
    next_run_at = models.DateTimeField(_("próximo lote em"), null=True, blank=True)
    unreachable = models.PositiveIntegerField(_("números sem conversa no WhatsApp"), default=0)

    class Meta:
        verbose_name = _("campanha")
        verbose_name_plural = _("campanhas")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "starts_at"], name="campaign_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def region_values(self) -> dict[str, str]:
        values = {
            "city": self.region_city,
            "neighbourhood": self.region_neighbourhood,
            "pop": self.region_pop,
            "olt": self.region_olt,
            "box": self.region_box,
        }
        return {k: v for k, v in values.items() if v}


class CampaignRecipient(models.Model):
    """One customer of a campaign: queued, sent (a template Message in the outbox) or skipped.

    Delivery figures are read from ``message.status`` with one aggregate query.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Na fila")
        SENT = "sent", _("Entregue ao WhatsApp")
        SKIPPED = "skipped", _("Não enviada")

    class Skip(models.TextChoices):
        NONE = "", _("—")
        NO_CONSENT = "no_consent", _("Sem consentimento para a finalidade")
        OPTED_OUT = "opted_out", _("Pediu para não receber (SAIR)")
        NO_CONVERSATION = "no_conversation", _("Sem conversa no WhatsApp")
        CANCELLED = "cancelled", _("Campanha cancelada")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", verbose_name=_("campanha")
    )
    customer = models.ForeignKey(
        "conversations.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("cliente"),
    )
    contract_ref = models.CharField(_("contrato"), max_length=64, blank=True)
    state = models.CharField(
        _("situação"), max_length=8, choices=State.choices, default=State.QUEUED
    )
    skip_reason = models.CharField(
        _("motivo de não envio"), max_length=16, choices=Skip.choices, blank=True
    )
    message = models.ForeignKey(
        "conversations.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("mensagem"),
    )
    created_at = models.DateTimeField(_("listado em"), default=timezone.now)
    processed_at = models.DateTimeField(_("processado em"), null=True, blank=True)

    class Meta:
        verbose_name = _("destinatário de campanha")
        verbose_name_plural = _("destinatários de campanha")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="campaign_customer_once")
        ]
        indexes = [models.Index(fields=["campaign", "state", "id"], name="campaign_rcpt_queue")]

    def __str__(self) -> str:
        return f"{self.campaign_id} · {self.customer_id}"
