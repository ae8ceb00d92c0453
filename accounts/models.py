"""Users, roles and teams.

Roles are Django groups (agent, supervisor, admin, dpo) whose permissions are declared in
``accounts.roles`` and written by a data migration.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport.crypto import EncryptedTextField


class Role(models.TextChoices):
    AGENT = "agent", _("Atendente")
    SUPERVISOR = "supervisor", _("Supervisor")
    ADMIN = "admin", _("Administrador")
    DPO = "dpo", _("Encarregado de dados (DPO)")


class Presence(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Ausente")
    OFFLINE = "offline", _("Offline")


class Team(models.Model):
    """A group of agents; conversations are routed to teams.

    Its calendar (``opening_hours``, ``holidays``, ``closed_on_national_holidays``) says when
    people are there; a team without opening hours is served around the clock. Its
    ``sla_targets`` say how fast conversations must be answered and resolved, per priority.
    The arithmetic lives in ``conversations.business_hours`` and ``conversations.sla``.
    """

    name = models.CharField(_("nome"), max_length=100, unique=True)
    slug = models.SlugField(_("identificador"), max_length=50, unique=True)
    description = models.TextField(_("descrição"), blank=True)
    is_active = models.BooleanField(_("ativa"), default=True)
    closed_on_national_holidays = models.BooleanField(
        _("fechada nos feriados nacionais"),
        default=True,
        help_text=_(
            "Feriados nacionais calculados pelo sistema (inclui Sexta-feira Santa e 20 de "
            "novembro). Feriados locais: cadastre como feriados da equipe."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("equipe")
        verbose_name_plural = _("equipes")

    def __str__(self) -> str:
        return self.name


class Weekday(models.IntegerChoices):
    """Python's ``date.weekday()`` numbering: Monday is 0."""

    MONDAY = 0, _("segunda-feira")
    TUESDAY = 1, _("terça-feira")
    WEDNESDAY = 2, _("quarta-feira")
    THURSDAY = 3, _("quinta-feira")
    FRIDAY = 4, _("sexta-feira")
    SATURDAY = 5, _("sábado")
    SUNDAY = 6, _("domingo")


class TeamOpeningHours(models.Model):
    """One period of a weekday when the team has people (São Paulo time).

    Several rows per weekday make a split shift (08:00–12:00, 13:00–18:00). A period ends on
    the day it starts; a team open through midnight uses one row ending 23:59 and one starting
    00:00 the next day. Index: the (team, weekday) constraint serves the calendar load.
    """

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="opening_hours", verbose_name=_("equipe")
    )
    weekday = models.PositiveSmallIntegerField(_("dia da semana"), choices=Weekday.choices)
    opens_at = models.TimeField(_("abre às"))
    closes_at = models.TimeField(_("fecha às"))

    class Meta:
        ordering = ["team", "weekday", "opens_at"]
        verbose_name = _("horário de atendimento")
        verbose_name_plural = _("horários de atendimento")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens_at__lt=models.F("closes_at")),
                name="opening_hours_open_before_close",
            ),
            models.UniqueConstraint(
                fields=["team", "weekday", "opens_at"], name="opening_hours_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        super().clean()
        if self.opens_at and self.closes_at and self.opens_at >= self.closes_at:
            raise ValidationError(
                {"closes_at": _("O horário de fechamento vem depois da abertura.")}
            )


class TeamHoliday(models.Model):
    """A day the team does not work besides the national holidays (a municipal holiday, a
    company day off). Index: the (team, day) constraint."""

    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="holidays", verbose_name=_("equipe")
    )
    day = models.DateField(_("data"))
    description = models.CharField(_("motivo"), max_length=100, blank=True)

    class Meta:
        ordering = ["team", "day"]
        verbose_name = _("feriado da equipe")
        verbose_name_plural = _("feriados da equipe")
        constraints = [
            models.UniqueConstraint(fields=["team", "day"], name="team_holiday_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.day:%d/%m/%Y} {self.description}".strip()


class SlaPriority(models.IntegerChoices):
    """The conversations' priorities (``conversations.Conversation.Priority``; accounts may not
    import conversations, a test keeps the two lists equal)."""

    LOW = 0, _("Baixa")
    NORMAL = 1, _("Normal")
    HIGH = 2, _("Alta")
    URGENT = 3, _("Urgente")


class SlaTarget(models.Model):
    """How fast a team answers and resolves conversations of one priority.

    ``team`` empty: the default for teams (and conversations without a team) that have no
    target of their own for that priority. With ``business_hours`` the minutes count only
    while the team is open (its opening hours, minus national and team holidays); otherwise
    they are wall-clock minutes.

    Indexes: the two unique constraints (one target per team and priority; one default per
    priority) serve the lookup when a conversation's due times are computed.
    """

    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sla_targets",
        verbose_name=_("equipe"),
        help_text=_("Vazio: padrão para as equipes sem meta própria."),
    )
    priority = models.SmallIntegerField(_("prioridade"), choices=SlaPriority.choices)
    first_response_minutes = models.PositiveIntegerField(
        _("primeira resposta (minutos)"), validators=[MinValueValidator(1)]
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolução (minutos)"), validators=[MinValueValidator(1)]
    )
    business_hours = models.BooleanField(
        _("contar só no horário de atendimento"),
        default=True,
        help_text=_("Desmarcado: minutos corridos, 24 horas por dia."),
    )

    class Meta:
        ordering = ["team", "-priority"]
        verbose_name = _("meta de SLA")
        verbose_name_plural = _("metas de SLA")
        constraints = [
            models.UniqueConstraint(
                fields=["team", "priority"],
                condition=models.Q(team__isnull=False),
                name="sla_target_team_priority",
            ),
            models.UniqueConstraint(
                fields=["priority"],
                condition=models.Q(team__isnull=True),
                name="sla_target_default_priority",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=0, priority__lte=3),
                name="sla_target_priority_range",
            ),
        ]

    def __str__(self) -> str:
        team = self.team.name if self.team_id else _("padrão")
        return f"{team} · {self.get_priority_display()}"


