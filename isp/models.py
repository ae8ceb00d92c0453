"""What only an ISP needs: contracts with their plan, status and place in the network, invoices,
technical-visit windows, trust unlocks, and who a WhatsApp conversation has proved to be.

Two kinds of ``Contract`` rows share one table, told apart by ``source``:

- ``demo``: the demo ERP's own records (``seed_demo``), read by ``isp.erp.demo``. They stand for
  the ISP's management system, so erasure keeps them (the ERP owns them) and only our cached
  copies go.
- ``erp``: our cached copy of a contract the real ERP returned (``isp.erp.rest``), refreshed on
  every look-up; erased on request and purged when stale.

Both carry the same **region/node tags** — ``city``, ``neighbourhood``, ``pop``, ``olt``,
``box`` (CTO/splitter box) — in plain, indexed columns so an outage register ("every contract
behind OLT 3") and campaign segments (plan, city, status) can filter them with ordinary
queries (``isp.selectors.contracts_in_region``). Name, CPF, street address and phones are
personal data: encrypted at rest, with keyed blind indexes for the exact look-ups the bot needs.
"""

from __future__ import annotations

from decimal import Decimal

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
        _("lido do ERP em"), null=True, blank=True, help_text=_("Só para cópias do ERP.")
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
