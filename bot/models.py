"""The bot's knowledge base, its escalation policy and the record of every decision it made.

Supervisors edit ``KnowledgeEntry``, ``BotPolicy``, ``EscalationRule`` and ``IntentRoute`` in
admin (audited by django-auditlog, which ``AUDITLOG_INCLUDE_ALL_MODELS`` turns on for every
model); the bot only reads them. ``BotDecision`` is written once per
inbound message by ``bot.services`` and never changed afterwards.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bot.rules import INTENTS
from ispsupport.crypto import EncryptedTextField

INTENT_CHOICES = [
    ("no_connection", _("Sem conexão")),
    ("slow_connection", _("Internet lenta")),
    ("billing", _("Fatura / 2ª via / PIX")),
    ("payment_confirmation", _("Confirmação de pagamento")),
    ("plan_change", _("Mudança de plano")),
    ("technical_visit", _("Visita técnica")),
    ("cancellation", _("Cancelamento")),
    ("human", _("Falar com atendente")),
    ("greeting", _("Saudação")),
    ("other", _("Outro assunto")),
]
assert tuple(key for key, _label in INTENT_CHOICES) == INTENTS  # one list of intents

# Values read_router_photo() returns; an entry answering a photo names one of them.
DIAGNOSIS_CHOICES = [
    ("los_red", _("Luz LOS vermelha (sem sinal da fibra)")),
    ("pon_blinking", _("Luz PON piscando")),
    ("no_power", _("Aparelho apagado")),
    ("all_normal", _("Luzes normais")),
]

# WhatsApp caps an interactive message body at 1,024 characters; the answer is sent as the body
# of a "Resolvido?" button message together with the question.
KB_ANSWER_MAX_LENGTH = 900

PRIORITY_CHOICES = [(0, _("Baixa")), (1, _("Normal")), (2, _("Alta")), (3, _("Urgente"))]


def _validate_intents(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Informe uma lista de intenções."))
    unknown = sorted(set(value) - set(INTENTS))
    if unknown:
        raise ValidationError(_("Intenções desconhecidas: %(names)s"), params={"names": unknown})


def _validate_keywords(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Informe uma lista de palavras-chave."))


class KnowledgeEntry(models.Model):
    """One answer the bot may give, written by the ISP (the bot never invents one).

    The bot picks an active entry whose ``intents`` contain the message's intent; among several,
    the one with most ``keywords`` found in the message wins, then the lowest ``position``; an
    entry without keywords is the intent's default. ``diagnosis`` ties an entry to a router-photo
    reading. ``hand_off`` entries are sent and then the conversation goes to a human (e.g. a
    technical visit must be scheduled by a person).
    """

    slug = models.SlugField(
        _("identificador"),
        max_length=60,
        unique=True,
        help_text=_("Estável: aparece nas decisões do robô e no prompt do modelo."),
    )
    title = models.CharField(_("título"), max_length=120)
    intents = models.JSONField(
        _("intenções"), default=list, blank=True, validators=[_validate_intents]
    )
    keywords = models.JSONField(
        _("palavras-chave"),
        default=list,
        blank=True,
        validators=[_validate_keywords],
        help_text=_("Sem acentos ou com, tanto faz; escolhem entre respostas da mesma intenção."),
    )
    diagnosis = models.CharField(
        _("diagnóstico por foto"), max_length=20, choices=DIAGNOSIS_CHOICES, blank=True
    )
    answer = models.TextField(_("resposta"), max_length=KB_ANSWER_MAX_LENGTH)
    hand_off = models.BooleanField(
        _("encaminhar após responder"),
        default=False,
        help_text=_("Depois desta resposta a conversa vai para um atendente."),
    )
    position = models.PositiveSmallIntegerField(_("ordem"), default=100)
    is_active = models.BooleanField(_("ativa"), default=True)
    created_at = models.DateTimeField(_("criada em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizada em"), auto_now=True)

    class Meta:
        ordering = ["position", "slug"]
        verbose_name = _("resposta da base de conhecimento")
        verbose_name_plural = _("base de conhecimento")

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        super().clean()
        if not self.intents and not self.diagnosis:
            raise ValidationError(_("Escolha ao menos uma intenção ou um diagnóstico por foto."))
        if len(self.answer or "") > KB_ANSWER_MAX_LENGTH:
            raise ValidationError(
                {
                    "answer": _("A resposta cabe em até %(n)d caracteres.")
                    % {"n": KB_ANSWER_MAX_LENGTH}
                }
            )


class BotPolicy(models.Model):
    """The thresholds of the bot's escalation policy; a single row (pk 1), edited in admin."""

    SINGLETON_PK = 1

    negative_sentiment_threshold = models.FloatField(
        _("limite de sentimento negativo"),
        default=-0.85,
        validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)],
        help_text=_("Encaminha quando a nota de sentimento (-1 a 1) for menor ou igual a esta."),
    )
    min_confidence = models.FloatField(
        _("confiança mínima"),
        default=0.3,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Abaixo desta confiança na intenção, encaminha a um atendente."),
    )
    max_bot_turns = models.PositiveSmallIntegerField(
        _("máximo de respostas do robô"),
        default=4,
        validators=[MinValueValidator(1)],
        help_text=_("Depois de tantas respostas sem resolver, encaminha a um atendente."),
    )
    latency_budget_seconds = models.FloatField(
        _("tempo máximo de decisão (s)"),
        default=10.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(60.0)],
        help_text=_("Se o modelo não responder neste tempo, um atendente assume."),
    )
    allow_answer_adaptation = models.BooleanField(
        _("permitir adaptação da resposta pelo modelo"),
        default=True,
        help_text=_(
            "O modelo pode ajustar o texto da resposta; se acrescentar números, valores ou "
            "links que não estão na resposta cadastrada, o texto original é usado."
        ),
    )
    default_team_slug = models.SlugField(
        _("equipe padrão"),
        max_length=50,
        default="suporte",
        blank=True,
        help_text=_("Identificador da equipe usada quando nenhuma regra indica outra."),
    )
    updated_at = models.DateTimeField(_("atualizada em"), auto_now=True)

    class Meta:
        verbose_name = _("política do robô")
        verbose_name_plural = _("política do robô")

    def __str__(self) -> str:
        return str(_("Política do robô"))


