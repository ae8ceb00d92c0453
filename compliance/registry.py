"""The personal-data registry: how every app declares the personal data it holds.

``compliance`` sits below every app that stores customers' data (it may import only
``accounts``), so it never goes looking for personal data itself. Each app writes a
``<app>/privacy.py`` with one ``Provider`` per model or group of models and registers it from
its ``AppConfig.ready()``::

    from compliance import registry
    registry.register(MessagesProvider())

A provider states:

- ``fields``: for each model (``"app_label.ModelName"``), which fields are personal and of
  which ``Category``; ``exempt``: fields whose *name* looks personal but are not (with the
  reason). ``compliance/tests/test_registry_coverage.py`` walks every model of every installed
  app and fails on a personal-looking field that no provider covers or exempts.
- how to find a data subject's rows (``rows``), export them (``export``, ``files``), and erase
  or irreversibly anonymise them (``erase``); what it keeps under legal hold (``legal_hold``).
- the processing purpose, the legal basis (``LegalBasis``: LGPD Art. 7 items), the
  ``retention`` rules (days from ``settings.COMPLIANCE_RETENTION_DAYS``) and the retention
  purge (``purge``), and the third parties the data is shared with (Art. 18 VII, §6).

Everything is keyed by the ``Customer`` object (the data subject); providers of staff data
(accounts) return nothing for a customer and only declare fields, basis and retention.

Two hooks let the core reach compliance's callers without importing them:
``register_channel_sender`` (how to send a request's answer on a channel, e.g. WhatsApp) and
``register_service_record_source`` (the Anatel/SAC service record of a protocol).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _


class Category(StrEnum):
    """What kind of personal data a field holds (drives the record of processing)."""

    IDENTIFICATION = "identification"  # name, CPF, wa_id, BSUID, username
    CONTACT = "contact"  # phone, e-mail, address
    CONTRACT = "contract"  # ISP contract reference, plan
    CONTENT = "content"  # message text, notes, transcripts, media, raw payloads
    SENSITIVE = "sensitive"  # LGPD Art. 5 II / Art. 11 (may arrive unsolicited in content)
    TECHNICAL = "technical"  # IP address, user agent, device
    STAFF = "staff"  # data about employees (accounts)


CATEGORY_LABELS = {
    Category.IDENTIFICATION: _("Identificação"),
    Category.CONTACT: _("Contato"),
    Category.CONTRACT: _("Contrato"),
    Category.CONTENT: _("Conteúdo de comunicações"),
    Category.SENSITIVE: _("Dado sensível"),
    Category.TECHNICAL: _("Dados técnicos (IP, dispositivo)"),
    Category.STAFF: _("Dados de colaboradores"),
}


class LegalBasis(StrEnum):
    """LGPD Art. 7 items used by this product (Art. 7 III, IV, VII, VIII, X do not apply)."""

    CONSENT = "art7_i"
    LEGAL_OBLIGATION = "art7_ii"
    CONTRACT = "art7_v"
    EXERCISE_OF_RIGHTS = "art7_vi"
    LEGITIMATE_INTEREST = "art7_ix"


LEGAL_BASIS_LABELS = {
    LegalBasis.CONSENT: _("Consentimento (LGPD art. 7º, I)"),
    LegalBasis.LEGAL_OBLIGATION: _(
        "Cumprimento de obrigação legal ou regulatória (LGPD art. 7º, II; RGC Anatel 765/2023; "
        "Decreto 11.034/2022; Marco Civil)"
    ),
    LegalBasis.CONTRACT: _("Execução de contrato (LGPD art. 7º, V)"),
    LegalBasis.EXERCISE_OF_RIGHTS: _(
        "Exercício regular de direitos em processo (LGPD art. 7º, VI)"
    ),
    LegalBasis.LEGITIMATE_INTEREST: _("Legítimo interesse (LGPD art. 7º, IX)"),
}


@dataclass(frozen=True)
class Retention:
    """One retention rule: ``data_class`` names a key of ``settings.COMPLIANCE_RETENTION_DAYS``."""

    data_class: str
    anchor: Any  # pt-BR: from when the period counts ("após o encerramento da conversa")
    law: Any = ""  # pt-BR: where the period comes from, or "" when it is a product choice

    @property
    def days(self) -> int:
        return int(settings.COMPLIANCE_RETENTION_DAYS[self.data_class])


@dataclass
class ErasureReport:
    """What an erasure did, in counts only: it is stored on the request, so no personal data."""

    deleted: dict[str, int] = field(default_factory=dict)
    anonymized: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    files_removed: int = 0
    cache_keys_removed: int = 0
    # Storage names to delete after commit (a rollback must not lose files whose rows remain).
    files_to_delete: list[str] = field(default_factory=list)

    def add(self, bucket: str, label: str, count: int) -> None:
        if count:
            target = getattr(self, bucket)
            target[label] = target.get(label, 0) + int(count)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "anonymized": self.anonymized,
            "held": self.held,
            "files_removed": self.files_removed,
            "cache_keys_removed": self.cache_keys_removed,
        }


class Provider:
    """Base class; subclasses set the declarations and override what applies to them.

    ``order`` decides the erasure sequence (lower first): rows that point at others go first,
    the customer row itself last.
    """

    key: str = ""
    label: Any = ""
    purpose: Any = ""
    fields: dict[str, dict[str, Category]] = {}
    exempt: dict[str, dict[str, str]] = {}
    legal_basis: tuple[LegalBasis, ...] = ()
    retention: tuple[Retention, ...] = ()
    legal_hold: Any = ""  # what is kept under legal hold on erasure, and why ("" = nothing)
    recipients: tuple[Any, ...] = ()  # third parties the data is shared with (Art. 18 VII)
    order: int = 100

    # --- a data subject's data -------------------------------------------------------------
    def count(self, customer: Any) -> dict[str, int]:
        """Rows held about the subject per label (confirmation answers, Art. 19 I)."""
        return {}

    def export(self, customer: Any) -> dict[str, Any]:
        """JSON-serialisable data about the subject; top-level keys merge into the export."""
        return {}

    def files(self, customer: Any) -> Iterable[tuple[str, str]]:
        """``(name inside the ZIP, storage name)`` of the subject's files."""
        return ()

    def object_refs(self, customer: Any) -> Iterable[tuple[str, str]]:
        """``(app_label.model, pk)`` of the subject's rows, so change logs about them are scrubbed."""
        return ()

    def cache_keys(self, customer: Any) -> Iterable[str]:
        """Cache keys that may hold copies of the subject's data."""
        return ()

    def erase(self, customer: Any, report: ErasureReport, *, request: Any = None) -> None:
        """Delete or irreversibly anonymise the subject's rows (inside the caller's transaction).

        Files go into ``report.files_to_delete`` (removed after commit); what a legal obligation
        requires is kept under legal hold and counted in ``report.held``.
        """

    # --- retention ---------------------------------------------------------------------------
    def purge(self, *, now: Any, batch_size: int, dry_run: bool) -> dict[str, int]:
        """Delete what is past retention (skipping legal holds); return counts per data class.

        Work in batches of ``batch_size`` rows per transaction so no lock is held for long.
        With ``dry_run`` count what would go and change nothing.
        """
        return {}


