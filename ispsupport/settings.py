"""ispsupport settings: one module, driven by environment variables.

With nothing set it runs on the *embedded default*: SQLite, local-memory cache, the in-memory
channel layer and Celery in eager mode, DEBUG on and development secrets (announced loudly).
With ``DATABASE_URL`` it uses PostgreSQL through psycopg 3 and Django's native pool; with
``REDIS_URL`` the cache, channel layer and Celery broker move to Redis.

With ``DEBUG`` off every secret must come from the environment: a missing one stops the process
with a message naming the variable (see ``_require``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
TESTING = "pytest" in sys.modules or env_bool("ISPSUPPORT_TESTING", False)

# Development values: they only ever apply with DEBUG on, and match the built-in simulator.
_DEV_SECRETS = {
    "SECRET_KEY": "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef",
    "WHATSAPP_APP_SECRET": "dev-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "dev-verify-token",
    "WHATSAPP_ACCESS_TOKEN": "dev-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
    # A Fernet key (32 url-safe base64 bytes); for development only.
    "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE=",
    # HMAC key of the blind indexes (exact-match lookups on encrypted fields); development only.
    "BLIND_INDEX_KEY": "dev-only-blind-index-key-do-not-use-in-production-0123456789",
}
_missing_for_production: list[str] = []


def _require(name: str) -> str:
    """Return a secret from the environment; with DEBUG on fall back to the dev value."""
    value = env_str(name)
    if value:
        return value
    if DEBUG:
        return _DEV_SECRETS[name]
    _missing_for_production.append(name)
    return ""


SECRET_KEY = _require("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    _missing_for_production.append("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally (no CDN)
    "channels",
    "django_prometheus",
    "axes",
    "corsheaders",
    "auditlog",
    # django-otp's framework only: its otp_totp/otp_static plugins store secrets in clear, so
    # the devices are accounts' own (accounts/devices.py: encrypted secret, hashed codes).
    "django_otp",
    "accounts",
    "compliance",
    "conversations",
    "isp",
    "bot",
    "whatsapp",
    # Infrastructure: operator commands (backup_create, backup_restore); no models.
    "ispsupport",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ispsupport.requestid.RequestIdMiddleware",  # X-Request-ID in, out and on every log line
    "django.middleware.security.SecurityMiddleware",
    "ispsupport.security.SecurityHeadersMiddleware",  # CSP, Permissions-Policy
    "ispsupport.security.IPAllowlistMiddleware",  # ADMIN_IP_ALLOWLIST, API_IP_ALLOWLIST
    "ispsupport.security.WebhookRateLimitMiddleware",  # per IP, fails open
    "corsheaders.middleware.CorsMiddleware",  # closed unless CORS_ALLOWED_ORIGINS
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # accounts: session records (revocation, idle timeout) and the one 2FA gate.
    "accounts.middleware.SessionActivityMiddleware",
    "accounts.middleware.OTPRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ispsupport.security.AuditlogMiddleware",  # auditlog's, with our client_ip
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ispsupport.urls"
WSGI_APPLICATION = "ispsupport.wsgi.application"
ASGI_APPLICATION = "ispsupport.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=0)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db["ENGINE"] = "django_prometheus.db.backends.postgresql"
        # Django's native psycopg pool. Per-process size: see README "Connection pool".
        _db["OPTIONS"] = {
            "pool": {
                "min_size": env_int("DB_POOL_MIN_SIZE", 1),
                "max_size": env_int("DB_POOL_MAX_SIZE", 10),
                "timeout": env_float("DB_POOL_TIMEOUT_SECONDS", 10.0),
            },
        }
        # The pool checks a connection before handing it out (one empty query): after a
        # PostgreSQL restart the dead ones are replaced instead of each failing one request.
        _db["CONN_HEALTH_CHECKS"] = env_bool("DB_CONN_HEALTH_CHECKS", True)
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django_prometheus.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL and a busy timeout let the web process and the eager Celery work share
                # the file without "database is locked" under a handful of writers.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CACHE_REDIS_URL = env_str("CACHE_REDIS_URL", REDIS_URL)
CHANNEL_REDIS_URL = env_str("CHANNEL_REDIS_URL", REDIS_URL)

if CACHE_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_REDIS_URL,
            "TIMEOUT": 300,
            "KEY_PREFIX": "isp",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "ispsupport",
            "TIMEOUT": 300,
        }
    }


def _redis_db_number(url: str) -> int:
    """The database number of a ``redis://host:port/N`` URL (0 when absent)."""
    from urllib.parse import urlparse

    path = urlparse(url).path.strip("/")
    return int(path) if path.isdigit() else 0


