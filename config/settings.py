"""Settings, all read from environment variables (the table is in docs/settings.md).

No DATABASE_URL means a SQLite file beside manage.py, so a fresh clone just runs.

In Django's order: paths, security, apps, middleware, URLs and WSGI, database, authentication,
internationalization, static and media files; then the third-party libraries (DRF and its schema,
Celery, the cache, logging); then our own settings, grouped by the app that reads them.
"""

import ipaddress
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

# --- Paths -----------------------------------------------------------------------------------
BASE_DIR = Path(__file__).resolve().parent.parent

# --- Security --------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    "config.apps.StaffAdminConfig",  # django.contrib.admin with our site: roles only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # the agents' status API and the reporting API
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs page's assets, served by the app itself
    "axes",
    "phonenumber_field",
    "vendors",
    "routing",
    "calls",
    "calls.postbacks",  # its own app label, postbacks: its tables and migrations
]
# Routes and commands that exist only for `make bench` (a trivial endpoint with no database, the
# ping's statement under pgbench): the bench app, installed only then.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)
if BENCH_ENDPOINTS:
    INSTALLED_APPS.append("bench")

# --- Middleware ------------------------------------------------------------------------------
MIDDLEWARE = [
    # Health checks and metrics are answered before anything else (no Host check, no session).
    "config.health.OpsEndpointsMiddleware",
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the docs' assets (and the admin's) from the installed apps, with no web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # The admin's pages get the long database timeouts (DATABASE_LONG_STATEMENT_TIMEOUT_MS).
    "config.middleware.AdminDatabaseTimeoutsMiddleware",
]

# --- URLs, templates, WSGI -------------------------------------------------------------------
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
except ValueError as exc:  # an unknown scheme, or a URL that does not parse
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {exc}") from None
if DATABASES["default"]["ENGINE"] not in (
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
):
    raise ImproperlyConfigured(
        "DATABASE_URL must be a postgres:// or sqlite:// URL: the allocation relies on "
        "PostgreSQL's row locks (SQLite for one machine only)."
    )
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 1500, minimum=0)
DATABASE_LOCK_TIMEOUT_MS = env_int("DATABASE_LOCK_TIMEOUT_MS", 1000, minimum=0)
DATABASE_LONG_STATEMENT_TIMEOUT_MS = env_int("DATABASE_LONG_STATEMENT_TIMEOUT_MS", 0, minimum=0)
# psycopg's connection pool in each server process (Django's native pool). It needs
# CONN_MAX_AGE=0; a request waits at most DATABASE_POOL_TIMEOUT seconds for a connection (kept
# under 2 s, so a ping answers 500 promptly while the database is down).
DATABASE_POOL = env_bool("DATABASE_POOL", False)
# Executions of one query on a connection before psycopg prepares it server-side, so PostgreSQL
# plans the ping's statement once per connection instead of on every ping. 0 turns it off (needed
# behind PgBouncer in transaction mode).
DATABASE_PREPARE_THRESHOLD = env_int("DATABASE_PREPARE_THRESHOLD", 0, minimum=0)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent pings queue instead of failing
    # with "database is locked" when a reader upgrades to a writer.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    # Django's, with a cheaper check of pooled connections (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})
    # A stopped database must fail a request quickly, never hang it.
    # (0 would mean "wait for ever" to libpq.)
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 2, minimum=1
    )
    # A path to the database that dies silently (a host gone, a firewall dropping packets) fails
    # a request in seconds instead of the kernel's two hours: sent data unacknowledged for 10 s,
    # or an idle wait for a reply with three unanswered probes after 10 s, closes the connection.
    DATABASES["default"]["OPTIONS"] |= {
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    # A stalled database (a lock held by a migration, a server that stopped answering) must
    # fail a web request in about 2 s, never hold it for the stall: the server cancels a
    # statement after DATABASE_STATEMENT_TIMEOUT_MS and a lock wait after
    # DATABASE_LOCK_TIMEOUT_MS (answered 503 with Retry-After), and a server that sends nothing
    # at all is given up by the client 500 ms after the statement timeout
    # (config/postgresql/base.py). Exports, the admin and migrations lift both
    # (config/database.py), to DATABASE_LONG_STATEMENT_TIMEOUT_MS (0: no limit).
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
        f" -c lock_timeout={DATABASE_LOCK_TIMEOUT_MS}"
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60, minimum=0)
    # A persistent connection is checked before a request uses it, so no request fails on a
    # connection the database dropped: a poll of its socket, no round trip (config/postgresql).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("CONN_HEALTH_CHECKS", True)
    if DATABASE_POOL:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # The backend checks each pooled connection itself, with no round trip (see
        # config/postgresql/base.py); Django's check would send a query every time.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 8, minimum=1),
            "timeout": env_int("DATABASE_POOL_TIMEOUT", 1, minimum=1),
        }
        _pool = DATABASES["default"]["OPTIONS"]["pool"]
        if _pool["min_size"] > _pool["max_size"]:
            raise ImproperlyConfigured(
                f"DATABASE_POOL_MIN_SIZE ({_pool['min_size']}) must not be above "
                f"DATABASE_POOL_MAX_SIZE ({_pool['max_size']})."
            )
    if DATABASE_PREPARE_THRESHOLD:
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = DATABASE_PREPARE_THRESHOLD