_providers: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Add a provider (idempotent per key: the last registration wins, for reloads in tests)."""
    if not provider.key:
        raise ValueError("a privacy provider needs a key")
    _providers[provider.key] = provider
    return provider


def providers() -> list[Provider]:
    """Every registered provider, in erasure order."""
    return sorted(_providers.values(), key=lambda p: (p.order, p.key))


def get(key: str) -> Provider:
    return _providers[key]


def covered_fields() -> dict[tuple[str, str], tuple[Provider, Category]]:
    """``(model label, field) → (provider, category)`` for every declared personal field."""
    result: dict[tuple[str, str], tuple[Provider, Category]] = {}
    for provider in providers():
        for model_label, spec in provider.fields.items():
            for name, category in spec.items():
                result[(model_label.lower(), name)] = (provider, category)
    return result


def exempt_fields() -> dict[tuple[str, str], str]:
    result: dict[tuple[str, str], str] = {}
    for provider in providers():
        for model_label, spec in provider.exempt.items():
            for name, reason in spec.items():
                result[(model_label.lower(), name)] = reason
    return result


# Field names that look personal (regular expressions over the field name). The coverage test
# checks every field whose name matches, and every field of an encrypted type.
PERSONAL_FIELD_PATTERNS: tuple[str, ...] = (
    r"name",
    r"phone",
    r"wa_id",
    r"bsuid",
    r"cpf",
    r"cnpj",
    r"e?mail",
    r"(^|_)text",
    r"body",
    r"note",
    r"transcript",
    r"address",
    r"(^|_)ip($|_)",
    r"payload",
    r"media_file",
    r"user_agent",
    r"contract",
    r"metadata",
    r"comment",
    r"summary",
    r"synthesis",
    r"content",
    r"changes",
    r"session_data",
    r"birth",
    r"document",
    r"location",
    r"caption",
    r"prompt",
    r"answer",
    r"reason",
    r"repr",
    r"change_message",
)
_PERSONAL_RE = re.compile("|".join(PERSONAL_FIELD_PATTERNS), re.IGNORECASE)


# Field types that cannot hold personal content (numbers, flags, dates): never flagged by name.
NON_CONTENT_FIELD_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "BooleanField",
        "NullBooleanField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "FloatField",
        "DecimalField",
        "DateTimeField",
        "DateField",
        "TimeField",
        "DurationField",
        "UUIDField",
    }
)


def looks_personal(field_name: str, model_field: Any = None) -> bool:
    """Whether a field must be declared: its name matches a pattern (and it can hold text)."""
    if model_field is not None and model_field.get_internal_type() in NON_CONTENT_FIELD_TYPES:
        return False
    return bool(_PERSONAL_RE.search(field_name))


def is_encrypted_field(model_field: Any) -> bool:
    """Fields of the project's encrypted types (``ispsupport.crypto``) always hold personal data."""
    cls = type(model_field)
    return cls.__module__.startswith("ispsupport.crypto") or "Encrypted" in cls.__name__