# Redis pub/sub channels are global to a server: the database number in CHANNEL_REDIS_URL does
# not separate them. Two deployments (or test runs) on one Redis must differ in this prefix or
# they hear each other's live events. By default it follows the database number, so setups that
# are separated by database number are separated on pub/sub too.
_channel_db = _redis_db_number(CHANNEL_REDIS_URL) if CHANNEL_REDIS_URL else 0
CHANNEL_PREFIX = env_str("CHANNEL_PREFIX") or (
    "isp-ws" if not _channel_db else f"isp-ws-db{_channel_db}"
)

if CHANNEL_REDIS_URL:
    # Pub/sub layer: measured far lower latency than the list-based default and it does not
    # drop messages past a per-channel capacity; clients catch up by sequence after reconnects.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [CHANNEL_REDIS_URL], "prefix": CHANNEL_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL) or None
# Without a broker the tasks run inline (eager); the test suite forces eager too.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", TESTING)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "America/Sao_Paulo"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Workers log through Django's LOGGING (JSON, request ids, personal-data mask), not Celery's.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Tasks carry explicit names ("<app>.<verb>_<noun>"); each app's queue is chosen here.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "whatsapp.process_webhook_event": {"queue": "webhooks"},
    "whatsapp.process_pending_webhook_events": {"queue": "webhooks"},
    "whatsapp.sweep_webhook_events": {"queue": "webhooks"},
    "whatsapp.sweep_inbound_followups": {"queue": "webhooks"},
    "whatsapp.deliver_outbound_message": {"queue": "outbound"},
    "whatsapp.download_media": {"queue": "media"},
    "whatsapp.download_media_many": {"queue": "media"},
    "whatsapp.mark_conversation_read": {"queue": "outbound"},
    "bot.*": {"queue": "ai"},
}
# How often the sweepers look for work a lost task or a broker outage left behind (seconds).
WHATSAPP_SWEEP_INTERVAL_SECONDS = env_float("WHATSAPP_SWEEP_INTERVAL_SECONDS", 60.0)
if not 1 <= WHATSAPP_SWEEP_INTERVAL_SECONDS <= 3600:
    raise ImproperlyConfigured("WHATSAPP_SWEEP_INTERVAL_SECONDS must be between 1 and 3600")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Events stored but never processed (lost task, broker outage) are dispatched again.
    "whatsapp.sweep_webhook_events": {
        "task": "whatsapp.sweep_webhook_events",
        "schedule": WHATSAPP_SWEEP_INTERVAL_SECONDS,
    },
    # Customers' messages whose bot turn (or media download) was never enqueued get it now.
    "whatsapp.sweep_inbound_followups": {
        "task": "whatsapp.sweep_inbound_followups",
        "schedule": WHATSAPP_SWEEP_INTERVAL_SECONDS,
    },
    # Replies left pending (lost task, broker outage) are delivered again: no reply is lost.
    "whatsapp.sweep_outbox": {
        "task": "whatsapp.sweep_outbox",
        "schedule": WHATSAPP_SWEEP_INTERVAL_SECONDS,
    },
}

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = env_str("LOGIN_REDIRECT_URL", "/accounts/")
# Password changes end the user's other sessions (accounts.password_validation's hook).
AUTH_PASSWORD_VALIDATORS.append(
    {"NAME": "accounts.password_validation.EndSessionsOnPasswordChange"}
)
# Sessions: ended after this much inactivity (0 = never); cookies last at most SESSION_MAX_AGE.
SESSION_IDLE_TIMEOUT_MINUTES = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 60)
SESSION_COOKIE_AGE = env_int("SESSION_MAX_AGE_HOURS", 12) * 3600
# Two-factor (django-otp): always for admin, supervisor and dpo; for agents when this is on.
OTP_REQUIRED_FOR_AGENTS = env_bool("OTP_REQUIRED_FOR_AGENTS", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "ispsupport")
# Paths a logged-in user who still owes the second factor may reach.
OTP_EXEMPT_PATH_PREFIXES = [
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/2fa/",
    "/admin/login/",
    "/admin/logout/",
    "/static/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/webhooks/",
    "/simulator/",
    "/i18n/",
]
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
# The address of a request: the n-th X-Forwarded-For entry from the right when n proxies we
# trust sit in front (0: REMOTE_ADDR). Used by axes, rate limits, allowlists and sessions.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "ispsupport.security.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
# Rate limits ("events/seconds", GCRA in Redis shared by every process; ispsupport.security).
RATE_LIMIT_LOGIN_IP = env_str("RATE_LIMIT_LOGIN_IP", "30/300")  # fails closed
RATE_LIMIT_LOGIN_USERNAME = env_str("RATE_LIMIT_LOGIN_USERNAME", "10/300")  # fails closed
RATE_LIMIT_OTP = env_str("RATE_LIMIT_OTP", "10/300")  # per user, fails closed
RATE_LIMIT_API = env_str("RATE_LIMIT_API", "600/60")  # per token or user, fails open
# Meta delivers a whole number's traffic from few addresses: the limit sits above the product's
# peak (1,333 msg/s) so it only stops floods; a 429 would make Meta retry real messages.
RATE_LIMIT_WEBHOOK_IP = env_str("RATE_LIMIT_WEBHOOK_IP", "180000/60")  # per IP, fails open
RATE_LIMIT_UNAVAILABLE_RETRY_SECONDS = 30
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_MINUTES", 15.0) / 60.0  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# --- I18N -------------------------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
# Each language is named in itself, as a language picker should show it.
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media-not-public/"  # media is served only through permission-checked views
STORAGES = {
    # Customers' media and DSR exports, encrypted at rest with FIELD_ENCRYPTION_KEYS (AES-GCM,
    # streamed); callers read and write plaintext through the storage API.
    "default": {"BACKEND": "ispsupport.storage.EncryptedFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",  # Authorization: Bearer isp_…
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["ispsupport.security.ApiRateThrottle"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ispsupport API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema describes the console's API: only its users (or their tokens) may read it.
    "SERVE_PERMISSIONS": ["conversations.apis.IsConsoleUser"],
}

# --- Product ----------------------------------------------------------------------------------
ISP_NAME = env_str("ISP_NAME", "FibraNet Telecom")
# The data-protection officer (encarregado, LGPD Art. 41), shown in the privacy notice.
DPO_NAME = env_str("DPO_NAME", "Encarregado de Dados")
DPO_EMAIL = env_str("DPO_EMAIL", "privacidade@fibranet.example")
# The substitute for absence or vacancy (Res. CD/ANPD 18/2024), in the record of processing.
DPO_SUBSTITUTE_NAME = env_str("DPO_SUBSTITUTE_NAME", "")
DPO_SUBSTITUTE_EMAIL = env_str("DPO_SUBSTITUTE_EMAIL", "")
PRIVACY_POLICY_URL = env_str("PRIVACY_POLICY_URL", "https://fibranet.example/privacidade")
PROTOCOL_SEQUENCE_DIGITS = 6

# --- Agent console (conversations): assignment, presence, live events ---------------------------
CONVERSATIONS_AUTO_ASSIGN = env_bool("AUTO_ASSIGN", True)
CONVERSATIONS_RETURN_AFTER_MINUTES = env_int("RETURN_TO_QUEUE_AFTER_MINUTES", 5)
CONVERSATIONS_CSAT_ENABLED = env_bool("CSAT_ENABLED", True)
# A free text this soon after the rating is its comment; later ones open a new conversation.
CONVERSATIONS_CSAT_COMMENT_MINUTES = env_int("CSAT_COMMENT_MINUTES", 10)
# The dashboard hears "something changed" at most once per interval (it then refetches).
DASHBOARD_PUSH_INTERVAL_SECONDS = env_int("DASHBOARD_PUSH_INTERVAL_SECONDS", 2)
CONSOLE_HEARTBEAT_SECONDS = env_int("CONSOLE_HEARTBEAT_SECONDS", 20)
CONSOLE_PRESENCE_TIMEOUT_SECONDS = env_int("CONSOLE_PRESENCE_TIMEOUT_SECONDS", 75)
CONSOLE_EVENT_RETENTION_MINUTES = env_int("CONSOLE_EVENT_RETENTION_MINUTES", 360)
# SLA views (conversations.sla): how soon a running clock counts as "a vencer".
SLA_NEAR_DUE_MINUTES = env_int("SLA_NEAR_DUE_MINUTES", 30)
SLA_ANATEL_NEAR_DUE_HOURS = env_int("SLA_ANATEL_NEAR_DUE_HOURS", 24)
CONSOLE_CATCH_UP_MAX_EVENTS = 500
# Sessions idle or past their maximum age end even when their only client is a WebSocket.
CELERY_BEAT_SCHEDULE["accounts.end_stale_sessions"] = {
    "task": "accounts.end_stale_sessions",
    "schedule": 60.0,
    "options": {"expires": 60},
}
CELERY_BEAT_SCHEDULE["conversations.autoassign_waiting"] = {
    "task": "conversations.autoassign_waiting",
    "schedule": 10.0,
    "options": {"expires": 10},
}
CELERY_BEAT_SCHEDULE["conversations.return_unanswered"] = {
    "task": "conversations.return_unanswered",
    "schedule": 60.0,
    "options": {"expires": 60},
}
CELERY_BEAT_SCHEDULE["conversations.sweep_presence"] = {
    "task": "conversations.sweep_presence",
    "schedule": 30.0,
    "options": {"expires": 30},
}
CELERY_BEAT_SCHEDULE["conversations.prune_live_events"] = {
    "task": "conversations.prune_live_events",
    "schedule": 600.0,
}

# --- Privacy and compliance (LGPD, Anatel): see README "Privacy and compliance" ------------------
# Retention per data class, in days (compliance.registry reads these; legal floors in README).
COMPLIANCE_RETENTION_DAYS = {
    "messages": env_int("RETENTION_MESSAGES_DAYS", 730),  # after the conversation closes
    "webhook_events": env_int("RETENTION_WEBHOOK_EVENTS_DAYS", 30),
    "bot_decisions": env_int("RETENTION_BOT_DECISIONS_DAYS", 730),
    "access_log": env_int("RETENTION_ACCESS_LOG_DAYS", 365),  # Marco Civil art. 15: >= 183
    "service_records": env_int("RETENTION_SERVICE_RECORDS_DAYS", 1095),  # RGC 765: 3 years
    "exports": env_int("RETENTION_EXPORTS_DAYS", 7),
    "requests": env_int("RETENTION_REQUESTS_DAYS", 1825),  # accountability, Art. 6 X
    "incidents": env_int("RETENTION_INCIDENTS_DAYS", 1825),  # Res. CD/ANPD 15/2024 art. 10
    # Proof of a consent (LGPD art. 8 §2) outlives it by the CDC art. 27 limitation period:
    # counted from when a newer row superseded it, or from the last row of an erased customer.
    "consents": env_int("RETENTION_CONSENTS_DAYS", 1825),
    # Who changed what (admin and auditlog change logs).
    "change_logs": env_int("RETENTION_CHANGE_LOGS_DAYS", 1825),
    # isp: a conversation's identification state (after it expired), our copies of a real
    # ERP's contracts (after the last read) and the trust-unlock grants (after granted).
    "identity_states": env_int("RETENTION_IDENTITY_STATES_DAYS", 7),
    "erp_cache": env_int("RETENTION_ERP_CACHE_DAYS", 90),
    "trust_unlocks": env_int("RETENTION_TRUST_UNLOCKS_DAYS", 365),
    # isp: reports of no connection (outage detection), the links of conversations to an
    # outage (after it was resolved) and campaign recipients (after the campaign ended).
    "outage_reports": env_int("RETENTION_OUTAGE_REPORTS_DAYS", 2),
    "outage_links": env_int("RETENTION_OUTAGE_LINKS_DAYS", 180),
    "campaign_recipients": env_int("RETENTION_CAMPAIGN_RECIPIENTS_DAYS", 365),
    # isp: an uploaded customer-base CSV left behind by an import that never ran (each import
    # deletes its file when it ends), and the import runs with their rejected-rows reports.
    "contract_import_files": env_int("RETENTION_CONTRACT_IMPORT_FILES_DAYS", 1),
    "contract_imports": env_int("RETENTION_CONTRACT_IMPORTS_DAYS", 90),
}
COMPLIANCE_RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 500)
COMPLIANCE_DSR_DEADLINE_DAYS = env_int("DSR_DEADLINE_DAYS", 15)  # LGPD Art. 19 II, calendar days
COMPLIANCE_DSR_NEAR_DUE_DAYS = env_int("DSR_NEAR_DUE_DAYS", 3)
COMPLIANCE_EXPORT_LINK_HOURS = env_int("EXPORT_LINK_HOURS", 72)
# The personal-data access log records a page's live refreshes and an integration's polling of
# the same object once per this many seconds per user (explicit page opens: every time).
ACCESS_LOG_REPEAT_SECONDS = env_int("ACCESS_LOG_REPEAT_SECONDS", 300)
# Carnival and Corpus Christi are federal "pontos facultativos": counted as business days
# unless this is on (the conservative default gives the earlier incident deadline).
COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF = env_bool("OPTIONAL_HOLIDAYS_ARE_OFF", False)
# A cancellation not completed in the contact is due within the provider's target in business
# days, never later than the 7 calendar days of Decreto 11.034/2022 (0: just that ceiling).
# Default 2: Res. 632/2014's rule (revoked), stricter than every rule in force; the RGC 765
# cancellation article is UNCERTAIN (COMPLIANCE-FACTS §3.1). See compliance/services/deadlines.py.
COMPLIANCE_SAC_CANCELLATION_BUSINESS_DAYS = env_int("SAC_CANCELLATION_BUSINESS_DAYS", 2)
from celery.schedules import crontab as _crontab  # noqa: E402

CELERY_BEAT_SCHEDULE["whatsapp.sync_templates"] = {
    "task": "whatsapp.sync_templates",
    "schedule": max(5, env_int("WHATSAPP_TEMPLATE_SYNC_MINUTES", 60)) * 60.0,
}
CELERY_BEAT_SCHEDULE["compliance.apply_retention"] = {
    "task": "compliance.apply_retention",
    "schedule": _crontab(hour=3, minute=30),  # nightly, São Paulo time (CELERY_TIMEZONE)
    "options": {"expires": 6 * 3600},
}
CELERY_BEAT_SCHEDULE["compliance.check_request_deadlines"] = {
    "task": "compliance.check_request_deadlines",
    "schedule": _crontab(hour=7, minute=0),
}

# WhatsApp Cloud API (Meta). Several phone-number ids may be listed, comma-separated.
WHATSAPP_APP_SECRET = _require("WHATSAPP_APP_SECRET")
WHATSAPP_VERIFY_TOKEN = _require("WHATSAPP_VERIFY_TOKEN")
WHATSAPP_ACCESS_TOKEN = _require("WHATSAPP_ACCESS_TOKEN")
WHATSAPP_PHONE_NUMBER_IDS = [p.strip() for p in _require("WHATSAPP_PHONE_NUMBER_ID").split(",")]
WHATSAPP_API_BASE_URL = env_str(
    "WHATSAPP_API_BASE_URL",
    "http://127.0.0.1:8000/simulator/graph" if DEBUG else "https://graph.facebook.com",
).rstrip("/")
WHATSAPP_API_VERSION = env_str("WHATSAPP_API_VERSION", "v25.0")
WHATSAPP_WEBHOOK_MAX_BYTES = 3 * 1024 * 1024  # Meta's stated maximum payload
# Django refuses bodies above this before a view sees them; leave room for Meta's 3 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = WHATSAPP_WEBHOOK_MAX_BYTES + 64 * 1024
SIMULATOR_ENABLED = env_bool("SIMULATOR_ENABLED", DEBUG)
# Where the simulator posts its signed webhooks (our own endpoint).
SIMULATOR_WEBHOOK_URL = env_str("SIMULATOR_WEBHOOK_URL", "http://127.0.0.1:8000/webhooks/whatsapp/")
# Outbound delivery (see README "Outbound delivery"). Meta's tier per number: 80 msg/s by
# default, up to 1,000 after Meta's automatic upgrade (20 for coexistence numbers).
WHATSAPP_SEND_RATE_PER_SECOND = env_int("WHATSAPP_SEND_RATE_PER_SECOND", 80)
if not 1 <= WHATSAPP_SEND_RATE_PER_SECOND <= 1000:
    raise ImproperlyConfigured("WHATSAPP_SEND_RATE_PER_SECOND must be between 1 and 1000")
# Meta's pair rate: 1 message per 6 s to one customer, after a small burst.
WHATSAPP_PAIR_INTERVAL_SECONDS = env_float("WHATSAPP_PAIR_INTERVAL_SECONDS", 6.0)
WHATSAPP_PAIR_BURST = env_int("WHATSAPP_PAIR_BURST", 5)
WHATSAPP_DELIVERY_MAX_ATTEMPTS = env_int("WHATSAPP_DELIVERY_MAX_ATTEMPTS", 6)
WHATSAPP_RETRY_BASE_SECONDS = env_float("WHATSAPP_RETRY_BASE_SECONDS", 2.0)
WHATSAPP_OUTBOX_SWEEP_AFTER_SECONDS = env_int("WHATSAPP_OUTBOX_SWEEP_AFTER_SECONDS", 60)
# Stored webhook events, and customers' messages still waiting for their bot turn, are taken
# over by the sweepers after this long.
WHATSAPP_WEBHOOK_SWEEP_AFTER_SECONDS = env_int("WHATSAPP_WEBHOOK_SWEEP_AFTER_SECONDS", 120)
WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS = env_int("WHATSAPP_FOLLOWUP_SWEEP_AFTER_SECONDS", 120)
WHATSAPP_HTTP_TIMEOUT_SECONDS = env_float("WHATSAPP_HTTP_TIMEOUT_SECONDS", 10.0)
# A delivery attempt holds its message this long (upload + send); a worker that dies holding it
# delays that reply by at most this much (then the outbox sweeper takes over). It must outlast
# an attempt: two Graph calls, each up to the connect (3 s) and read timeouts.
WHATSAPP_CLAIM_LEASE_SECONDS = env_int("WHATSAPP_CLAIM_LEASE_SECONDS", 60)
if WHATSAPP_CLAIM_LEASE_SECONDS < 2 * (WHATSAPP_HTTP_TIMEOUT_SECONDS + 3.05) + 2:
    raise ImproperlyConfigured(
        "WHATSAPP_CLAIM_LEASE_SECONDS must exceed two Graph calls: at least "
        f"{2 * (WHATSAPP_HTTP_TIMEOUT_SECONDS + 3.05) + 2:.0f} s with "
        f"WHATSAPP_HTTP_TIMEOUT_SECONDS={WHATSAPP_HTTP_TIMEOUT_SECONDS:g}"
    )
WHATSAPP_TOKEN_ALERT_SECONDS = env_int("WHATSAPP_TOKEN_ALERT_SECONDS", 3600)
WHATSAPP_MEDIA_MAX_BYTES = env_int("WHATSAPP_MEDIA_MAX_BYTES", 100 * 1024 * 1024)
# Without a broker (eager Celery) a delayed retry runs on a timer thread; tests turn it off.
WHATSAPP_EAGER_DEFERRED_RETRIES = env_bool("WHATSAPP_EAGER_DEFERRED_RETRIES", not TESTING)
# The WhatsApp Business Account whose approved templates are synced (GET /{waba}/message_templates;
# Meta allows 200 calls/hour per WABA on that endpoint, the hourly sync uses one or two).
WHATSAPP_BUSINESS_ACCOUNT_ID = env_str(
    "WHATSAPP_BUSINESS_ACCOUNT_ID", "100000000000010" if DEBUG else ""
)
WHATSAPP_TEMPLATE_SYNC_MINUTES = env_int("WHATSAPP_TEMPLATE_SYNC_MINUTES", 60)
# Approved UTILITY templates that tell a customer outside the 24-hour window about their
# data-subject request: "{{1}}" is the request number.
DSR_ANSWER_TEMPLATE = env_str("DSR_ANSWER_TEMPLATE", "solicitacao_dados_respondida")
DSR_ERASURE_TEMPLATE = env_str("DSR_ERASURE_TEMPLATE", "solicitacao_dados_eliminados")

# Gemini (Google). No key: the rule-based pt-BR classifier answers.
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-3.5-flash-lite")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL") or None
GEMINI_TIMEOUT_SECONDS = env_float("GEMINI_TIMEOUT_SECONDS", 8.0)
# Shared across every worker through the cache (Redis in production): the project's quota
# (requests per minute, keep ~80% of the tier's limit) and the circuit breaker.
GEMINI_REQUESTS_PER_MINUTE = env_int("GEMINI_REQUESTS_PER_MINUTE", 120)
GEMINI_BREAKER_FAIL_MAX = env_int("GEMINI_BREAKER_FAIL_MAX", 5)
GEMINI_BREAKER_RESET_SECONDS = env_float("GEMINI_BREAKER_RESET_SECONDS", 60.0)

