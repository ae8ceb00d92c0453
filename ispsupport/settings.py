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
    "channels",
    "django_prometheus",
    "axes",
    "auditlog",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "compliance",
    "conversations",
    "bot",
    "whatsapp",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
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

if CHANNEL_REDIS_URL:
    # Pub/sub layer: measured far lower latency than the list-based default and it does not
    # drop messages past a per-channel capacity; clients catch up by sequence after reconnects.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [CHANNEL_REDIS_URL], "prefix": "isp-ws"},
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
# Tasks carry explicit names ("<app>.<verb>_<noun>"); each app's queue is chosen here.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "whatsapp.process_webhook_event": {"queue": "webhooks"},
    "whatsapp.process_pending_webhook_events": {"queue": "webhooks"},
    "whatsapp.sweep_webhook_events": {"queue": "webhooks"},
    "whatsapp.deliver_outbound_message": {"queue": "outbound"},
    "whatsapp.download_media": {"queue": "media"},
    "bot.*": {"queue": "ai"},
}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Events stored but never processed (lost task, broker outage) are dispatched again.
    "whatsapp.sweep_webhook_events": {"task": "whatsapp.sweep_webhook_events", "schedule": 60.0},
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
LOGIN_URL = "/admin/login/"
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
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ispsupport API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Product ----------------------------------------------------------------------------------
ISP_NAME = env_str("ISP_NAME", "FibraNet Telecom")
# The data-protection officer (encarregado, LGPD Art. 41), shown in the privacy notice.
DPO_NAME = env_str("DPO_NAME", "Encarregado de Dados")
DPO_EMAIL = env_str("DPO_EMAIL", "privacidade@fibranet.example")
PRIVACY_POLICY_URL = env_str("PRIVACY_POLICY_URL", "https://fibranet.example/privacidade")
PROTOCOL_SEQUENCE_DIGITS = 6

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
}
COMPLIANCE_RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 500)
COMPLIANCE_DSR_DEADLINE_DAYS = env_int("DSR_DEADLINE_DAYS", 15)  # LGPD Art. 19 II, calendar days
COMPLIANCE_DSR_NEAR_DUE_DAYS = env_int("DSR_NEAR_DUE_DAYS", 3)
COMPLIANCE_EXPORT_LINK_HOURS = env_int("EXPORT_LINK_HOURS", 72)
# Carnival and Corpus Christi are federal "pontos facultativos": counted as business days
# unless this is on (the conservative default gives the earlier incident deadline).
COMPLIANCE_OPTIONAL_HOLIDAYS_ARE_OFF = env_bool("OPTIONAL_HOLIDAYS_ARE_OFF", False)
from celery.schedules import crontab as _crontab  # noqa: E402

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

FIELD_ENCRYPTION_KEYS = _require("FIELD_ENCRYPTION_KEYS").split(",")

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
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

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
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