# A PostgreSQL streaming replica for analysts' heavy reads (exports, the reporting API, reports):
# `config.database.analytics_db()` names it while it answers and replays within
# DATABASE_REPLICA_MAX_LAG_SECONDS of the primary, else the primary. A replica found down or
# behind is not tried again for DATABASE_REPLICA_RETRY_SECONDS. Pings and writes use the primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
DATABASE_REPLICA_MAX_LAG_SECONDS = env_int("DATABASE_REPLICA_MAX_LAG_SECONDS", 30, minimum=0)
DATABASE_REPLICA_RETRY_SECONDS = env_int("DATABASE_REPLICA_RETRY_SECONDS", 10, minimum=1)
if DATABASE_REPLICA_URL:
    try:
        _replica = dj_database_url.parse(DATABASE_REPLICA_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL cannot be read: {exc}") from None
    if (
        _replica["ENGINE"] != "django.db.backends.postgresql"
        or DATABASES["default"]["ENGINE"] != "config.postgresql"
    ):
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL is a PostgreSQL streaming replica of a PostgreSQL DATABASE_URL."
        )
    # The primary's connection settings (timeouts, keepalives), with a persistent connection
    # instead of the pool: analysts' reads are few and long.
    DATABASES["replica"] = _replica | {
        "ENGINE": "config.postgresql",
        "OPTIONS": {
            key: value for key, value in DATABASES["default"]["OPTIONS"].items() if key != "pool"
        },
        "CONN_MAX_AGE": env_int("CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["config.database.PrimaryReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication, passwords, sessions -----------------------------------------------------
# django-axes counts failed logins and locks a username out from the address that failed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The agent page's own login.
LOGIN_URL = "agent-login"
LOGIN_REDIRECT_URL = "agent-home"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Internationalization --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# One way of writing times in the admin, with the zone: config/formats/en/formats.py.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files ------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
# With the files found in the apps, an empty STATIC_ROOT (no collectstatic run) is expected.
warnings.filterwarnings("ignore", message=f"No directory at: {STATIC_ROOT}")
# Where background exports (XLSX) are written; served only through the admin, never directly.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

# --- Django REST framework and the vendor docs -----------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.errors.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Proxies in front of the server whose X-Forwarded-For is trusted for the client address;
    # 0 uses the socket's address, so a client cannot pick its own address.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0, minimum=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Call routing: vendor API",
    "DESCRIPTION": (BASE_DIR / "docs" / "vendor-guide.md").read_text(encoding="utf-8"),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["calls.ping.schema.vendor_endpoints_only"],
    # Without the stock enum hook: the envelopes' one-value enums stay inline, where they read best.
    "POSTPROCESSING_HOOKS": ["calls.ping.schema.tighten_envelopes"],
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

PHONENUMBER_DEFAULT_REGION = "US"

# --- django-axes: login protection ------------------------------------------------------------
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- Celery ----------------------------------------------------------------------------------
# No broker to install for a fresh clone: kombu's filesystem transport in a git-ignored folder.
# Production sets a redis:// URL (docs/operations.md); the same code runs on either.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
# redis:// and filesystem:// URLs get kombu's transports as config.celery_transport mends them
# (a worker that survives a Redis restart; messages never read half written), by their scheme.
# Where the filesystem broker keeps its messages, and beat its schedule file.
CELERY_BROKER_FOLDER = Path(env_str("CELERY_BROKER_FOLDER") or BASE_DIR / "celery-broker")
# A broker that is down must never hold up a ping: one immediate reconnect try, no publish
# retries, a short connect timeout; the ping goes on and the sweep catches up. (Workers reconnect
# on their own terms, by broker_connection_retry.)
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    # Redis's: one that accepts connections but never answers would hold a ping's thread for
    # ever, so no answer within 2 s is a failure (above the workers' 1 s BRPOP wait).
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        # Polled, so a short interval keeps expiry prompt on the local demo.
        "polling_interval": 0.1,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT, or it never fires."
    )
# Celery workers log through the same handler (and format) instead of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat's record of when each periodic task last ran.
CELERY_BEAT_SCHEDULE_FILENAME = str(CELERY_BROKER_FOLDER / "beat-schedule")
# How often beat sweeps for reservations past their TTL (exactly one beat must run).
RESERVATION_SWEEP_SECONDS = env_int("RESERVATION_SWEEP_SECONDS", 1, minimum=1)
# How often beat collects new postback events into the outbox and hands due deliveries to workers.
POSTBACK_SWEEP_SECONDS = env_int("POSTBACK_SWEEP_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "expire-due-reservations": {
        "task": "calls.expire_due_reservations",
        "schedule": float(RESERVATION_SWEEP_SECONDS),
        # A sweep that waited in the queue (no worker) is worthless once a newer one is due.
        "options": {"expires": float(RESERVATION_SWEEP_SECONDS * 5)},
    },
    # Agents whose wrap-up or unused hold ran out go to the callers waiting for them.
    "offer-waiting-callers": {
        "task": "calls.offer_waiting_callers",
        "schedule": float(RESERVATION_SWEEP_SECONDS),
        "options": {"expires": float(RESERVATION_SWEEP_SECONDS * 5)},
    },
    # Postbacks: new events into the outbox, due deliveries (first tries and retries) to workers.
    "send-due-postbacks": {
        "task": "postbacks.send_due",
        "schedule": float(POSTBACK_SWEEP_SECONDS),
        "options": {"expires": float(POSTBACK_SWEEP_SECONDS * 5)},
    },
    # Agents left on a call no callback will ever end (TELEPHONY_MAX_CALL_SECONDS) are freed.
    "end-stale-agent-calls": {
        "task": "calls.end_stale_agent_calls",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    # Retention (CALL_RECORD_RETENTION_DAYS; does nothing while it is 0): once a day.
    "purge-call-records": {
        "task": "calls.purge_call_records",
        "schedule": 24 * 60 * 60.0,
        "options": {"expires": 60 * 60.0},
    },
}

# --- Cache -----------------------------------------------------------------------------------
# The shared cache holds rate-limit counters and the vendor-key cache for every server process.
# Production needs Redis (CACHE_URL=redis://…); without it each process keeps its own memory
# cache, which is right for the single-process local demo only.
CACHE_URL = env_str("CACHE_URL")
# A dead cache server must not slow pings: short socket timeouts, and after a failure the cache
# is skipped (rate limits fail open) for CACHE_RETRY_SECONDS before it is tried again.
CACHE_SOCKET_TIMEOUT_MS = env_int("CACHE_SOCKET_TIMEOUT_MS", 200, minimum=1)
CACHE_RETRY_SECONDS = env_int("CACHE_RETRY_SECONDS", 5, minimum=1)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "callrouting",
            "OPTIONS": {
                "socket_connect_timeout": CACHE_SOCKET_TIMEOUT_MS / 1000,
                "socket_timeout": CACHE_SOCKET_TIMEOUT_MS / 1000,
                "retry_on_timeout": False,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "callrouting",
        }
    }

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = (env_str("LOG_LEVEL") or "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
# json for log collectors in production; plain, easier on the eye, under DEBUG.
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}.")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # The sweep runs every second: log its tasks only when they fail.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- Ours: the ping (vendors, routing, calls) ------------------------------------------------
# A day at most: a hold is for a live caller on the line (and the column is a 32-bit integer).
RESERVATION_TTL_SECONDS = env_int("RESERVATION_TTL_SECONDS", 60, minimum=1, maximum=86_400)
# The contract's body limit; Django's own limit stays above it so our 413 answers first.
PING_MAX_BODY_BYTES = 16 * 1024
# Paths whose every answer, errors included, is the contract's JSON envelope.
ENVELOPE_PATH_PREFIXES = ("/functions/", "/api/v1/vendor/")
# Pings a minute per vendor key, unless the vendor has its own `rate_limit_per_minute`.
PING_RATE_LIMIT_PER_MINUTE = env_int("PING_RATE_LIMIT_PER_MINUTE", 600, minimum=1)
# Keys that do not exist (unknown or malformed) a minute from one client address before its
# next such key is answered 429 instead of 401 (key guessing). Revoked keys do not count, and a
# valid key from that address is still admitted.
PING_KEY_FAILURES_PER_MINUTE = env_int("PING_KEY_FAILURES_PER_MINUTE", 20, minimum=1)
# Vendor keys are cached (shared cache) so a ping needs no key query; revocation and vendor
# changes clear the entry at once, and this bounds the life of an entry in any case.
VENDOR_KEY_CACHE_SECONDS = env_int("VENDOR_KEY_CACHE_SECONDS", 30, minimum=0)
# Ping policies (docs/vendor-guide.md, "Why no agent"). Day boundaries of daily caps are
# midnights in the operator's time zone (an IANA name); hours of operation are judged in the
# caller's own zone instead.
OPERATOR_TIME_ZONE = env_str("OPERATOR_TIME_ZONE", "America/New_York")
ZoneInfo(OPERATOR_TIME_ZONE)  # an unknown zone fails at start, not on the first capped ping
# retryAfterSeconds when nothing better is known: no hold or wrap-up will end in the state (no
# agent), or none of a capped vendor's holds will (a call in progress ends when it ends).
PING_RETRY_AFTER_DEFAULT_SECONDS = env_int("PING_RETRY_AFTER_DEFAULT_SECONDS", 60, minimum=1)
# Where a check of consent evidence with its provider would plug in (calls.ping.consent): a
# dotted path to a ConsentVerifier. The default only checks the evidence is well formed; no
# outbound call is made.
PING_CONSENT_VERIFIER = env_str(
    "PING_CONSENT_VERIFIER", "calls.ping.consent.WellFormedConsentVerifier"
)