class EscalationRule(models.Model):
    """When the bot hands a conversation to humans, and to which team and priority.

    The reasons marked mandatory cannot be switched off: a customer who asks for a person,
    wants to cancel or contests the bot must always reach one (Anatel SAC rules, LGPD Art. 20).
    """

    class Reason(models.TextChoices):
        HUMAN_REQUESTED = "human_requested", _("Cliente pediu atendente")
        CANCELLATION = "cancellation", _("Pedido de cancelamento")
        CONTESTED = "contested", _("Cliente contestou o robô")
        INJECTION = "injection", _("Tentativa de manipular o robô")
        MEDIA_NEEDS_HUMAN = "media_needs_human", _("Áudio, foto ou arquivo sem leitura automática")
        NEGATIVE_SENTIMENT = "negative_sentiment", _("Sentimento muito negativo")
        LOW_CONFIDENCE = "low_confidence", _("Confiança baixa na intenção")
        TOO_MANY_TURNS = "too_many_turns", _("Muitas respostas do robô sem resolver")
        NO_GROUNDED_ANSWER = "no_grounded_answer", _("Sem resposta na base de conhecimento")
        MODEL_UNAVAILABLE = "model_unavailable", _("Modelo indisponível ou lento")
        KB_HAND_OFF = "kb_hand_off", _("Resposta da base pede atendente")
        ERP_UNAVAILABLE = "erp_unavailable", _("Sistema do provedor (ERP) indisponível")
        IDENTITY_FAILED = "identity_failed", _("Cliente não confirmou a identidade (CPF)")

    MANDATORY = frozenset(
        {
            Reason.HUMAN_REQUESTED,
            Reason.CANCELLATION,
            Reason.CONTESTED,
            Reason.INJECTION,
            Reason.MEDIA_NEEDS_HUMAN,
        }
    )

    policy = models.ForeignKey(
        BotPolicy, on_delete=models.CASCADE, related_name="rules", verbose_name=_("política")
    )
    reason = models.CharField(_("motivo"), max_length=30, choices=Reason.choices)
    enabled = models.BooleanField(_("ativa"), default=True)
    team_slug = models.SlugField(
        _("equipe"),
        max_length=50,
        blank=True,
        help_text=_("Vazio: a equipe da intenção da mensagem."),
    )
    priority = models.SmallIntegerField(
        _("prioridade"),
        choices=PRIORITY_CHOICES,
        null=True,
        blank=True,
        help_text=_("Vazio: a prioridade da intenção da mensagem."),
    )

    class Meta:
        verbose_name = _("regra de encaminhamento")
        verbose_name_plural = _("regras de encaminhamento")
        constraints = [
            models.UniqueConstraint(fields=["policy", "reason"], name="bot_rule_unique_reason")
        ]

    def __str__(self) -> str:
        return self.get_reason_display()

    def clean(self) -> None:
        super().clean()
        if self.reason in self.MANDATORY and not self.enabled:
            raise ValidationError(
                {
                    "enabled": _(
                        "Esta regra é obrigatória: o cliente sempre pode chegar a uma pessoa."
                    )
                }
            )


