"""Writes for accounts: log-in sessions, API tokens and two-factor devices.

Contracts other apps rely on:

* Ending sessions (:func:`sessions_end`, :func:`session_revoke`, :func:`sessions_end_all_for_user`)
  deletes them from the session store and, after commit, sends
  ``{"type": "session.revoked", "session_key_hashes": [...]}`` to the channel group
  :func:`user_channel_group` (``"user.<uuid>"``). The console's WebSocket consumer joins that
  group and closes on the message; its reconnect then finds no session and is refused.
* A password change ends every other session of that user (see ``accounts.password_validation``).
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import metrics
from accounts.devices import (
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    backup_code_digest,
    new_backup_code,
)
from accounts.models import ApiToken, Role, User, UserSession
from ispsupport.crypto import DecryptionError

logger = logging.getLogger(__name__)

# The UserSession id of the session serving the current request (set by the middleware), so a
# password change made in this request keeps this session and ends the others.
current_user_session: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_user_session", default=None
)

SESSION_RECORD_KEY = "_account_session_id"
TOUCH_INTERVAL = timedelta(seconds=60)
API_TOKEN_PREFIX = "isp_"  # noqa: S105 (a public marker, not a secret)
BACKUP_CODE_COUNT = 10


def hash_key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def user_channel_group(user_id: object) -> str:
    """The channel-layer group every WebSocket of a user joins: ``"user.<uuid>"``."""
    return f"user.{user_id}"


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _session_store() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore


# --- Sessions ---------------------------------------------------------------------------------


def session_record_login(
    *, user: User, session: SessionBase, ip: str | None, user_agent: str
) -> UserSession:
    """Record a log-in; call right after ``django.contrib.auth.login`` (the key is final)."""
    if not session.session_key:
        session.save()
    key = session.session_key
    previous = session.get(SESSION_RECORD_KEY)
    with transaction.atomic():
        if previous:
            # Same browser logging in again: the old record's key no longer exists.
            UserSession.objects.filter(pk=previous, ended_at__isnull=True).update(
                ended_at=timezone.now(), end_reason=UserSession.EndReason.LOGOUT
            )
        record = UserSession.objects.create(
            user=user,
            key_hash=hash_key(key),
            session_key=key,
            user_agent=(user_agent or "")[:300],
            ip_address=_valid_ip(ip),
        )
    session[SESSION_RECORD_KEY] = record.pk
    return record


def session_touch(*, record: UserSession, now=None) -> None:
    """Mark the session used; writes at most once per ``TOUCH_INTERVAL``."""
    now = now or timezone.now()
    if now - record.last_seen_at >= TOUCH_INTERVAL:
        record.last_seen_at = now
        UserSession.objects.filter(pk=record.pk).update(last_seen_at=now)


def session_rekey(*, record: UserSession, session_key: str) -> None:
    """The session kept its record under a new key (``cycle_key``, e.g. a password change)."""
    new_hash = hash_key(session_key)
    if record.key_hash == new_hash:
        return
    record.key_hash = new_hash
    record.session_key = session_key
    record.save(update_fields=["key_hash", "session_key"])


def _idle_cutoff(now) -> datetime | None:
    """Sessions last seen before this are idle (None: no idle timeout configured)."""
    minutes = settings.SESSION_IDLE_TIMEOUT_MINUTES
    if not minutes:
        return None
    # last_seen_at is written at most once a minute, so allow that much slack.
    return now - timedelta(minutes=minutes) - TOUCH_INTERVAL


def session_is_idle(record: UserSession, now=None) -> bool:
    cutoff = _idle_cutoff(now or timezone.now())
    return cutoff is not None and record.last_seen_at < cutoff


def sessions_end(*, records: Iterable[UserSession], reason: str) -> int:
    """End the given active sessions: mark them, delete them from the session store, and
    (after commit) tell each user's WebSockets to close. Returns how many were ended."""
    now = timezone.now()
    store = _session_store()
    by_user: dict[object, list[str]] = {}
    ended = 0
    with transaction.atomic():
        for record in records:
            if record.ended_at is not None:
                continue
            updated = UserSession.objects.filter(pk=record.pk, ended_at__isnull=True).update(
                ended_at=now, end_reason=reason
            )
            if not updated:
                continue
            record.ended_at, record.end_reason = now, reason
            ended += 1
            try:
                key = record.session_key
            except DecryptionError:
                key = ""
            if key:
                store().delete(key)
            by_user.setdefault(record.user_id, []).append(record.key_hash)
    for user_id, hashes in by_user.items():
        transaction.on_commit(lambda u=user_id, h=hashes: _notify_sessions_revoked(u, h))
    metrics.sessions_ended(reason, ended)
    return ended