# --- Ours: sandbox keys (calls.ping.sandbox) -------------------------------------------------
# What a sandbox key's "available" answers say; nothing is held. The number is fictional (NANP
# 555-0100 to 555-0199 are set aside for fiction) and must never be in the transfer pool.
SANDBOX_TRANSFER_NUMBER = env_str("SANDBOX_TRANSFER_NUMBER", "+18775550100")
if not re.fullmatch(r"\+[1-9]\d{1,14}", SANDBOX_TRANSFER_NUMBER):
    raise ImproperlyConfigured(
        f"SANDBOX_TRANSFER_NUMBER must be an E.164 number like +18775550100, "
        f"not {SANDBOX_TRANSFER_NUMBER!r}."
    )
# The live TTL unless told otherwise, so a sandbox integration meets production's timing.
SANDBOX_TTL_SECONDS = env_int(
    "SANDBOX_TTL_SECONDS", RESERVATION_TTL_SECONDS, minimum=1, maximum=86_400
)
SANDBOX_AGENT_COUNT = env_int("SANDBOX_AGENT_COUNT", 3, minimum=1)

# --- Ours: reservation lifecycle (calls) -----------------------------------------------------
# One Celery task per reservation, due at its expiry, on top of the beat sweep: records expired
# within milliseconds of the TTL instead of within a sweep interval, for most of a ping's Python
# time, the broker on every ping's path, and a message unacknowledged in a worker until its ETA.
# Off by default (the trade-off is in docs/operations.md); availability is decided by time anyway.
RESERVATION_EXPIRY_TASKS = env_bool("RESERVATION_EXPIRY_TASKS", False)
# A ping publishes its expiry task with these socket timeouts of its own (config/broker.py), so a
# hung broker costs a ping at most about twice this; after a failure, a process's pings skip
# publishing for BROKER_PUBLISH_RETRY_SECONDS (the sweep expires what they did not queue).
BROKER_PUBLISH_TIMEOUT_MS = env_int("BROKER_PUBLISH_TIMEOUT_MS", 250, minimum=1)
BROKER_PUBLISH_RETRY_SECONDS = env_int("BROKER_PUBLISH_RETRY_SECONDS", 5, minimum=1)

