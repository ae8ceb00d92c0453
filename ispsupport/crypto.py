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
    keep a blind-index column beside the field for exact matches. The one exception: comparing
    with the empty string (``.exclude(text="")``) works, because ``""`` is stored as-is.

Blind-index columns
    :class:`BlindIndexField` (one value, exact match) and :class:`WordBlindIndexField` (one
    truncated HMAC per normalised word, for "find a name word") are *derived* columns: each
    names its ``source`` field and computes itself from it whenever the row is written —
    ``create``/``bulk_create``/``save`` through the field's ``pre_save``, and
    ``save(update_fields=…)``, ``QuerySet.update``/``bulk_update`` through
    :class:`BlindIndexQuerySet` and :func:`with_blind_indexes` (the model's manager and
    ``save``). No code sets an index by hand, so an index can never disagree with its source.

This module imports no domain app (``ispsupport`` is infrastructure).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django import forms
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldError
from django.core.signals import setting_changed
from django.db import models
from django.db.models import lookups
from django.db.models.expressions import Combinable
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
    empty_string_is_stored_as_is = True

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
        if lookup_name == "exact" and self.empty_string_is_stored_as_is:
            return _ExactEmptyString
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: it cannot be filtered with "
                f"'{lookup_name}'; use a blind-index column (ispsupport.crypto.blind_index)."
            )
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: no transforms.")


class _ExactEmptyString(lookups.Exact):
    """``field=""`` on an encrypted field: the empty string is stored unencrypted, so this one
    comparison is meaningful; any other value would compare against a random token."""

    def get_prep_lookup(self) -> Any:
        if self.rhs is None:
            return None  # becomes ``isnull`` (Query.build_lookup)
        if self.rhs != "":
            raise FieldError(
                f"{self.lhs.output_field.model.__name__}.{self.lhs.output_field.name} is "
                "encrypted: only the empty string can be compared; use a blind-index column "
                "(ispsupport.crypto.blind_index) for exact matches."
            )
        return ""


class EncryptedTextField(_EncryptedMixin, models.TextField):
    """A ``TextField`` stored encrypted (Fernet token); Python sees the plaintext ``str``.

    ``max_length`` is validated by forms (a short one gets a one-line input, as a CharField
    would); the column is ``text`` whatever it is, since the token is longer than the value.
    """

    def _serialize(self, value: Any) -> str:
        return value if isinstance(value, str) else str(value)

    def _deserialize(self, text: str) -> str:
        return text

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return str(value)

    def formfield(self, **kwargs: Any) -> Any:
        if self.max_length is not None and self.max_length <= 255 and not self.choices:
            # Skip TextField's Textarea: a name or a phone is one line (as a CharField would).
            if self.null:
                kwargs.setdefault("empty_value", None)
            return models.Field.formfield(self, max_length=self.max_length, **kwargs)
        return super().formfield(**kwargs)


class EncryptedJSONField(_EncryptedMixin, models.TextField):
    """Any JSON-serialisable value, stored as an encrypted JSON document."""

    empty_string_is_stored_as_is = False  # "" is a JSON value here: it is encrypted too

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

    def formfield(self, **kwargs: Any) -> Any:
        return models.Field.formfield(self, **{"form_class": forms.JSONField, **kwargs})


def encrypted_fields(model: type[models.Model]) -> list[models.Field]:
    """The concrete encrypted fields of ``model``."""
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False) is True]


# --- Blind-index columns ------------------------------------------------------------------------

_WORD_SPLIT = re.compile(r"[\W_]+")
# A word index keeps 16 hex characters (64 bits) of each word's HMAC: collisions stay
# negligible for any customer base and the column stays short.
WORD_TOKEN_LENGTH = 16


def normalise_words(text: str) -> list[str]:
    """The distinct searchable words of ``text``: accents removed, case folded, 2+ characters.

    ``"José  DA Conceição-Souza"`` → ``["conceicao", "da", "jose", "souza"]``.
    """
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return sorted({w for w in _WORD_SPLIT.split(plain) if len(w) >= 2})


class _DerivedIndexMixin:
    """A column computed from another field of the same row (see the module docstring)."""

    blind_index_of: str  # the source field's name

    def __init__(self, *args: Any, source: str, purpose: str, **kwargs: Any) -> None:
        self.blind_index_of = source
        self.purpose = purpose
        kwargs["editable"] = False
        kwargs["blank"] = True
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        kwargs.pop("blank", None)
        kwargs["source"] = self.blind_index_of
        kwargs["purpose"] = self.purpose
        return name, path, args, kwargs

    def compute(self, value: Any) -> Any:
        raise NotImplementedError

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = self.compute(getattr(model_instance, self.blind_index_of))
        setattr(model_instance, self.attname, value)
        return value


