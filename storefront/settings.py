"""Token Store settings: one module, driven by the environment (django-environ).

Every variable read here is documented in `.env.example`. The store runs with nothing but
Python (SQLite, local-memory cache, a filesystem Celery broker) and switches to PostgreSQL and
Redis when `DATABASE_URL` / `REDIS_URL` are set.

Why this module is long: the team keeps one settings module on purpose (every setting and its
comment in one place, no per-environment forks).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists() and not os.environ.get("TOKENSTORE_IGNORE_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env")

# `make run` sets TOKENSTORE_DEV=1 so a fresh clone runs in development mode unless .env says otherwise.
DEBUG = env.bool("DEBUG", default=env.bool("TOKENSTORE_DEV", default=False))
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode"  # noqa: S105

PORT = env.int("PORT", default=8000)
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{PORT}").rstrip("/")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

# --- Business rules (docs/ARCHITECTURE.md, "Money rules"). Decimal, never float. ---------------
MAX_ORDER_USD = Decimal(env("MAX_ORDER_USD", default="20.00"))
MARKUP_RATE = Decimal(env("MARKUP_RATE", default="0.20"))
MIN_TOKENS = env.int("MIN_TOKENS", default=100)
MIN_ORDER_USD = Decimal(env("MIN_ORDER_USD", default="1.00"))
DEFAULT_MODEL = env("DEFAULT_MODEL", default="anthropic/claude-3-sonnet")
# Offered when the catalogue sync first sees them with a sellable price (DEFAULT_MODEL too);
# after that `offered` is staff's choice in the admin.
OFFERED_MODELS_DEFAULT = env.list(
    "OFFERED_MODELS_DEFAULT",
    default=[
        "anthropic/claude-3-sonnet",
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-3-haiku",
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "google/gemini-pro-1.5",
        "google/gemini-flash-1.5",
        "meta-llama/llama-3.1-70b-instruct",
        "mistralai/mistral-large",
        "deepseek/deepseek-chat",
    ],
)
PAYMENT_CURRENCIES = env.list("PAYMENT_CURRENCIES", default=["BTC", "USDT_TRC20"])
if MAX_ORDER_USD > Decimal("20.00"):
    raise ImproperlyConfigured("MAX_ORDER_USD can never exceed 20.00 (money rule 3).")
if MIN_TOKENS < 100:
    raise ImproperlyConfigured("MIN_TOKENS can never be below 100 (money rule 3).")
if not Decimal("0") <= MARKUP_RATE <= Decimal("0.20"):
    raise ImproperlyConfigured("MARKUP_RATE must be between 0 and 0.20 (money rule 3: lowered, never raised).")
if not Decimal("1.00") <= MIN_ORDER_USD <= MAX_ORDER_USD:
    raise ImproperlyConfigured("MIN_ORDER_USD must be at least 1.00 (the gateway's minimum) and at most MAX_ORDER_USD.")

# --- External services and sandbox mode ------------------------------------------------------
# Whitespace-only credentials count as missing (storefront/checks.py).
OPENROUTER_API_KEY = env("OPENROUTER_API_KEY", default="").strip()
KRYPTO_EXPRESS_API_KEY = env("KRYPTO_EXPRESS_API_KEY", default="").strip()
_real_credentials = bool(OPENROUTER_API_KEY and KRYPTO_EXPRESS_API_KEY)
_sandbox_env = env("SANDBOX", default="auto").strip().lower()
if _sandbox_env in {"1", "true", "yes", "on", "force"}:
    SANDBOX = True
elif _sandbox_env in {"0", "false", "no", "off"}:
    SANDBOX = False
elif _sandbox_env == "auto":
    # Development with no real credentials runs against the local imitations. Production
    # (DEBUG off) never falls into the sandbox by accident: it must be forced.
    SANDBOX = DEBUG and not _real_credentials
else:
    raise ImproperlyConfigured("SANDBOX must be auto, true or false.")

# The sandbox with DEBUG off is refused (storefront/checks.py) unless this opt-in for a public
# demo is set: a demo whose control page lets anyone "pay", and which sells nothing real.
SANDBOX_PUBLIC_DEMO = env.bool("SANDBOX_PUBLIC_DEMO", default=False)
SANDBOX_OPENROUTER_KEY = "sandbox-management-key"  # a public sandbox value, not a secret
SANDBOX_KRYPTO_EXPRESS_KEY = "sandbox-api-key"
if SANDBOX:
    OPENROUTER_API_KEY = OPENROUTER_API_KEY or SANDBOX_OPENROUTER_KEY
    KRYPTO_EXPRESS_API_KEY = KRYPTO_EXPRESS_API_KEY or SANDBOX_KRYPTO_EXPRESS_KEY
    _or_default = f"{SITE_URL}/sandbox/openrouter/api/v1"
    _ke_default = f"{SITE_URL}/sandbox/kryptoexpress/api"
else:
    if not _real_credentials:
        raise ImproperlyConfigured(
            "Refusing to start half-configured: set OPENROUTER_API_KEY and KRYPTO_EXPRESS_API_KEY, "
            "or run in sandbox mode (DEBUG=1, or SANDBOX=true)."
        )
    _or_default = "https://openrouter.ai/api/v1"
    _ke_default = "https://kryptoexpress.pro/api"
OPENROUTER_API_URL = env("OPENROUTER_API_URL", default=_or_default).rstrip("/")
KRYPTO_EXPRESS_API_URL = env("KRYPTO_EXPRESS_API_URL", default=_ke_default).rstrip("/")
# (connect, read) seconds for every outbound HTTP call.
HTTP_TIMEOUT = (env.float("HTTP_CONNECT_TIMEOUT", default=3.05), env.float("HTTP_READ_TIMEOUT", default=15.0))
# Multiplies the gateway sandbox's callback retry schedule (0, 120, 240, 480, 960 s); tests shrink it.
SANDBOX_CALLBACK_DELAY_SCALE = env.float("SANDBOX_CALLBACK_DELAY_SCALE", default=1.0)
# Milliseconds the gateway sandbox waits before answering each API call (benchmarks, demos).
SANDBOX_KRYPTO_EXPRESS_LATENCY_MS = env.float("SANDBOX_KRYPTO_EXPRESS_LATENCY_MS", default=0.0)
# Seconds the gateway sandbox holds the answer of a withdrawal it made when told to "lose" it.
SANDBOX_WALLET_LOST_ANSWER_SECONDS = env.float("SANDBOX_WALLET_LOST_ANSWER_SECONDS", default=20.0)
# A refund left "sending" (process killed mid-call) or "unknown" may be re-checked after this many seconds.
REFUND_STALE_SECONDS = env.int("REFUND_STALE_SECONDS", default=300)

# Fernet keys (comma separated, newest first) encrypting delivered keys and callback secrets.
# The first key encrypts; every key decrypts, which is how rotation works (README).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG and not SANDBOX:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set in production.")
    # Development only: derived from SECRET_KEY so a restart can still read stored secrets.
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(("fernet:" + SECRET_KEY).encode()).digest()).decode()
    ]

# Order flow tuning.
PAYMENT_POLL_INTERVAL_SECONDS = env.int("PAYMENT_POLL_INTERVAL_SECONDS", default=30)
PAYMENT_POLL_CONCURRENCY = env.int("PAYMENT_POLL_CONCURRENCY", default=16)
PAYMENT_LATE_GRACE_HOURS = env.int("PAYMENT_LATE_GRACE_HOURS", default=24)
# A poll cycle stops claiming new orders after this many seconds (below the task time limit).
PAYMENT_POLL_BUDGET_SECONDS = env.float("PAYMENT_POLL_BUDGET_SECONDS", default=180.0)
MAX_UNPAID_ORDERS_PER_USER = env.int("MAX_UNPAID_ORDERS_PER_USER", default=3)
ORDER_RATE_LIMIT = env("ORDER_RATE_LIMIT", default="10/h")
# Quote requests (/quote/, /api/quote) per IP: generous, the custom amount asks as the customer types.
QUOTE_RATE_LIMIT = env("QUOTE_RATE_LIMIT", default="300/m")
# How long a process may reuse the catalogue version it last read before asking the cache again
# (docs/WEB_SPEED.md). Checkout always recomputes, so a page a second old never sets a price.
CATALOGUE_RECHECK_SECONDS = env.float("CATALOGUE_RECHECK_SECONDS", default=1.0)
# How often a process re-reads the shared orders epoch before answering a status poll from memory
# (orders/order_epoch.py); a change made in this process is seen at once.
ORDER_STATUS_RECHECK_SECONDS = env.float("ORDER_STATUS_RECHECK_SECONDS", default=1.0)
LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", default="5/m")
# Account creation attempts per IP, and password-reset requests per IP and per email.
SIGNUP_RATE_LIMIT = env("SIGNUP_RATE_LIMIT", default="20/h")
PASSWORD_RESET_RATE_LIMIT = env("PASSWORD_RESET_RATE_LIMIT", default="5/h")
# A rate django-ratelimit cannot read would turn every request it guards into an error; refuse it
# at start-up instead. "10/h" is ten an hour, "100/5m" a hundred every five minutes.
for _rate_setting in (
    "ORDER_RATE_LIMIT", "QUOTE_RATE_LIMIT", "LOGIN_RATE_LIMIT", "SIGNUP_RATE_LIMIT", "PASSWORD_RESET_RATE_LIMIT"
):
    if not re.fullmatch(r"[1-9]\d*/([1-9]\d*)?[smhd]", vars()[_rate_setting]):
        raise ImproperlyConfigured(f"{_rate_setting} must be a count per period, like 10/h or 100/5m (s, m, h, d).")
FULFIL_STUCK_AFTER_SECONDS = env.int("FULFIL_STUCK_AFTER_SECONDS", default=300)
# A fulfil claim is a lease the live attempt renews before each OpenRouter call; it lapses after
# FULFIL_LEASE_SECONDS (0 = connect + read timeout + FULFIL_LEASE_MARGIN_SECONDS, about 28 s).
FULFIL_LEASE_SECONDS = env.float("FULFIL_LEASE_SECONDS", default=0.0)
FULFIL_LEASE_MARGIN_SECONDS = env.float("FULFIL_LEASE_MARGIN_SECONDS", default=10.0)
# After a key creation with an unknown outcome, the order's keys are swept this long after the
# client's timeouts (connect + read + margin, about 33 s): by then a lost request has landed.
KEY_SWEEP_MARGIN_SECONDS = env.float("KEY_SWEEP_MARGIN_SECONDS", default=15.0)
# Transient OpenRouter errors are retried up to FULFIL_MAX_ATTEMPTS attempts in all, waiting
# base × 2^(attempt−1) between them, jittered and capped at the max.
FULFIL_MAX_ATTEMPTS = env.int("FULFIL_MAX_ATTEMPTS", default=6)
FULFIL_RETRY_BASE_SECONDS = env.float("FULFIL_RETRY_BASE_SECONDS", default=2.0)
FULFIL_RETRY_MAX_SECONDS = env.float("FULFIL_RETRY_MAX_SECONDS", default=300.0)
if FULFIL_MAX_ATTEMPTS < 1 or not 0 < FULFIL_RETRY_BASE_SECONDS <= FULFIL_RETRY_MAX_SECONDS:
    raise ImproperlyConfigured(
        "FULFIL_MAX_ATTEMPTS must be at least 1, and 0 < FULFIL_RETRY_BASE_SECONDS <= FULFIL_RETRY_MAX_SECONDS."
    )
# A `paid` order untouched this long with no fulfil task in flight is re-enqueued by the reconciler.
FULFIL_REQUEUE_AFTER_SECONDS = env.int("FULFIL_REQUEUE_AFTER_SECONDS", default=120)
KEY_EXPIRES_DAYS = env.int("KEY_EXPIRES_DAYS", default=0)  # 0 = delivered keys never expire
CAPACITY_WARNING_USD = Decimal(env("CAPACITY_WARNING_USD", default="50.00"))

# --- Staff operations: health thresholds and alerts -------------------------------------------
# /healthz fails when the last successful catalogue sync / payment poll / beat run is older than this.
HEALTH_SYNC_MAX_AGE_SECONDS = env.int("HEALTH_SYNC_MAX_AGE_SECONDS", default=3600)
HEALTH_POLL_MAX_AGE_SECONDS = env.int(
    "HEALTH_POLL_MAX_AGE_SECONDS", default=max(300, 10 * PAYMENT_POLL_INTERVAL_SECONDS)
)
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=600)
# Beat stamps a heartbeat every few seconds (storefront/beat.py); older than this, beat is down.
HEALTH_BEAT_HEARTBEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_HEARTBEAT_MAX_AGE_SECONDS", default=60)
HEALTH_BROKER_TIMEOUT_SECONDS = env.float("HEALTH_BROKER_TIMEOUT_SECONDS", default=2.0)
# At most one staff alert email per kind per window; the next one says how many were held back.
ALERT_THROTTLE_SECONDS = env.int("ALERT_THROTTLE_SECONDS", default=900)
# Alert when this many gateway callbacks failed their signature check within the hour.
CALLBACK_SIGNATURE_ALERT_THRESHOLD = env.int("CALLBACK_SIGNATURE_ALERT_THRESHOLD", default=20)

# --- Django ------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_celery_beat",
    "storefront",
    "accounts",
    "openrouter",
    "payments",
    "orders",
]
if SANDBOX:
    # Development-only imitations of both services: installed, routed and migrated only in
    # sandbox mode; no product module imports them (docs/ARCHITECTURE.md, "Sandboxes").
    INSTALLED_APPS += ["openrouter.sandbox", "payments.sandbox"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # django-csp with the fixed policy built once (storefront/csp_header.py).
    "storefront.csp_header.FixedPolicyCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the verified signed-in user remembered for a few seconds (accounts/remembered_users.py).
    "accounts.remembered_users.RememberedUserAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "storefront.urls"
WSGI_APPLICATION = "storefront.wsgi.application"
ASGI_APPLICATION = "storefront.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "storefront.context_processors.store",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a health check that asks the socket before it sends `SELECT 1`.
    DATABASES["default"]["ENGINE"] = "storefront.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file in development: wait for locks, don't fail.
    # Connections persist like PostgreSQL's: opening one (and its WAL pragma) per request was a
    # quarter of the cost of a polled status fragment (docs/WEB_SPEED.md).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL:
    _cache_url = REDIS_URL
    if _xdist_worker:
        # Parallel test workers each get their own Redis database so cache.clear() is private.
        _cache_url = REDIS_URL.rsplit("/", 1)[0] + f"/{1 + int(_xdist_worker.removeprefix('gw') or 0) % 14}"
    # Django's backend, reusing its redis-py client objects (storefront/redis_cache.py).
    CACHES = {"default": {"BACKEND": "storefront.redis_cache.RedisCache", "LOCATION": _cache_url}}
elif env("CACHE_URL", default=""):
    CACHES = {"default": env.cache("CACHE_URL")}
else:
    # Web, worker and beat are separate processes: without Redis they share a file cache, so
    # rates, heartbeats and rate limits refreshed by one are seen by the others.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(BASE_DIR / ".cache"),
        }
    }

AUTH_USER_MODEL = "accounts.User"
# Sessions are read from the cache (a signed-in page costs no session query) and kept in the
# database too, so a cache restart signs nobody out.
# Django's cached_db, refusing cookie values Django never makes (accounts/session_store.py).
SESSION_ENGINE = "accounts.session_store"
# Seconds a verified signed-in user is remembered per web process (0: load it on every request).
# A password change or deactivation made elsewhere reaches this process's sessions within this time.
AUTH_USER_CACHE_SECONDS = env.int("AUTH_USER_CACHE_SECONDS", default=5)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "orders:catalogue"
LOGOUT_REDIRECT_URL = "orders:catalogue"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times to the second in the admin (and any page that formats a datetime without a format).
FORMAT_MODULE_PATH = ["storefront.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Email -------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Token Store <store@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [tuple(a.split(":", 1)) for a in env.list("ADMINS", default=["Staff:staff@localhost"])]
EMAIL_SUBJECT_PREFIX = env("EMAIL_SUBJECT_PREFIX", default="[Token Store] ")
# Where customers write for help: shown in the footer, on every problem state and in customer mail.
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@localhost")

# --- Security (production values switch on with DEBUG off) ------------------------------------
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Load balancers probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Content Security Policy (django-csp 4): same-origin everything, no inline script or style.
# htmx is told not to inject its indicator <style> (meta htmx-config in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
RATELIMIT_VIEW = "storefront.rate_limited.rate_limited"
# Behind N reverse proxies that append to X-Forwarded-For, rate limits key on the address the outermost
# one saw (otherwise every customer shares the proxy's IP). 0 = use REMOTE_ADDR (direct connections).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT > 0:
    RATELIMIT_IP_META_KEY = "accounts.throttling.client_ip"
# django-ratelimit wants a shared cache; local memory is fine for a single development process.
# With Redis, W001 only says it does not know our subclass of Django's Redis backend by name.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"] if REDIS_URL else ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Celery ------------------------------------------------------------------------------------
BROKER_DIR = BASE_DIR / ".broker"
if REDIS_URL:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
else:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # kombu keeps its exchange tables in "./control" unless told: inside .broker, not the checkout
        "control_folder": str(BROKER_DIR / "control"),
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    # Tasks time out well below the visibility timeout so a slow task is never redelivered
    # while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup opens a new database connection for every task unless this is set; with
# it, a worker process keeps its connection across tasks as a web process does across requests
# (CONN_MAX_AGE, health checks: storefront/celery.py) and Celery still recycles it every this many
# tasks. Opening a PostgreSQL connection costs more than sending the customer mail a task sends.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The database scheduler plus a heartbeat in the cache (/healthz sees beat within seconds of start).
CELERY_BEAT_SCHEDULER = "storefront.beat:HeartbeatScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Periodic tasks: defined here, installed idempotently by `manage.py install_schedules`
# (run by `make run` and by a data migration) so staff can see and tune them in the admin.
PERIODIC_TASKS = {
    "Sync OpenRouter catalogue": {"task": "openrouter.tasks.sync_catalogue", "every": timedelta(minutes=15)},
    "Refresh crypto rates": {"task": "payments.tasks.refresh_rates", "every": timedelta(seconds=45)},
    "Poll pending payments": {
        "task": "orders.tasks.payments_poll",
        "every": timedelta(seconds=PAYMENT_POLL_INTERVAL_SECONDS),
    },
    "Reconcile fulfilment": {"task": "orders.tasks.fulfilment_reconcile", "every": timedelta(minutes=1)},
    "Refresh key usage": {"task": "orders.tasks.key_usage_refresh", "every": timedelta(minutes=10)},
    "Staff watchdog": {"task": "orders.tasks.alerts_watchdog", "every": timedelta(minutes=1)},
}

# --- Logging: one line per event, never a secret ----------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# "line" (human-readable) or "json" (one JSON object per line, for log shippers).
LOG_FORMAT = env("LOG_FORMAT", default="line")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "storefront.log_format.JsonFormatter"},
    },
    "filters": {"redact_secrets": {"()": "storefront.log_format.RedactSecretsFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "line",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
    },
}
