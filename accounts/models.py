"""Users, roles and teams.

Roles are Django groups (agent, supervisor, admin, dpo) whose permissions are declared in
``accounts.roles`` and written by a data migration.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
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
    """A group of agents; conversations are routed to teams."""

    name = models.CharField(_("nome"), max_length=100, unique=True)
    slug = models.SlugField(_("identificador"), max_length=50, unique=True)
    description = models.TextField(_("descrição"), blank=True)
    is_active = models.BooleanField(_("ativa"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("equipe")
        verbose_name_plural = _("equipes")

    def __str__(self) -> str:
        return self.name


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