# --- Ours: telephony, calls arriving on the transfer numbers (calls) -------------------------
# The carrier's auth token; every webhook's X-Twilio-Signature is checked with it. Empty turns
# validation off (local curl only): never leave it empty where the carrier can reach the server.
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
# The public origin the carrier calls (e.g. https://calls.example.com), when a proxy in front
# rewrites the host or scheme: signatures are computed over the URL the carrier requested.
TELEPHONY_PUBLIC_BASE_URL = (env_str("TELEPHONY_PUBLIC_BASE_URL", "") or "").rstrip("/")
TELEPHONY_MAX_AGENT_TRIES = env_int("TELEPHONY_MAX_AGENT_TRIES", 3, minimum=1)
TELEPHONY_OVERFLOW_NUMBER = env_str("TELEPHONY_OVERFLOW_NUMBER", "") or ""
TELEPHONY_DIAL_TIMEOUT_SECONDS = env_int("TELEPHONY_DIAL_TIMEOUT_SECONDS", 20, minimum=5)
# The longest call there can be: an agent still on a call this long after their phone rang, with
# no callback to end it, is freed by a periodic sweep (the callbacks were lost or came too early).
TELEPHONY_MAX_CALL_SECONDS = env_int("TELEPHONY_MAX_CALL_SECONDS", 4 * 3600, minimum=60)
TELEPHONY_UNAVAILABLE_MESSAGE = env_str(
    "TELEPHONY_UNAVAILABLE_MESSAGE",
    "Thank you for calling. All of our agents are busy right now. Please call again shortly.",
)
# The queue: a transferred caller nobody can take waits this long at most for the first agent
# licensed for the call's state who comes free, then goes to overflow or the message (0: no
# queue). Waiting callers hear TELEPHONY_QUEUE_MESSAGE once, then our hold music.
TELEPHONY_QUEUE_MAX_WAIT_SECONDS = env_int(
    "TELEPHONY_QUEUE_MAX_WAIT_SECONDS", 180, minimum=0, maximum=3600
)
TELEPHONY_QUEUE_MESSAGE = env_str(
    "TELEPHONY_QUEUE_MESSAGE",
    "Thank you for holding. The next available agent will be with you shortly.",
)
# The carrier's account, for the one thing we ask of its REST API: taking a waiting caller out
# of the queue to their agent the moment one is free (without it, at their next wait request).
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "") or ""
# The class that makes those requests (calls.telephony.carrier_api); the tests record them.
TELEPHONY_CARRIER_API = "calls.telephony.carrier_api.TwilioRestApi"