class IntentRoute(models.Model):
    """Which team serves each intent, and with which priority, when the bot hands off."""

    policy = models.ForeignKey(
        BotPolicy, on_delete=models.CASCADE, related_name="routes", verbose_name=_("política")
    )
    intent = models.CharField(_("intenção"), max_length=30, choices=INTENT_CHOICES)
    team_slug = models.SlugField(_("equipe"), max_length=50, blank=True)
    priority = models.SmallIntegerField(_("prioridade"), choices=PRIORITY_CHOICES, default=1)

    class Meta:
        verbose_name = _("rota por intenção")
        verbose_name_plural = _("rotas por intenção")
        constraints = [
            models.UniqueConstraint(fields=["policy", "intent"], name="bot_route_unique_intent")
        ]

    def __str__(self) -> str:
        return self.get_intent_display()


class BotDecision(models.Model):
    """What the bot decided for one inbound message, and why. One row per message (idempotency).

    Holds no customer text except ``transcript`` (the voice note's transcription, personal data
    covered by the message's retention), and no identifiers sent to the model.
    """

    class Engine(models.TextChoices):
        RULES = "rules", _("Regras")
        GEMINI = "gemini", _("Gemini")
        MENU = "menu", _("Menu/botão")
        NONE = "none", _("Nenhum")

    class Action(models.TextChoices):
        GREETED = "greeted", _("Saudação e menu")
        ANSWERED = "answered", _("Respondeu pela base")
        CLARIFIED = "clarified", _("Pediu para escolher uma opção")
        ESCALATED = "escalated", _("Encaminhou a um atendente")
        CLOSED = "closed", _("Encerrou como resolvido")
        SELF_SERVICE = "self_service", _("Autoatendimento com o ERP")
        IGNORED = "ignored", _("Nada a fazer")

    message = models.OneToOneField(
        "conversations.Message",
        on_delete=models.CASCADE,
        related_name="bot_decision",
        verbose_name=_("mensagem"),
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="bot_decisions",
        verbose_name=_("conversa"),
    )
    action = models.CharField(_("ação"), max_length=12, choices=Action.choices)
    rule = models.CharField(_("regra"), max_length=40)
    greeted = models.BooleanField(_("saudou"), default=False)
    intent = models.CharField(_("intenção"), max_length=30, choices=INTENT_CHOICES, blank=True)
    sentiment = models.CharField(_("sentimento"), max_length=10, blank=True)
    sentiment_score = models.FloatField(_("nota de sentimento"), null=True, blank=True)
    confidence = models.FloatField(_("confiança"), null=True, blank=True)
    matched = models.JSONField(_("regras do classificador"), default=list, blank=True)
    engine = models.CharField(_("motor"), max_length=10, choices=Engine.choices)
    fallback_reason = models.CharField(_("motivo do uso das regras"), max_length=40, blank=True)
    model = models.CharField(_("modelo"), max_length=80, blank=True)
    prompt_version = models.CharField(_("versão do prompt"), max_length=40, blank=True)
    model_calls = models.PositiveSmallIntegerField(_("chamadas ao modelo"), default=0)
    model_latency_ms = models.FloatField(_("latência do modelo (ms)"), null=True, blank=True)
    latency_ms = models.FloatField(_("latência da decisão (ms)"), null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("tokens de entrada"), null=True, blank=True)
    output_tokens = models.PositiveIntegerField(_("tokens de saída"), null=True, blank=True)
    knowledge_entry = models.ForeignKey(
        KnowledgeEntry,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="decisions",
        verbose_name=_("resposta usada"),
    )
    answer_adapted = models.BooleanField(_("resposta adaptada pelo modelo"), default=False)
    escalated = models.BooleanField(_("encaminhada"), default=False)
    escalation_reason = models.CharField(
        _("motivo do encaminhamento"),
        max_length=30,
        choices=EscalationRule.Reason.choices,
        blank=True,
    )
    team_slug = models.SlugField(_("equipe"), max_length=50, blank=True)
    transcript = EncryptedTextField(_("transcrição do áudio"), blank=True)  # at rest: encrypted
    created_at = models.DateTimeField(_("criada em"), default=timezone.now)

    class Meta:
        verbose_name = _("decisão do robô")
        verbose_name_plural = _("decisões do robô")
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="botdecision_conv"),
            models.Index(fields=["created_at"], name="botdecision_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.rule})"
