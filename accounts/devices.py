"""Second-factor devices whose secrets are not readable from the database.

django-otp's bundled plugins keep the TOTP shared secret as hex text (``otp_totp``) and the
backup codes as they are (``otp_static``): whoever reads the database — a dump, a replica, a
backup — could then compute valid codes for every staff account, which defeats the second
factor exactly when the first one (a password hash in the same dump) is under attack. These
models replace both plugins; django-otp finds any ``Device`` subclass of an installed app
(``django_otp.device_classes``), so its middleware, ``login`` and ``user.is_verified()`` work as
before.

* :class:`AuthenticatorDevice` — TOTP (RFC 6238, the codes of any authenticator app) with the
  secret in an :class:`~ispsupport.crypto.EncryptedTextField` under ``FIELD_ENCRYPTION_KEYS``
  (``rotate_encryption_keys`` re-encrypts it with everything else). The secret must be
  recoverable to check a code, so it is encrypted, not hashed.
* :class:`BackupCodeDevice` with its :class:`BackupCode` rows — single-use codes stored only as
  a keyed HMAC (``crypto.blind_index``, purpose ``otp-backup-code``, bound to the user): shown
  once when generated, never recoverable, checked by recomputing the HMAC of what was typed.

Migration ``accounts.0007`` moved the devices of the two plugins into these tables (secrets
encrypted, codes hashed) and dropped the plugins' tables.
"""

from __future__ import annotations

import secrets
import time
import uuid
from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from ispsupport.crypto import EncryptedTextField, blind_index

TOTP_KEY_BYTES = 20  # 160 bits, the size RFC 4226 recommends for HMAC-SHA1
BACKUP_CODE_PURPOSE = "otp-backup-code"
_BACKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: no 0/1/8/9 to misread


def new_totp_key() -> str:
    """A fresh random secret, hex-encoded."""
    return secrets.token_hex(TOTP_KEY_BYTES)


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """A TOTP authenticator app; ``key`` (hex) is encrypted at rest.

    ``last_t`` is the time step of the last accepted code: a code is accepted once, and only
    codes of later steps afterwards (no replay inside the tolerance window).
    """

    key = EncryptedTextField(_("segredo"), default=new_totp_key, editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = _("aplicativo autenticador")
        verbose_name_plural = _("aplicativos autenticadores")

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.key)

    def _totp(self) -> TOTP:
        totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
        totp.time = time.time()
        return totp

    def verify_token(self, token: object) -> bool:
        """Check a code from the app (throttled on failures, as django-otp's devices are).

        The accepted step is written with a conditional update, so two requests racing with
        the same code cannot both pass."""
        allowed, _info = self.verify_is_allowed()
        if not allowed:
            return False
        try:
            value = int(str(token).strip())
        except ValueError:
            value = None
        totp = self._totp()
        if value is None or not totp.verify(value, self.tolerance, self.last_t + 1):
            self._failed()
            return False
        step = totp.t()
        drift = totp.drift if getattr(settings, "OTP_TOTP_SYNC", True) else self.drift
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        won = AuthenticatorDevice.objects.filter(pk=self.pk, last_t__lt=step).update(
            last_t=step,
            drift=drift,
            throttling_failure_count=0,
            throttling_failure_timestamp=None,
            last_used_at=self.last_used_at,
        )
        if not won:
            return False
        self.last_t, self.drift = step, drift
        return True

    def _failed(self) -> None:
        self.throttle_increment(commit=False)
        self.save(update_fields=["throttling_failure_count", "throttling_failure_timestamp"])

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    @property
    def config_url(self) -> str:
        """The ``otpauth://`` URI an authenticator app reads from the QR code (Key Uri Format)."""
        issuer = (getattr(settings, "OTP_TOTP_ISSUER", "") or "").replace(":", "")
        label = self.user.get_username()
        if issuer:
            label = f"{issuer}:{label}"
        params = {
            "secret": b32encode(self.bin_key).decode("ascii").rstrip("="),
            "algorithm": "SHA1",
            "digits": self.digits,
            "period": self.step,
        }
        query = urlencode(params)
        if issuer:
            query += "&issuer=" + quote(issuer)
        return f"otpauth://totp/{quote(label)}?{query}"


def backup_code_digest(*, user_id: object, code: str) -> str:
    """The keyed HMAC a backup code is stored as (normalised: spaces dropped, lower case),
    bound to the user (their id in canonical form, whatever spelling the caller holds)."""
    normalised = "".join(code.split()).lower()
    try:
        owner = str(uuid.UUID(str(user_id)))
    except ValueError:
        owner = str(user_id)
    return blind_index(f"{owner}:{normalised}", purpose=BACKUP_CODE_PURPOSE)


def new_backup_code(length: int = 8) -> str:
    """A random code of ``length`` base32 letters and digits (40 bits for 8)."""
    return "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(length))


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """The user's set of single-use backup codes (one device per user)."""

    class Meta(Device.Meta):
        verbose_name = _("códigos de recuperação")
        verbose_name_plural = _("códigos de recuperação")

    def verify_token(self, token: object) -> bool:
        """Accept an unused code once: its row is deleted in the same transaction."""
        allowed, _info = self.verify_is_allowed()
        if not allowed:
            return False
        digest = backup_code_digest(user_id=self.user_id, code=str(token))
        with transaction.atomic():
            used = BackupCode.objects.filter(device=self, digest=digest).delete()[0]
            if not used:
                self.throttle_increment(commit=False)
                self.save(
                    update_fields=["throttling_failure_count", "throttling_failure_timestamp"]
                )
                return False
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save(
                update_fields=[
                    "throttling_failure_count",
                    "throttling_failure_timestamp",
                    "last_used_at",
                ]
            )
        return True

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)


class BackupCode(models.Model):
    """One unused backup code, as its keyed HMAC (the code itself is never stored)."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("código de recuperação")
        verbose_name_plural = _("códigos de recuperação")
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="backupcode_device_digest")
        ]

    def __str__(self) -> str:
        return f"código #{self.pk}"