# --- Ours: postbacks to vendors (calls.postbacks) --------------------------------------------
# Only public HTTPS addresses receive postbacks; on (local testing only) also http:// and
# loopback, private and link-local addresses.
POSTBACK_ALLOW_PRIVATE_HOSTS = env_bool("POSTBACK_ALLOW_PRIVATE_HOSTS", False)
# Events are collected from call records received this long ago at most (a call's whole life).
POSTBACK_EVENT_LOOKBACK_SECONDS = env_int("POSTBACK_EVENT_LOOKBACK_SECONDS", 86_400, minimum=60)
# A slow endpoint holds a worker at most about this long per attempt, never a ping.
POSTBACK_CONNECT_TIMEOUT_SECONDS = env_int("POSTBACK_CONNECT_TIMEOUT_SECONDS", 3, minimum=1)
POSTBACK_READ_TIMEOUT_SECONDS = env_int("POSTBACK_READ_TIMEOUT_SECONDS", 10, minimum=1)
# Retries: the first after POSTBACK_RETRY_BASE_SECONDS, each next twice as long (at most
# POSTBACK_RETRY_MAX_DELAY_SECONDS), until POSTBACK_RETRY_WINDOW_SECONDS after the event.
POSTBACK_RETRY_BASE_SECONDS = env_int("POSTBACK_RETRY_BASE_SECONDS", 30, minimum=1)
POSTBACK_RETRY_MAX_DELAY_SECONDS = env_int("POSTBACK_RETRY_MAX_DELAY_SECONDS", 6 * 3600, minimum=1)
POSTBACK_RETRY_WINDOW_SECONDS = env_int("POSTBACK_RETRY_WINDOW_SECONDS", 86_400, minimum=60)

