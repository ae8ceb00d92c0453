"""Customers, conversations and messages: the core of the product.

State changes go through ``conversations.services``; nothing here has side effects in ``save()``
(``Customer.save`` only derives its blind-index columns, see ``ispsupport.crypto``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport.crypto import (
    BlindIndexField,
    BlindIndexQuerySet,
    EncryptedJSONField,
    EncryptedTextField,
    WordBlindIndexField,
    with_blind_indexes,
)

# Meta lets a business answer freely for 24 hours after the customer's last message.
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)


class Customer(models.Model):
    """A WhatsApp contact of the ISP.

    Identity: Meta's ``wa_id`` when it sends one, else its business-scoped user id (BSUID,
    ``user_id``); customers who hide their number behind a username arrive with the BSUID only.
    ``phone_e164`` holds the canonical number (Brazilian mobiles always with the 9th digit),
    so ``5511987654321`` and ``551187654321`` are one customer.

    Personal fields are encrypted at rest (``ispsupport.crypto``); the database cannot compare
    them. Exact look-ups go through keyed blind indexes — ``wa_id_bidx``, ``bsuid_bidx`` and
    ``phone_bidx`` (unique: one customer per identifier), ``cpf_bidx``, and ``name_bidx`` (one
    token per name word, for the console's search) — always through
    ``conversations.identity``, never by hand. The indexes are derived columns: every write
    path (create, save, ``Customer.objects`` update/bulk_update/bulk_create) recomputes them
    from the plaintext, so they cannot drift (see ``ispsupport.crypto``).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Ativo")
        BLOCKED = "blocked", _("Bloqueado")
        ANONYMIZED = "anonymized", _("Anonimizado")

    wa_id = EncryptedTextField(_("WhatsApp id"), max_length=32, null=True, blank=True)
    bsuid = EncryptedTextField(_("id do usuário (BSUID)"), max_length=128, null=True, blank=True)
    parent_bsuid = EncryptedTextField(max_length=128, blank=True)
    username = EncryptedTextField(_("nome de usuário"), max_length=100, blank=True)
    phone_e164 = EncryptedTextField(_("telefone (E.164)"), max_length=20, null=True, blank=True)
    name = EncryptedTextField(_("nome"), max_length=200, blank=True)
    cpf = EncryptedTextField(_("CPF"), max_length=11, blank=True)
    contract_ref = models.CharField(_("contrato no provedor"), max_length=64, blank=True)
    status = models.CharField(
        _("situação"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    metadata = EncryptedJSONField(_("metadados"), default=dict, blank=True)
    wa_id_bidx = BlindIndexField(source="wa_id", purpose="customer.wa_id", unique=True)
    bsuid_bidx = BlindIndexField(source="bsuid", purpose="customer.bsuid", unique=True)
    phone_bidx = BlindIndexField(source="phone_e164", purpose="customer.phone", unique=True)
    cpf_bidx = BlindIndexField(source="cpf", purpose="customer.cpf", db_index=True)
    name_bidx = WordBlindIndexField(source="name", purpose="customer.name_word")
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)

    objects = BlindIndexQuerySet.as_manager()

    # The admin's and auditlog's change history name a customer by id, never by name.
    audit_repr_is_personal = True

    class Meta:
        verbose_name = _("cliente")
        verbose_name_plural = _("clientes")
        constraints = [
            models.CheckConstraint(
                condition=Q(wa_id__isnull=False)
                | Q(bsuid__isnull=False)
                | Q(phone_e164__isnull=False)
                | Q(status="anonymized"),
                name="customer_has_an_identity",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.masked_phone or self.username or f"#{self.pk}"

    def save(self, *args, **kwargs) -> None:
        """Only adds the blind indexes of listed fields to ``update_fields`` (they are derived
        from them); no other side effect."""
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = with_blind_indexes(Customer, kwargs["update_fields"])
        super().save(*args, **kwargs)

    @property
    def masked_phone(self) -> str:
        """The phone with the middle digits hidden, for lists and logs of staff actions."""
        if not self.phone_e164:
            return ""
        p = self.phone_e164
        return f"{p[:5]}•••••{p[-4:]}" if len(p) > 9 else "•••"

    @property
    def masked_cpf(self) -> str:
        return f"•••.{self.cpf[3:6]}.•••-{self.cpf[-2:]}" if len(self.cpf) == 11 else ""


class Conversation(models.Model):
    """One contact of a customer with the ISP, identified by its protocol number.

    Life cycle: bot → waiting → assigned → closed. A closed conversation is never reopened: the
    customer's next message opens a new one. At most one open conversation per customer,
    enforced by the partial unique constraint ``one_open_conversation_per_customer``.

    Indexes and the queries they serve:
    - ``conv_state_agent``: an agent's own queue ("Mine": state=assigned, assigned_agent=me).
    - ``conv_team_queue``: a team's waiting queue ordered by priority, then age.
    - ``conv_state_queue``: the waiting queue across teams (supervisors, auto-assignment).
    - ``customer`` (FK index): a customer's previous conversations in the sidebar.
    - ``protocol`` (unique): search by protocol number.
    - ``conv_opened_at`` / ``conv_closed_at``: the dashboard's figures for a period.
    """

    class State(models.TextChoices):
        BOT = "bot", _("Com o robô")
        WAITING = "waiting", _("Aguardando atendente")
        ASSIGNED = "assigned", _("Em atendimento")
        CLOSED = "closed", _("Encerrada")

    class Priority(models.IntegerChoices):
        LOW = 0, _("Baixa")
        NORMAL = 1, _("Normal")
        HIGH = 2, _("Alta")
        URGENT = 3, _("Urgente")

    class Resolution(models.TextChoices):
        RESOLVED = "resolved", _("Resolvido")
        RESOLVED_BY_BOT = "resolved_by_bot", _("Resolvido pelo robô")
        UNRESOLVED = "unresolved", _("Não resolvido")
        NO_RESPONSE = "no_response", _("Cliente não respondeu")
        DUPLICATE = "duplicate", _("Duplicado")
        SPAM = "spam", _("Spam")

    class RequestKind(models.TextChoices):
        """The Anatel/SAC kind of demand; each has its legal deadline
        (``compliance.services.sac_deadline``: the keys are the same)."""

        INFORMATION = "information", _("Informação")
        REQUEST = "request", _("Solicitação")
        COMPLAINT = "complaint", _("Reclamação")
        CANCELLATION = "cancellation", _("Cancelamento")
        HISTORY = "history", _("Histórico de protocolo")

    class RequestKindSource(models.TextChoices):
        BOT = "bot", _("Robô (pela intenção)")
        STAFF = "staff", _("Equipe")

    OPEN_STATES = (State.BOT, State.WAITING, State.ASSIGNED)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="conversations", verbose_name=_("cliente")
    )
    protocol = models.CharField(_("protocolo"), max_length=20, unique=True, editable=False)
    state = models.CharField(_("situação"), max_length=10, choices=State.choices, default=State.BOT)
    priority = models.SmallIntegerField(
        _("prioridade"), choices=Priority.choices, default=Priority.NORMAL
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("equipe"),
    )
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("atendente"),
    )
    business_number_id = models.CharField(
        _("número da empresa (phone number id)"), max_length=32, blank=True
    )
    bot_attempts = models.PositiveSmallIntegerField(_("turnos do robô"), default=0)
    opened_at = models.DateTimeField(_("aberta em"), default=timezone.now)
    waiting_since = models.DateTimeField(_("aguardando desde"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("primeira resposta em"), null=True, blank=True)
    last_customer_message_at = models.DateTimeField(
        _("última mensagem do cliente"), null=True, blank=True
    )
    # Defaults to the opening time so the inbox can order and page on it without NULLs.
    last_message_at = models.DateTimeField(
        _("última mensagem"), null=True, blank=True, default=timezone.now
    )
    # The newest message (inbound or outbound) for the inbox preview: one join, no subquery.
    last_message = models.ForeignKey(
        "Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("última mensagem (ref.)"),
    )
    # Customer messages not yet seen by staff; reset when the assigned agent opens it or replies.
    unread_count = models.PositiveIntegerField(_("não lidas"), default=0)
    closed_at = models.DateTimeField(_("encerrada em"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("encerrada por"),
    )
    resolution = models.CharField(
        _("resolução"), max_length=20, choices=Resolution.choices, blank=True
    )
    resolution_note = EncryptedTextField(_("nota de encerramento"), blank=True)
    # CSAT: the survey is requested at most once (``csat_requested_at`` is set by one
    # conditional UPDATE, see conversations.csat); the answer, and an optional comment the
    # customer writes right after it, arrive on the closed conversation.
    csat_requested_at = models.DateTimeField(_("avaliação pedida em"), null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(_("avaliação (CSAT)"), null=True, blank=True)
    csat_answered_at = models.DateTimeField(_("avaliação respondida em"), null=True, blank=True)
    csat_comment = EncryptedTextField(_("comentário da avaliação"), null=True, blank=True)
    csat_comment_at = models.DateTimeField(_("comentário recebido em"), null=True, blank=True)
    # For the dashboard's aggregates (one GROUP BY on this table, no JSON or joins): what the
    # conversation is about as the bot understood it, and when and why it left the bot.
    intent = models.CharField(_("intenção"), max_length=40, blank=True)
    escalated_at = models.DateTimeField(_("encaminhada em"), null=True, blank=True)
    escalation_reason = models.CharField(_("motivo do encaminhamento"), max_length=60, blank=True)
    template_required = models.BooleanField(
        _("exige modelo aprovado"),
        default=False,
        help_text=_("Meta recusou uma mensagem livre (janela de 24 horas encerrada)."),
    )
    # The Anatel kind of the demand: derived from the bot's intent, or set by staff.
    request_kind = models.CharField(
        _("tipo de demanda"), max_length=20, choices=RequestKind.choices, blank=True
    )
    request_kind_source = models.CharField(
        _("tipo definido por"), max_length=5, choices=RequestKindSource.choices, blank=True
    )
    # SLA clocks (conversations.sla): set by the services when a conversation reaches people
    # and whenever what they depend on changes (team, priority, request kind). Stored, so
    # lists and filters compare them with "now" in SQL without computing per row.
    sla_started_at = models.DateTimeField(_("na fila humana desde"), null=True, blank=True)
    first_response_due_at = models.DateTimeField(_("primeira resposta até"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolução até"), null=True, blank=True)
    anatel_due_at = models.DateTimeField(_("prazo Anatel"), null=True, blank=True)
    # Retention: when the nightly purge removed the messages (the service record stays a year
    # longer). The purge reads only closed conversations not purged yet, so its cost follows
    # what expired that night, not the years of service records kept after their messages.
    messages_purged_at = models.DateTimeField(_("mensagens eliminadas em"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversa")
        verbose_name_plural = _("conversas")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=~Q(state="closed"),
                name="one_open_conversation_per_customer",
            ),
            models.CheckConstraint(
                condition=~Q(state="assigned") | Q(assigned_agent__isnull=False),
                name="assigned_conversation_has_agent",
            ),
            models.CheckConstraint(
                condition=~Q(state="closed") | Q(closed_at__isnull=False),
                name="closed_conversation_has_closed_at",
            ),
            models.CheckConstraint(
                condition=Q(csat_score__isnull=True) | Q(csat_score__gte=1, csat_score__lte=5),
                name="csat_between_1_and_5",
            ),
            models.CheckConstraint(
                condition=Q(csat_score__isnull=True) | Q(csat_answered_at__isnull=False),
                name="csat_score_has_answered_at",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "assigned_agent"], name="conv_state_agent"),
            models.Index(
                fields=["team", "state", "-priority", "opened_at"], name="conv_team_queue"
            ),
            models.Index(fields=["state", "-priority", "opened_at"], name="conv_state_queue"),
            # The console's waiting queue: highest priority, then longest waiting, keyset by id.
            models.Index(
                fields=["-priority", "waiting_since", "id"],
                condition=Q(state="waiting"),
                name="conv_waiting_order",
            ),
            # "My teams" / "All": open conversations by latest activity, keyset by id.
            models.Index(
                fields=["-last_message_at", "-id"],
                condition=~Q(state="closed"),
                name="conv_open_activity",
            ),
            # The dashboard: conversations opened (volume by hour and intent) and closed
            # (containment, resolution time, CSAT) in a period.
            models.Index(fields=["opened_at"], name="conv_opened_at"),
            models.Index(fields=["closed_at"], name="conv_closed_at"),
            # Retention: closed conversations whose messages are still kept, oldest first.
            models.Index(
                fields=["closed_at", "id"],
                condition=Q(state="closed", messages_purged_at__isnull=True),
                name="conv_messages_due",
            ),
            # …and those that reached people in a period (the SLA tile and the CSV).
            models.Index(fields=["sla_started_at"], name="conv_sla_started_at"),
            # SLA views: open conversations by their due times, per team.
            models.Index(
                fields=["team", "first_response_due_at"],
                condition=~Q(state="closed") & Q(first_response_at__isnull=True),
                name="conv_open_first_response_due",
            ),
            models.Index(
                fields=["team", "resolution_due_at"],
                condition=~Q(state="closed"),
                name="conv_open_resolution_due",
            ),
        ]

    def __str__(self) -> str:
        return self.protocol

    @property
    def is_open(self) -> bool:
        return self.state != self.State.CLOSED

    @property
    def window_expires_at(self):
        """When free-form replies stop being allowed (None: the customer never wrote)."""
        if self.last_customer_message_at is None:
            return None
        return self.last_customer_message_at + CUSTOMER_SERVICE_WINDOW

    def window_is_open(self, now=None) -> bool:
        expires = self.window_expires_at
        return expires is not None and (now or timezone.now()) < expires


class ProtocolCounter(models.Model):
    """Per-day sequence behind protocol numbers (YYYYMMDD + zero-padded sequence).

    Incremented with one atomic ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement, so
    concurrent openings never share a number and never wait on a table lock.
    """

    day = models.DateField(primary_key=True)
    value = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("contador de protocolos")
        verbose_name_plural = _("contadores de protocolos")

    def __str__(self) -> str:
        return f"{self.day:%Y%m%d}: {self.value}"


class Message(models.Model):
    """One WhatsApp message, inbound or outbound, or a system line of the conversation.

    Outbound messages are created ``pending`` (the outbox) and delivered by the whatsapp app;
    ``status`` only moves forward (see ``services.message_update_delivery``).

    Indexes and the queries they serve:
    - ``wamid`` (unique when present): webhook de-duplication and status updates.
    - ``msg_conv_created``: a conversation's history in order (conversation page, exports).
    - ``msg_created``: messages by age (the retention purge goes by conversation instead, see
      ``Conversation.messages_purged_at``).
    - ``msg_conv_reactions``: a conversation's reactions (the conversation page attaches them to
      their messages) without reading the whole conversation.
    """

    class Direction(models.TextChoices):
        INBOUND = "in", _("Recebida")
        OUTBOUND = "out", _("Enviada")

    class SenderKind(models.TextChoices):
        CUSTOMER = "customer", _("Cliente")
        AGENT = "agent", _("Atendente")
        BOT = "bot", _("Robô")
        SYSTEM = "system", _("Sistema")

    class Type(models.TextChoices):
        TEXT = "text", _("Texto")
        IMAGE = "image", _("Imagem")
        AUDIO = "audio", _("Áudio")
        VIDEO = "video", _("Vídeo")
        DOCUMENT = "document", _("Documento")
        STICKER = "sticker", _("Figurinha")
        LOCATION = "location", _("Localização")
        CONTACTS = "contacts", _("Contatos")
        INTERACTIVE = "interactive", _("Interativa")
        BUTTON = "button", _("Botão")
        REACTION = "reaction", _("Reação")
        TEMPLATE = "template", _("Modelo")
        ORDER = "order", _("Pedido")
        SYSTEM = "system", _("Sistema")
        UNSUPPORTED = "unsupported", _("Não suportada")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Recebida")
        PENDING = "pending", _("Pendente")
        SENT = "sent", _("Enviada")
        DELIVERED = "delivered", _("Entregue")
        READ = "read", _("Lida")
        PLAYED = "played", _("Reproduzida")
        FAILED = "failed", _("Falhou")

    MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    wamid = models.CharField(_("id WhatsApp"), max_length=191, null=True, blank=True, unique=True)
    direction = models.CharField(_("direção"), max_length=3, choices=Direction.choices)
    sender_kind = models.CharField(_("remetente"), max_length=10, choices=SenderKind.choices)
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    type = models.CharField(_("tipo"), max_length=12, choices=Type.choices, default=Type.TEXT)
    # Encrypted at rest: the text agents read (captions, reactions, locations and contacts
    # rendered), the raw payload, Meta's error details (they can echo the text) and the
    # customer's file name. The file itself is encrypted by the storage (ispsupport.storage).
    text = EncryptedTextField(_("texto"), blank=True)
    media_id = models.CharField(max_length=128, blank=True)
    media_mime_type = models.CharField(max_length=100, blank=True)
    media_sha256 = models.CharField(max_length=100, blank=True)
    media_size = models.PositiveBigIntegerField(null=True, blank=True)
    media_filename = EncryptedTextField(max_length=255, blank=True)
    media_file = models.FileField(upload_to="media/%Y/%m/", blank=True)
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    context_wamid = models.CharField(
        _("responde a (wamid)"), max_length=191, blank=True, db_index=True
    )
    payload = EncryptedJSONField(_("conteúdo bruto"), default=dict, blank=True)
    status = models.CharField(
        _("entrega"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    error_code = models.IntegerField(_("código de erro"), null=True, blank=True)
    error_title = models.CharField(_("erro"), max_length=255, blank=True)
    error_details = EncryptedTextField(_("detalhes do erro"), blank=True)
    whatsapp_timestamp = models.DateTimeField(_("horário no WhatsApp"), null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Outbox bookkeeping: a worker claims a pending message for a lease before calling Meta,
    # so the sweeper and a retried task never send it twice.
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    delivery_claimed_until = models.DateTimeField(null=True, blank=True)
    deleted_by_customer_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("criada em"), default=timezone.now)

    class Meta:
        verbose_name = _("mensagem")
        verbose_name_plural = _("mensagens")
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="msg_conv_created"),
            models.Index(fields=["created_at"], name="msg_created"),
            models.Index(
                fields=["conversation", "created_at"],
                condition=Q(type="reaction"),
                name="msg_conv_reactions",
            ),
            # The outbox sweeper: pending outbound messages by age.
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="msg_outbox_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.type} #{self.pk}"


class ConversationEvent(models.Model):
    """Why a conversation is where it is: assignment, transfer, escalation, bot decision, close.

    Holds no customer text (``data`` carries ids, reasons and figures only).
    Index: (conversation, created_at) for the conversation page's system lines.
    """

    class Kind(models.TextChoices):
        OPENED = "opened", _("Aberta")
        ESCALATED = "escalated", _("Encaminhada para atendimento humano")
        ASSIGNED = "assigned", _("Atribuída")
        UNASSIGNED = "unassigned", _("Devolvida à fila")
        TRANSFERRED = "transferred", _("Transferida")
        PRIORITY = "priority", _("Prioridade alterada")
        CLASSIFIED = "classified", _("Tipo de demanda definido")
        BOT_DECISION = "bot_decision", _("Decisão do robô")
        DELIVERY_FAILED = "delivery_failed", _("Falha de entrega")
        CLOSED = "closed", _("Encerrada")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("evento da conversa")
        verbose_name_plural = _("eventos da conversa")
        indexes = [models.Index(fields=["conversation", "created_at"], name="convevent_conv")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class ConversationNote(models.Model):
    """A private note on a conversation: visible to staff only, never sent to the customer.

    Personal data: ``text`` is free text written by staff about the customer's case.
    Index: (conversation, created_at) for the conversation page.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="notes", verbose_name=_("conversa")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("autor"),
    )
    text = EncryptedTextField(_("nota"))
    created_at = models.DateTimeField(_("criada em"), default=timezone.now)

    class Meta:
        verbose_name = _("nota interna")
        verbose_name_plural = _("notas internas")
        indexes = [models.Index(fields=["conversation", "created_at"], name="note_conv_created")]

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.created_at:%Y-%m-%d %H:%M}"


class CannedResponse(models.Model):
    """A ready answer agents insert with ``/atalho``; global when ``team`` is empty.

    ``body`` may use the variables ``{{nome}}``, ``{{protocolo}}``, ``{{atendente}}`` and
    ``{{empresa}}``, filled in for the conversation at hand.
    """

    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_responses",
        verbose_name=_("equipe"),
        help_text=_("Vazio: disponível para todas as equipes."),
    )
    shortcut = models.SlugField(_("atalho"), max_length=40)
    title = models.CharField(_("título"), max_length=100)
    body = models.TextField(_("texto"), max_length=4096)
    is_active = models.BooleanField(_("ativa"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("resposta pronta")
        verbose_name_plural = _("respostas prontas")
        ordering = ["shortcut"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "shortcut"],
                condition=Q(team__isnull=False),
                name="canned_team_shortcut",
            ),
            models.UniqueConstraint(
                fields=["shortcut"], condition=Q(team__isnull=True), name="canned_global_shortcut"
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class LiveEvent(models.Model):
    """One live update sent to the console, kept briefly so reconnecting sockets catch up.

    ``id`` is the sequence clients track. ``audience`` lists the channel groups that received
    it, space-delimited (`` team.3 agent.<uuid> ``), so a catch-up returns to each socket only
    what its groups were sent. Holds ids and states only, never customer text; pruned after
    ``CONSOLE_EVENT_RETENTION_MINUTES``.
    """

    audience = models.CharField(max_length=500)
    kind = models.CharField(max_length=40)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("evento ao vivo")
        verbose_name_plural = _("eventos ao vivo")

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}"
