"""Encryption at rest for personal data: encrypted model fields and a keyed blind index.

Keys
    ``settings.FIELD_ENCRYPTION_KEYS``: Fernet keys (url-safe base64 of 32 bytes), **newest
    first**. Values are encrypted with the first key and decrypted with any of them
    (``cryptography``'s ``MultiFernet``). To rotate: put a new key first, run
    ``manage.py rotate_encryption_keys`` (re-encrypts every row under the newest key, resumable),
    then drop the old key from the setting.

    ``settings.BLIND_INDEX_KEY``: a separate secret for :func:`blind_index` (HMAC-SHA256), so an
    exact-match lookup never needs to decrypt every row. The HMAC key is derived per *purpose*
    (``"phone"``, ``"cpf"``…) so equal values under different purposes do not correlate.
    Rotating it means recomputing every index column from the plaintext (not automated).

Fields
    :class:`EncryptedTextField` stores a Fernet token (ASCII text) in a ``text`` column and
    gives Python code the plaintext ``str``. :class:`EncryptedJSONField` does the same for any
    JSON-serialisable value. The empty string is stored as-is (it reveals nothing and keeps
    ``blank`` semantics); ``None`` stays NULL. Encrypted columns cannot be filtered or ordered
    on (every encryption is randomised): lookups other than ``isnull`` raise ``FieldError``;
    keep a blind-index column beside the field for exact matches.

This module imports no domain app (``ispsupport`` is infrastructure).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldError
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver

# Every Fernet token starts with the version byte 0x80, which base64 renders as "gAAAAA".
TOKEN_PREFIX = "gAAAAA"  # noqa: S105 (Fernet version marker)


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@functools.cache
def _fernets() -> tuple[MultiFernet, Fernet]:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k and k.strip()]
    if not keys:
        raise ValueError("FIELD_ENCRYPTION_KEYS is empty")
    fernets = [Fernet(k.encode()) for k in keys]
    return MultiFernet(fernets), fernets[0]


@functools.cache
def _blind_index_master() -> bytes:
    key = getattr(settings, "BLIND_INDEX_KEY", "")
    if not key:
        raise ValueError("BLIND_INDEX_KEY is empty")
    return key.encode()


@receiver(setting_changed)
def _reset_keys(*, setting: str, **kwargs: Any) -> None:
    if setting in {"FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"}:
        _fernets.cache_clear()
        _blind_index_master.cache_clear()
        _purpose_key.cache_clear()


def encrypt_str(value: str) -> str:
    """Encrypt ``value`` with the newest key; returns the Fernet token as text."""
    return _fernets()[0].encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_str(token: str) -> str:
    """Decrypt a token made with any configured key; raises :class:`DecryptionError`."""
    try:
        return _fernets()[0].decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise DecryptionError("value cannot be decrypted with the configured keys") from exc


def is_current(token: str) -> bool:
    """True when ``token`` is encrypted under the newest key (rotation can skip it)."""
    try:
        _fernets()[1].decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        return False
    return True


def rotate_token(token: str) -> str:
    """Re-encrypt ``token`` under the newest key (it may be under any configured key)."""
    try:
        return _fernets()[0].rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("value cannot be decrypted with the configured keys") from exc


def looks_encrypted(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


@functools.cache
def _purpose_key(purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"ispsupport-blind-index-v1",
        info=purpose.encode("utf-8"),
    ).derive(_blind_index_master())


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed HMAC-SHA256 of ``value`` (64 hex chars) for exact-match lookups.

    Normalise before calling (canonical E.164 digits for phones, 11 digits for a CPF): the
    index matches only byte-identical input. ``purpose`` separates the key per kind of value.
    """
    return hmac.new(_purpose_key(purpose), value.encode("utf-8"), hashlib.sha256).hexdigest()


class _EncryptedMixin:
    """Shared by the encrypted fields: encrypt on the way in, decrypt on the way out."""

    encrypted = True  # marker: rotate_encryption_keys and the audit test look for it

    def _serialize(self, value: Any) -> str:
        raise NotImplementedError

    def _deserialize(self, text: str) -> Any:
        raise NotImplementedError

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return self._deserialize(decrypt_str(value))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        text = self._serialize(value)
        if text == "":
            return ""
        return encrypt_str(text)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: it cannot be filtered with "
                f"'{lookup_name}'; use a blind-index column (ispsupport.crypto.blind_index)."
            )
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: no transforms.")


class EncryptedTextField(_EncryptedMixin, models.TextField):
    """A ``TextField`` stored encrypted (Fernet token); Python sees the plaintext ``str``."""

    def _serialize(self, value: Any) -> str:
        return value if isinstance(value, str) else str(value)

    def _deserialize(self, text: str) -> str:
        return text

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return str(value)


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """Any JSON-serialisable value, stored as an encrypted JSON document."""

    def _serialize(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    def _deserialize(self, text: str) -> Any:
        return json.loads(text)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if value == "":
            return ""
        return self._deserialize(decrypt_str(value))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt_str(self._serialize(value))

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        return self._serialize(self.value_from_object(obj))


def encrypted_fields(model: type[models.Model]) -> list[models.Field]:
    """The concrete encrypted fields of ``model``."""
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False) is True]


def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """System check: every key in FIELD_ENCRYPTION_KEYS is a valid Fernet key."""
    errors: list[checks.CheckMessage] = []
    keys = [k for k in getattr(settings, "FIELD_ENCRYPTION_KEYS", []) if k.strip()]
    if not keys:
        errors.append(checks.Error("FIELD_ENCRYPTION_KEYS is empty.", id="ispsupport.E101"))
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            errors.append(
                checks.Error(
                    f"FIELD_ENCRYPTION_KEYS: key #{position} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes).",
                    hint='Generate one with: python -c "from cryptography.fernet import '
                    'Fernet; print(Fernet.generate_key().decode())"',
                    id="ispsupport.E102",
                )
            )
    if len(getattr(settings, "BLIND_INDEX_KEY", "") or "") < 32:
        errors.append(
            checks.Error(
                "BLIND_INDEX_KEY must be at least 32 characters.",
                hint='python -c "import secrets; print(secrets.token_urlsafe(48))"',
                id="ispsupport.E103",
            )
        )
    return errors