def sessions_end_stale(*, now=None, limit: int = 500) -> dict[str, int]:
    """End the sessions nobody ended at a request: idle past ``SESSION_IDLE_TIMEOUT_MINUTES``
    (the same rule as ``session_is_idle``) or older than the session's maximum age.

    The middleware ends an idle session at its next request; a client that only holds a
    WebSocket makes no request, so this sweep (beat, every minute) ends it and its sockets
    close. Returns the counts per reason.
    """
    now = now or timezone.now()
    active = UserSession.objects.filter(ended_at__isnull=True).order_by("last_seen_at")
    expired = list(
        active.filter(created_at__lt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE))[:limit]
    )
    counts = {"expired": sessions_end(records=expired, reason=UserSession.EndReason.EXPIRED)}
    cutoff = _idle_cutoff(now)
    idle = list(active.filter(last_seen_at__lt=cutoff)[:limit]) if cutoff is not None else []
    counts["idle"] = sessions_end(records=idle, reason=UserSession.EndReason.IDLE)
    return counts


def _notify_sessions_revoked(user_id: object, key_hashes: list[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            user_channel_group(user_id),
            {"type": "session.revoked", "session_key_hashes": key_hashes},
        )
    except Exception as exc:  # the sessions are gone already; sockets fail on reconnect
        logger.warning("could not notify revoked sessions", extra={"error": type(exc).__name__})


def session_revoke(
    *, user: User, session_id: int, reason: str = UserSession.EndReason.REVOKED
) -> bool:
    """End one of ``user``'s own sessions; False when it is not theirs or already ended."""
    records = list(UserSession.objects.filter(pk=session_id, user=user, ended_at__isnull=True))
    return sessions_end(records=records, reason=reason) == 1


def sessions_end_all_for_user(
    *, user: User, reason: str, keep_session_id: int | None = None
) -> int:
    """End every active session of ``user`` except ``keep_session_id``."""
    qs = UserSession.objects.filter(user=user, ended_at__isnull=True)
    if keep_session_id is not None:
        qs = qs.exclude(pk=keep_session_id)
    return sessions_end(records=list(qs), reason=reason)


def session_record_logout(*, session: SessionBase) -> None:
    record_id = session.get(SESSION_RECORD_KEY)
    if record_id:
        UserSession.objects.filter(pk=record_id, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason=UserSession.EndReason.LOGOUT
        )


def password_changed(*, user: User) -> int:
    """End ``user``'s other sessions after a password change (all of them when the change was
    made by someone else, e.g. an administrator)."""
    keep = current_user_session.get()
    if keep is not None and not UserSession.objects.filter(pk=keep, user_id=user.pk).exists():
        keep = None
    return sessions_end_all_for_user(
        user=user, reason=UserSession.EndReason.PASSWORD, keep_session_id=keep
    )


# --- API tokens -------------------------------------------------------------------------------


def api_token_create(
    *, user: User, name: str, scope: str, expires_in_days: int
) -> tuple[ApiToken, str]:
    """Create a token; returns it and the secret, which is never stored nor shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Dê um nome ao token.")})
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": _("Escopo inválido.")})
    max_days = settings.API_TOKEN_MAX_DAYS
    if not 1 <= expires_in_days <= max_days:
        raise ValidationError(
            {"expires_in_days": _("A validade deve ser de 1 a %(max)d dias.") % {"max": max_days}}
        )
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=secret[:12],
        key_hash=hash_key(secret),
        scope=scope,
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> bool:
    """Revoke ``token`` (idempotent); False when it was already revoked."""
    now = timezone.now()
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        token.revoked_at = now
    return bool(updated)


def api_token_authenticate(*, secret: str) -> ApiToken | None:
    """The usable token for ``secret`` (with its user loaded), or None."""
    if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(secret)).first()
    now = timezone.now()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- Two-factor authentication ----------------------------------------------------------------


def otp_required_for(user: User) -> bool:
    """Whether ``user`` must pass a second factor: admin, supervisor, dpo and superusers
    always; agents when ``OTP_REQUIRED_FOR_AGENTS`` is on."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.has_role(Role.ADMIN, Role.SUPERVISOR, Role.DPO):
        return True
    return bool(settings.OTP_REQUIRED_FOR_AGENTS) and user.has_role(Role.AGENT)


def totp_device_pending(*, user: User) -> AuthenticatorDevice:
    """The user's unconfirmed authenticator being enrolled (created on first call)."""
    device = AuthenticatorDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = AuthenticatorDevice.objects.create(user=user, name="Autenticador", confirmed=False)
    return device


def totp_device_confirm(*, device: AuthenticatorDevice, token: str) -> list[str] | None:
    """Confirm ``device`` with a code from the app. On success it replaces the user's other
    authenticators and backup codes; returns the new backup codes (shown once). None when the
    code is wrong."""
    token = "".join(ch for ch in token if ch.isdigit())
    if not token or not device.verify_token(token):
        return None
    with transaction.atomic():
        AuthenticatorDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = backup_codes_regenerate(user=device.user)
    return codes


def backup_codes_regenerate(*, user: User) -> list[str]:
    """Replace the user's backup codes with ``BACKUP_CODE_COUNT`` new single-use codes. The
    codes are returned to be shown once; only their keyed HMAC is stored."""
    codes: set[str] = set()
    while len(codes) < BACKUP_CODE_COUNT:
        codes.add(new_backup_code())
    ordered = sorted(codes)
    with transaction.atomic():
        BackupCodeDevice.objects.filter(user=user).delete()
        device = BackupCodeDevice.objects.create(user=user, name="Códigos de recuperação")
        BackupCode.objects.bulk_create(
            [
                BackupCode(device=device, digest=backup_code_digest(user_id=user.pk, code=c))
                for c in ordered
            ]
        )
    return ordered


def otp_devices_reset(*, user: User) -> int:
    """Remove every second-factor device of ``user`` and end their sessions (a lost phone):
    at the next log-in they enrol again. Returns the number of devices removed."""
    with transaction.atomic():
        removed = AuthenticatorDevice.objects.filter(user=user).count()
        removed += BackupCodeDevice.objects.filter(user=user).count()
        AuthenticatorDevice.objects.filter(user=user).delete()
        BackupCodeDevice.objects.filter(user=user).delete()
        sessions_end_all_for_user(user=user, reason=UserSession.EndReason.DEVICES)
    return removed


# RFC 6238's test key ("12345678901234567890"); base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ.
DEMO_TOTP_KEY_HEX = "3132333435363738393031323334353637383930"


def demo_totp_device_seed(*, user: User, key_hex: str = DEMO_TOTP_KEY_HEX) -> AuthenticatorDevice:
    """Development only: give ``user`` a confirmed authenticator with a known key, so the demo
    logins can pass 2FA (``oathtool --totp -b GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ``, or add that
    key to any authenticator app). Refuses with DEBUG off."""
    if not settings.DEBUG:
        raise RuntimeError("demo TOTP devices are for development (DEBUG) only")
    device, _created = AuthenticatorDevice.objects.update_or_create(
        user=user, name="Demo", defaults={"key": key_hex, "confirmed": True}
    )
    return device