# The ISP's management system (isp.erp): "demo" (our own tables, seeded by seed_demo), "rest"
# (the JSON API in README at ERP_BASE_URL with ERP_TOKEN) or "none" (knowledge base only).
ERP_ADAPTER = env_str("ERP_ADAPTER", "demo").strip().lower()
ERP_BASE_URL = env_str("ERP_BASE_URL")
ERP_TOKEN = env_str("ERP_TOKEN")
ERP_TIMEOUT_SECONDS = env_float("ERP_TIMEOUT_SECONDS", 4.0)
ERP_CONNECT_TIMEOUT_SECONDS = env_float("ERP_CONNECT_TIMEOUT_SECONDS", 2.0)
ERP_RETRIES = env_int("ERP_RETRIES", 2)
ERP_RETRY_BACKOFF_SECONDS = env_float("ERP_RETRY_BACKOFF_SECONDS", 0.3)
ERP_BREAKER_FAIL_MAX = env_int("ERP_BREAKER_FAIL_MAX", 5)
ERP_BREAKER_RESET_SECONDS = env_float("ERP_BREAKER_RESET_SECONDS", 30.0)
# Self-service through the bot: identity and the ISP's policies.
ISP_IDENTITY_TTL_MINUTES = env_int("ISP_IDENTITY_TTL_MINUTES", 30)
ISP_CPF_MAX_ATTEMPTS = env_int("ISP_CPF_MAX_ATTEMPTS", 3)
ISP_TRUST_UNLOCK_DAYS = env_int("ISP_TRUST_UNLOCK_DAYS", 3)
ISP_TRUST_UNLOCK_INTERVAL_DAYS = env_int("ISP_TRUST_UNLOCK_INTERVAL_DAYS", 30)
ISP_VISIT_WINDOW_DAYS = env_int("ISP_VISIT_WINDOW_DAYS", 7)
# The customer-base import (isp/imports.py): rows per transaction, and the largest CSV the
# admin accepts (100,000 contracts are about 15 MB).
CONTRACT_IMPORT_BATCH_SIZE = env_int("CONTRACT_IMPORT_BATCH_SIZE", 1000)
CONTRACT_IMPORT_MAX_UPLOAD_MB = env_int("CONTRACT_IMPORT_MAX_UPLOAD_MB", 50)