class IspUserManager(UserManager):
    def get_by_natural_key(self, username: str) -> User:
        # Log-in is case-insensitive on the username, matching the unique constraint.
        return self.get(username__iexact=username)


class User(AbstractUser):
    """A staff member: agent, supervisor, admin or DPO (see ``Role``).

    Indexes: username and email are unique case-insensitively (log-in, invitations).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(_("e-mail"), unique=True)
    teams = models.ManyToManyField(
        Team, related_name="members", blank=True, verbose_name=_("equipes")
    )
    max_concurrent_conversations = models.PositiveSmallIntegerField(
        _("capacidade (conversas simultâneas)"), default=5
    )
    presence = models.CharField(
        _("presença"), max_length=10, choices=Presence.choices, default=Presence.OFFLINE
    )
    presence_changed_at = models.DateTimeField(_("presença alterada em"), null=True, blank=True)

    objects = IspUserManager()

    class Meta:
        verbose_name = _("usuário")
        verbose_name_plural = _("usuários")
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def save(self, *args, **kwargs) -> None:
        # Normalisation only (no side effects): keeps the case-insensitive constraint meaningful.
        if self.email:
            self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def has_role(self, *roles: str) -> bool:
        """True when the user is in any of the given role groups (cached per instance)."""
        if not self.is_active:
            return False
        cached = getattr(self, "_role_names", None)
        if cached is None:
            cached = set(self.groups.values_list("name", flat=True))
            self._role_names = cached
        return bool(cached.intersection(roles))

    @property
    def is_agent(self) -> bool:
        return self.has_role(Role.AGENT, Role.SUPERVISOR)


class UserSession(models.Model):
    """One log-in of a staff member: what the "your sessions" page lists and can end.

    ``key_hash`` is the SHA-256 of the Django session key (lookups, the "this device" marker);
    ``session_key`` is the key itself, encrypted with the field keys, kept only so revocation
    can delete the session from the session store (which then also refuses the WebSocket).
    ``last_seen_at`` is updated at most once a minute by ``SessionActivityMiddleware``.
    ``ended_at`` is set when the session is ended (log-out, revocation, idle timeout, password
    change); ``end_reason`` says which.

    Indexes: key_hash (unique, per-request lookup); (user, ended_at) for the user's list and
    "end all".
    """

    class EndReason(models.TextChoices):
        LOGOUT = "logout", _("Saída")
        REVOKED = "revoked", _("Encerrada pelo usuário")
        ADMIN = "admin", _("Encerrada por um administrador")
        IDLE = "idle", _("Inatividade")
        PASSWORD = "password", _("Senha alterada")
        DEVICES = "devices", _("2FA redefinido")
        EXPIRED = "expired", _("Tempo máximo atingido")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="login_sessions", verbose_name=_("usuário")
    )
    key_hash = models.CharField(max_length=64, unique=True)
    session_key = EncryptedTextField(blank=True)
    user_agent = models.CharField(_("navegador/dispositivo"), max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(_("endereço IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("início"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("último uso"), default=timezone.now)
    ended_at = models.DateTimeField(_("encerrada em"), null=True, blank=True)
    end_reason = models.CharField(
        _("motivo do encerramento"), max_length=10, choices=EndReason.choices, blank=True
    )

    class Meta:
        verbose_name = _("sessão")
        verbose_name_plural = _("sessões")
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="usersession_user_ended")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class ApiToken(models.Model):
    """A personal API token for integrations (``Authorization: Bearer isp_…``).

    The secret is shown once, at creation; only its SHA-256 (``key_hash``) is stored, plus the
    first characters (``prefix``) so a person can tell tokens apart. ``scope`` ``read`` refuses
    unsafe methods; ``write`` allows them. A token acts with its user's roles and stops working
    when it expires, is revoked, or the user is deactivated.

    Indexes: key_hash (unique, the authentication lookup); (user, revoked_at) for the user's list.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Somente leitura")
        WRITE = "write", _("Leitura e escrita")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("usuário")
    )
    name = models.CharField(_("nome"), max_length=100)
    prefix = models.CharField(_("prefixo"), max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(_("escopo"), max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(_("criado em"), default=timezone.now)
    expires_at = models.DateTimeField(_("expira em"))
    last_used_at = models.DateTimeField(_("último uso"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revogado em"), null=True, blank=True)

    class Meta:
        verbose_name = _("token de API")
        verbose_name_plural = _("tokens de API")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="apitoken_user_revoked")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now


# Second-factor devices: defined in their own module, registered with this app.
from accounts.devices import AuthenticatorDevice, BackupCode, BackupCodeDevice  # noqa: E402, F401