# Models of Django and third-party apps, judged here rather than by a provider: label → reason.
# (Third-party models that hold *customers'* data are covered by a provider instead:
# ``admin.LogEntry`` and ``auditlog.LogEntry`` by compliance's change-log provider.)
FOREIGN_MODEL_ALLOWLIST: dict[str, str] = {
    "auth.permission": "Nomes de permissões: não são dados pessoais.",
    "auth.group": "Nomes dos papéis (agent, supervisor, admin, dpo): não são dados pessoais.",
    "contenttypes.contenttype": "Nomes de modelos: não são dados pessoais.",
    "sessions.session": (
        "Sessões de colaboradores (id do usuário); expiram sozinhas e são apagadas por "
        "clearsessions; nenhum dado de cliente."
    ),
    "axes.accessattempt": (
        "Tentativas de login de colaboradores (usuário, IP, navegador): segurança, LGPD art. 46 "
        "e Decreto 8.771 art. 13; removidas ao desbloquear e pela limpeza do django-axes."
    ),
    "axes.accesslog": "Registro de logins de colaboradores (segurança, Decreto 8.771 art. 13 III).",
    "axes.accessfailurelog": "Falhas de login de colaboradores (segurança, LGPD art. 46).",
}


# --- hooks registered by higher layers ------------------------------------------------------

ChannelSender = Callable[..., str]
_channel_senders: dict[str, ChannelSender] = {}

# What a channel sender did with an answer.
SENT_TEXT = "text"  # the answer itself was sent (or queued in the outbox)
SENT_NOTICE = "template"  # only an approved template saying the answer is ready was sent
NOT_SENT = ""  # nothing could be sent (no conversation, window closed and no template…)


class DeliveryPostponed(Exception):
    """The channel failed for a passing reason (Meta 5xx, rate limit): try again later."""


def register_channel_sender(channel: str, sender: ChannelSender) -> None:
    """``sender(customer=…, text=…, request_number=…, erasure=False) -> str`` delivers a
    request's answer on ``channel`` and says how (``SENT_TEXT``, ``SENT_NOTICE``, ``NOT_SENT``).

    With ``erasure`` the answer must reach the customer *before* their data goes, so the
    channel sends it at once and keeps no copy; it raises ``DeliveryPostponed`` when a retry
    may succeed. The whatsapp app registers "whatsapp"; compliance cannot import it, and one
    hook lets every door (admin action, task, the inbound path) answer the same way.
    """
    _channel_senders[channel] = sender


def channel_sender(channel: str) -> ChannelSender | None:
    return _channel_senders.get(channel)


ServiceRecordSource = Callable[..., "dict[str, Any] | None"]
_service_record_source: ServiceRecordSource | None = None


def register_service_record_source(source: ServiceRecordSource) -> None:
    """``source(protocol=…) -> dict | None``: the live Anatel/SAC record of a protocol."""
    global _service_record_source
    _service_record_source = source


def service_record_source() -> ServiceRecordSource | None:
    return _service_record_source


def provider_from_declaration(spec: dict[str, Any], *, order: int = 100) -> Provider:
    """A declaration-only provider from plain data (for apps below compliance: accounts)."""
    provider = Provider()
    provider.key = spec["key"]
    provider.label = spec["label"]
    provider.purpose = spec["purpose"]
    provider.fields = {
        model: {name: Category(cat) for name, cat in spec_fields.items()}
        for model, spec_fields in spec.get("fields", {}).items()
    }
    provider.exempt = spec.get("exempt", {})
    provider.legal_basis = tuple(LegalBasis(b) for b in spec.get("legal_basis", ()))
    provider.order = order
    return provider
