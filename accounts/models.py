"""Users, roles and teams.

Roles are Django groups (agent, supervisor, admin, dpo) whose permissions are declared in
``accounts.roles`` and written by a data migration.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


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