# Outages (isp/outages.py): detection proposes an outage when this many distinct customers of
# one region report no connection within the window; tags counted: city, neighbourhood (with
# its city), pop, olt, box. The all-clear outside the 24-hour window uses this template.
OUTAGE_DETECT_MIN_CUSTOMERS = env_int("OUTAGE_DETECT_MIN_CUSTOMERS", 5)
OUTAGE_DETECT_WINDOW_MINUTES = env_int("OUTAGE_DETECT_WINDOW_MINUTES", 15)
OUTAGE_DETECT_TAGS = [
    t.strip()
    for t in env_str("OUTAGE_DETECT_TAGS", "neighbourhood,pop,olt").split(",")
    if t.strip()
]
OUTAGE_ALL_CLEAR_TEMPLATE = env_str("OUTAGE_ALL_CLEAR_TEMPLATE", "falha_resolvida")
# Campaigns and the all-clear (isp/campaigns.py): bulk sends are paced at this rate, below the
# number's tier, so replies to customers keep room; delivery applies the tier and pair limits.
CAMPAIGN_SEND_RATE_PER_SECOND = env_int(
    "CAMPAIGN_SEND_RATE_PER_SECOND", max(1, WHATSAPP_SEND_RATE_PER_SECOND // 2)
)
CAMPAIGN_BATCH_SIZE = env_int("CAMPAIGN_BATCH_SIZE", 200)
# Starts scheduled campaigns when their time comes and resumes bulk sends whose task was lost.
CELERY_BEAT_SCHEDULE["isp.bulk_sends_tick"] = {
    "task": "isp.bulk_sends_tick",
    "schedule": 30.0,
    "options": {"expires": 30},
}

FIELD_ENCRYPTION_KEYS = _require("FIELD_ENCRYPTION_KEYS").split(",")
BLIND_INDEX_KEY = _require("BLIND_INDEX_KEY")

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# No 'unsafe-inline' scripts: pages load their JavaScript from /static/. Inline styles are
# allowed (the admin uses style attributes); QR codes are data: images.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY_REPORT_ONLY = env_bool("CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# CORS: closed (no Access-Control-* headers) unless origins are listed; only /api/.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"
# Optional allowlists (comma-separated CIDRs); empty allows every address.
ADMIN_IP_ALLOWLIST = env_list("ADMIN_IP_ALLOWLIST")
API_IP_ALLOWLIST = env_list("API_IP_ALLOWLIST")

# --- Audit: django-auditlog on every model, registered from settings -------------------------
# Every model of every app is tracked except those listed here: framework tables, secrets,
# and machine records with their own trail (the personal-data access log has its hash chain).
AUDITLOG_INCLUDE_ALL_MODELS = True
AUDITLOG_EXCLUDE_TRACKING_MODELS = (
    "admin",
    "auth.Permission",
    "contenttypes",
    "sessions",
    "axes",
    "accounts.BackupCode",  # the backup codes themselves (keyed hashes)
    "compliance.AccessLogEntry",
    "compliance.AccessLogCheckpoint",
    "compliance.RetentionRun",
    "conversations.LiveEvent",  # short-lived fan-out buffer of ids
    "conversations.ProtocolCounter",
    # Machine-written, append-only records that carry their own author and time: auditing
    # them would double the writes of the webhook and bot paths and record nothing new.
    "whatsapp.WebhookEvent",
    "whatsapp.EarlyStatus",
    "conversations.Message",
    "conversations.ConversationEvent",
    "bot.BotDecision",
    # Written by the bot on every self-service turn (who the conversation proved to be) and
    # on each trust unlock it grants; both carry their own time and conversation.
    "isp.ConversationContract",
    "isp.TrustUnlock",
    # Written by the bot and the bulk-send tasks, one row per customer: a conversation attached
    # to an outage, a report of no connection, a campaign recipient (ids, states and times).
    "isp.OutageConversation",
    "isp.OutageReport",
    "isp.CampaignRecipient",
)
# Diffs never hold secrets, raw bodies or message texts ("exclude_fields": not recorded) nor
# personal values ("mask_fields": the change is recorded as "***"). Encrypted fields must be in
# one of the two lists, blind-index columns in "exclude_fields" (tests/security/test_audit.py
# fails otherwise). Models whose str() is personal (audit_repr_is_personal) are named by id in
# object_repr (ispsupport.security.hide_personal_object_repr).
AUDITLOG_MASK_CALLABLE = "ispsupport.security.audit_mask"
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "accounts.User", "exclude_fields": ["password", "last_login", "presence_changed_at"]},
    {
        "model": "accounts.UserSession",
        "exclude_fields": ["session_key", "key_hash", "last_seen_at", "user_agent"],
        "mask_fields": ["ip_address"],
    },
    {"model": "accounts.ApiToken", "exclude_fields": ["key_hash", "last_used_at"]},
    {
        "model": "accounts.AuthenticatorDevice",
        "exclude_fields": [
            "key",
            "last_t",
            "drift",
            "last_used_at",
            "created_at",
            "throttling_failure_timestamp",
            "throttling_failure_count",
        ],
    },
    {
        "model": "accounts.BackupCodeDevice",
        "exclude_fields": [
            "last_used_at",
            "created_at",
            "throttling_failure_timestamp",
            "throttling_failure_count",
        ],
    },
    {
        "model": "conversations.Customer",
        # Blind indexes are keyed hashes of the identifiers: never in a diff.
        "exclude_fields": [
            "metadata",
            "wa_id_bidx",
            "bsuid_bidx",
            "phone_bidx",
            "cpf_bidx",
            "name_bidx",
        ],
        "mask_fields": [
            "wa_id",
            "bsuid",
            "parent_bsuid",
            "username",
            "phone_e164",
            "name",
            "cpf",
            "contract_ref",
        ],
    },
    {"model": "conversations.Conversation", "mask_fields": ["resolution_note", "csat_comment"]},
    {"model": "conversations.ConversationNote", "mask_fields": ["text"]},
    {
        "model": "compliance.DataSubjectRequest",
        "exclude_fields": ["erasure_report", "third_parties"],
        "mask_fields": [
            "answer_address",
            "representative_name",
            "details",
            "identity_note",
            "answer_text",
        ],
    },
    {"model": "compliance.ConsentRecord", "exclude_fields": ["proof"]},
    {"model": "compliance.DataExport", "exclude_fields": ["token"]},
    {"model": "compliance.ServiceRecordHold", "mask_fields": ["synthesis", "subject_digest"]},
    {"model": "isp.Contract", "mask_fields": ["holder_name", "cpf", "cpf_index", "address"]},
    {"model": "isp.ContractPhone", "mask_fields": ["phone", "phone_index"]},
    {"model": "isp.Invoice", "mask_fields": ["digitable_line", "pix_code"]},
    {"model": "compliance.LegalHold", "mask_fields": ["reason"]},
    {
        "model": "compliance.Incident",
        "mask_fields": [
            "description",
            "data_nature",
            "risks",
            "delay_reasons",
            "reason_not_notified",
            "communication_note",
        ],
    },
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Metrics and observability (README "Metrics and logs") -------------------------------------
# Who may scrape /metrics: addresses in METRICS_IP_ALLOWLIST (CIDRs; default loopback and
# private networks, where Prometheus lives), and with METRICS_TOKEN set, only with
# "Authorization: Bearer <token>". Sessions and roles never open it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_IP_ALLOWLIST = env_list(
    "METRICS_IP_ALLOWLIST",
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
)
# Gauges read from the database on scrape are cached this long per process.
METRICS_STATE_CACHE_SECONDS = env_float("METRICS_STATE_CACHE_SECONDS", 15.0)
# Queries slower than this are logged (duration, our file:line, never parameters); 0: off.
DB_SLOW_QUERY_MS = env_int("DB_SLOW_QUERY_MS", 500)
# A Celery worker serves its own series on this port (0: off); see README.
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "127.0.0.1")
APP_VERSION = env_str("APP_VERSION", "dev")

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "filters": {
        # The request id that follows a customer message end to end (ispsupport/requestid.py).
        "request_id": {"()": "ispsupport.requestid.RequestIdFilter"},
        # Masks phone numbers, CPFs, e-mails and tokens in every record (ispsupport/logging.py).
        "pii": {"()": "ispsupport.logging.PIIMaskingFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "plain" if DEBUG else "json"),
            "filters": ["request_id", "pii"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Replace Django's default handlers (unfiltered) so every record goes through "pii".
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "daphne": {"level": "WARNING"},
    },
}

if _missing_for_production:
    raise ImproperlyConfigured(
        "DEBUG is off but these required settings are missing from the environment: "
        + ", ".join(_missing_for_production)
    )
if DEBUG and not TESTING and "runserver" not in sys.argv:
    # Loud, once per process: development secrets are in use.
    print(
        "ispsupport: DEBUG is on with development secrets (never use this in production)",
        file=sys.stderr,
    )