class BlindIndexField(_DerivedIndexMixin, models.CharField):
    """``blind_index(source value)`` (64 hex characters), NULL when the source is empty.

    The source must already hold the normalised form (canonical phone, 11-digit CPF): lookups
    normalise their input the same way and compare indexes. Give it ``unique=True`` to move a
    uniqueness rule from the (encrypted, randomised) source to the index.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_length"] = 64
        kwargs["null"] = True
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        kwargs.pop("null", None)
        return name, path, args, kwargs

    def compute(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        return blind_index(str(value), purpose=self.purpose)


class WordBlindIndexField(_DerivedIndexMixin, models.TextField):
    """One truncated HMAC per normalised word of the source, space-delimited: ``" a1… b2… "``.

    Matches a whole word (accents and case ignored), never a fragment: query with
    :meth:`contains_word_q`. Equal words of different rows give equal tokens, which is what
    makes the search possible (and what someone holding the database can count).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["default"] = ""
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("default", None)
        return name, path, args, kwargs

    def tokens(self, text: str) -> list[str]:
        # Sorted by token, not by word: the stored order says nothing about the words.
        return sorted(
            {
                blind_index(word, purpose=self.purpose)[:WORD_TOKEN_LENGTH]
                for word in normalise_words(text)
            }
        )

    def compute(self, value: Any) -> str:
        tokens = self.tokens(str(value or ""))
        return f" {' '.join(tokens)} " if tokens else ""

    def contains_words_q(self, text: str, *, prefix: str = "") -> models.Q | None:
        """Rows whose source has every word of ``text``; None when ``text`` has no word."""
        tokens = self.tokens(text)
        if not tokens:
            return None
        q = models.Q()
        for token in tokens:
            q &= models.Q(**{f"{prefix}{self.name}__contains": f" {token} "})
        return q


def blind_index_fields(model: type[models.Model]) -> list[Any]:
    """The derived index columns of ``model`` (both kinds)."""
    return [f for f in model._meta.concrete_fields if isinstance(f, _DerivedIndexMixin)]


def with_blind_indexes(model: type[models.Model], fields: Iterable[str]) -> list[str]:
    """``fields`` plus every index column derived from one of them (for ``update_fields``)."""
    names = list(fields)
    wanted = set(names)
    names += [
        f.name
        for f in blind_index_fields(model)
        if f.blind_index_of in wanted and f.name not in wanted
    ]
    return names


def blind_index_values(model: type[models.Model], changes: dict[str, Any]) -> dict[str, Any]:
    """The index columns to write alongside ``changes`` (a ``QuerySet.update`` mapping)."""
    values: dict[str, Any] = {}
    for field in blind_index_fields(model):
        if field.blind_index_of not in changes or field.name in changes:
            continue  # not changed, or already given (bulk_update passes both as CASEs)
        source_value = changes[field.blind_index_of]
        if isinstance(source_value, Combinable):
            raise FieldError(
                f"{model.__name__}.{field.blind_index_of} has a blind index: update it with a "
                "value, not an expression."
            )
        values[field.name] = field.compute(source_value)
    return values


class BlindIndexQuerySet(models.QuerySet):
    """The manager of a model with blind indexes: bulk writes keep the indexes in step."""

    def update(self, **kwargs: Any) -> int:
        return super().update(**kwargs, **blind_index_values(self.model, kwargs))

    def bulk_update(self, objs: Iterable[models.Model], fields: Any, batch_size: Any = None) -> int:
        objs = list(objs)
        names = with_blind_indexes(self.model, fields)
        derived = [f for f in blind_index_fields(self.model) if f.name in names]
        for obj in objs:
            for field in derived:
                field.pre_save(obj, False)
        return super().bulk_update(objs, names, batch_size=batch_size)

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> Any:
        # Inserts derive the indexes in pre_save; upserts must also rewrite them on conflict.
        if kwargs.get("update_fields"):
            kwargs["update_fields"] = with_blind_indexes(self.model, kwargs["update_fields"])
        return super().bulk_create(objs, *args, **kwargs)


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


# --- Data migrations ----------------------------------------------------------------------------


def migrate_columns(
    model: type[models.Model], fields: Iterable[str], *, encrypt: bool, batch_size: int = 500
) -> int:
    """For data migrations: encrypt (or, backwards, decrypt) ``fields`` of every row of
    ``model`` in batches of ``batch_size``, and fill the model's blind-index columns from the
    plaintext. Returns the number of rows written.

    ``model`` is the migration's historical model, in the state where those fields are still
    plain text columns (the migration turns them into encrypted fields afterwards, without a
    schema change). Idempotent: values already in the wanted form are left as they are and
    indexes are recomputed from the plaintext, so an interrupted migration can run again.
    """
    names = list(fields)
    derived = [f for f in blind_index_fields(model)] if encrypt else []
    written = 0
    last_pk = None
    manager = model._base_manager
    while True:
        qs = manager.order_by("pk")
        if last_pk is not None:
            qs = qs.filter(pk__gt=last_pk)
        rows = list(qs[:batch_size])
        if not rows:
            return written
        changed = []
        for row in rows:
            plain: dict[str, Any] = {}
            dirty = False
            for name in names:
                value = getattr(row, name)
                if not isinstance(value, str) or value == "":
                    plain[name] = value
                    continue
                stored_encrypted = looks_encrypted(value)
                plain[name] = decrypt_str(value) if stored_encrypted else value
                if encrypt and not stored_encrypted:
                    setattr(row, name, encrypt_str(value))
                    dirty = True
                elif not encrypt and stored_encrypted:
                    setattr(row, name, plain[name])
                    dirty = True
            for index in derived:
                source = index.blind_index_of
                value = index.compute(plain[source] if source in plain else getattr(row, source))
                if getattr(row, index.attname) != value:
                    setattr(row, index.attname, value)
                    dirty = True
            if dirty:
                changed.append(row)
        if changed:
            manager.bulk_update(changed, [*names, *(f.name for f in derived)])
            written += len(changed)
        last_pk = rows[-1].pk