# --- Ours: analyst exports (calls) -----------------------------------------------------------
# The reporting API, /api/v1/call-records, uses rest_framework.authtoken's tokens.
EXPORT_TASK_TIME_LIMIT = env_int("EXPORT_TASK_TIME_LIMIT", 3600, minimum=60)

# --- Ours: call record retention (calls) -----------------------------------------------------
# Call records older than this many days are archived (one gzip JSON Lines file per month, the
# export's columns, in CALL_RECORD_ARCHIVE_DIR) and deleted, whole months at a time, by the
# daily beat task `calls.purge_call_records` and `manage.py purge_call_records`. 0 (the default):
# kept for ever; deleting records is a decision each operator takes.
CALL_RECORD_RETENTION_DAYS = env_int("CALL_RECORD_RETENTION_DAYS", 0, minimum=0)
CALL_RECORD_ARCHIVE_DIR = Path(
    env_str("CALL_RECORD_ARCHIVE_DIR") or MEDIA_ROOT / "call-record-archive"
)
# Rows deleted per transaction, and the pause between two, so pings never wait on the purge.
CALL_RECORD_PURGE_BATCH_ROWS = env_int("CALL_RECORD_PURGE_BATCH_ROWS", 1000, minimum=1)
CALL_RECORD_PURGE_PAUSE_MS = env_int("CALL_RECORD_PURGE_PAUSE_MS", 20, minimum=0)

# --- Ours: staff admin (config) --------------------------------------------------------------
# Where the admin lives; a path of its own makes it harder to find than the default.
ADMIN_URL = env_str("ADMIN_URL", "admin/")
if not ADMIN_URL or ADMIN_URL.startswith("/") or not ADMIN_URL.endswith("/"):
    raise ImproperlyConfigured(f"ADMIN_URL must look like 'admin/', not {ADMIN_URL!r}.")
# How often the admin's home (the operations floor) refreshes its live counts, in seconds.
FLOOR_REFRESH_SECONDS = env_int("FLOOR_REFRESH_SECONDS", 5, minimum=1, maximum=300)

# --- Ours: health and metrics (config) -------------------------------------------------------
READYZ_BROKER_TIMEOUT_SECONDS = env_int("READYZ_BROKER_TIMEOUT_SECONDS", 1, minimum=1)
# /readyz answers within this, whatever its checks do (those still running count as failed).
READYZ_TIMEOUT_SECONDS = env_int("READYZ_TIMEOUT_SECONDS", 2, minimum=1)
# /readyz fails when no worker has run beat's sweep for this long (0: no worker is expected).
READYZ_WORKER_SECONDS = env_int("READYZ_WORKER_SECONDS", 30, minimum=0)
if 0 < READYZ_WORKER_SECONDS <= RESERVATION_SWEEP_SECONDS:
    raise ImproperlyConfigured(
        "READYZ_WORKER_SECONDS must be above RESERVATION_SWEEP_SECONDS (or 0), or /readyz fails "
        "between two sweeps."
    )
# /metrics answers these addresses (IPs or CIDR networks), and anyone with the bearer token.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item) for item in METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {exc}") from None
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")
