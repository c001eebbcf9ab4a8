"""The one settings file. Every value comes from the environment (or a ``.env`` file) with a
default that lets ``make run`` and ``make test`` work straight after cloning.
``.env.example`` lists every variable."""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from logs.setup import build_logging, is_one_off_command, parse_format, process_role
from project.env import env_bool, env_duration, env_int, env_list, env_str
from project.loglevels import parse_level, parse_logger_levels

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# Everything the product writes by default (SQLite file, exports, broker queue) lives here.
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated on first start and kept in DATA_DIR."""
    if configured := env_str("SECRET_KEY"):
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Proxies whose X-Forwarded-For we believe. Loopback by default so a local reverse proxy works
# and a remote client cannot spoof its address.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", ["127.0.0.1/32", "::1/128"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djangoql",
    "pgtrigger",
    "directory",
    "auditlog",
    "searches",
    "notifications",
    "exports",
    "sources",
    "logs",
    "django_structlog",
    "streams",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "project.middleware.GZipMiddleware",
    "project.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "directory.middleware.BrandMiddleware",
    "auditlog.middleware.AuditMiddleware",
    "project.replicas.ReplicaMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # templates/ in a checkout; an installed wheel carries the same folder as project/templates.
        "DIRS": [
            path
            for path in (BASE_DIR / "templates", Path(__file__).resolve().parent / "templates")
            if path.is_dir()
        ][:1],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "auditlog.context_processors.navigation",
                "notifications.context_processors.unread",
                "searches.context_processors.pinned",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
try:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        # WAL lets the web process read while the worker writes; IMMEDIATE avoids the
        # "database is locked" upgrade failure when two writers meet.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so a Celery worker started by a test sees the same test database.
    _database["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME", str(DATA_DIR / "test-db.sqlite3"))}
elif _database["ENGINE"] == "django.db.backends.postgresql":
    _database.setdefault("OPTIONS", {})
    # JIT compilation costs 10-50 ms on each of the short aggregate queries this application
    # runs (charts, map, counts) and never pays back; DATABASE_URL's ?options= can override.
    _database["OPTIONS"].setdefault("options", "-c jit=off")
    _database["CONN_HEALTH_CHECKS"] = True
    # Under ASGI (make run's web server) each request runs in a thread of its own, so a
    # connection kept for reuse would stay with a thread that is gone and a burst of requests
    # would open a connection each: there, a pool of at most this many per process (project/
    # asgi.py sets 10 unless given; 0 turns it off).
    _pool_size = env_int("DB_POOL_SIZE", 0, minimum=0)
    if _pool_size:
        _database["CONN_MAX_AGE"] = 0
        _database["CONN_HEALTH_CHECKS"] = False
        _database["OPTIONS"]["pool"] = {"min_size": 1, "max_size": _pool_size, "timeout": 20}
DATABASES = {"default": _database}
# Streaming replicas of the primary (PostgreSQL only): lists, searches, charts, the map and
# exports read from them; see project/replicas.py.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
if DATABASE_REPLICA_URLS and _database["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_REPLICA_URLS: replicas need a PostgreSQL DATABASE_URL.")
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    try:
        _replica = dj_database_url.parse(_url, conn_max_age=_database["CONN_MAX_AGE"])
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS: {exc}") from None
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URLS: {_url.split('@')[-1]!r} is not a postgres:// URL."
        )
    _replica.setdefault("OPTIONS", {})
    _replica["OPTIONS"].setdefault("options", "-c jit=off")
    _replica["OPTIONS"].setdefault("connect_timeout", 2)
    _replica["CONN_HEALTH_CHECKS"] = True
    # Tests read the primary's test database through the replica's alias.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_index}"] = _replica
DATABASE_ROUTERS = ["project.replicas.ReplicaRouter"]
# Longest replay lag a replica may have and still be read, how often each replica is asked,
# and how long a user who wrote reads the primary.
DATABASE_REPLICA_MAX_LAG = env_duration("DATABASE_REPLICA_MAX_LAG", "seconds=5").total_seconds()
DATABASE_REPLICA_CHECK_SECONDS = 1.0
DATABASE_REPLICA_PIN_SECONDS = env_int("DATABASE_REPLICA_PIN_SECONDS", 15, minimum=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The events' newest-first index carries the action as a covering column on PostgreSQL;
# SQLite keeps the index without it, which is all this warning says.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Users and authentication ---------------------------------------------------------------
AUTH_USER_MODEL = "directory.User"
AUTHENTICATION_BACKENDS = ["directory.backends.DirectoryBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "auditlog:overview"
LOGOUT_REDIRECT_URL = "login"
# Login rate limiting: after this many failed logins within the window, further attempts for
# that username from that address (or from one address overall, at four times the number)
# are refused without checking the password.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = env_duration("LOGIN_FAILURE_WINDOW", "minutes=15")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Web security ---------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files and storage ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end libraries come from npm at set-up time (package-lock.json); only their built
# files are published.
STATICFILES_DIRS = [
    (f"vendor/{name}", NODE_MODULES / path)
    for name, path in {
        "leaflet": "leaflet/dist",
        "leaflet.markercluster": "leaflet.markercluster/dist",
        "chart.js": "chart.js/dist",
        "world-atlas": "world-atlas",
        "topojson-client": "topojson-client/dist",
    }.items()
    if (NODE_MODULES / path).is_dir()
]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
STORAGES = {
    # Export files are private: they are only ever served through an authenticated view.
    "default": {
        "BACKEND": env_str("STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        ),
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Events ---------------------------------------------------------------------------------
EVENT_RETENTION = env_duration("EVENT_RETENTION", "days=365")
_geolite2 = importlib.util.find_spec("_maxminddb_geolite2")
# maxminddb-geolite2 ships a world-wide city database: geo works offline with no download.
_default_city_db = (
    str(Path(_geolite2.origin).parent / "GeoLite2-City.mmdb")
    if _geolite2 and _geolite2.origin
    else ""
)
GEOIP_CITY_DB = env_str("GEOIP_CITY_DB", _default_city_db)
GEOIP_ASN_DB = env_str("GEOIP_ASN_DB", "")
# Extra models ("app_label.ModelName") that model-change capture leaves alone.
AUDIT_IGNORE_MODELS = env_list("AUDIT_IGNORE_MODELS", [])
# PostgreSQL, when true (the default): database triggers record every change of an audited
# model, also those made past the application (auditlog/triggers.py); false falls back to the
# signal capture that SQLite always uses.
AUDIT_DB_CAPTURE = env_bool("AUDIT_DB_CAPTURE", True)
# django-pgtrigger: the capture triggers are generated from the models and the redaction
# policy at start-up and (re)installed by every migrate, not kept in migration files.
PGTRIGGER_MIGRATIONS = False
PGTRIGGER_INSTALL_ON_MIGRATE = True
DEMO_EVENTS = env_int("DEMO_EVENTS", 20000, minimum=0)
# Tamper evidence (auditlog/chain/): checkpoints of the event chain are signed with this key.
# Empty: a key derived from SECRET_KEY. A separate key kept off the database server is
# stronger (whoever holds the key can sign a rewritten history).
AUDIT_CHAIN_KEY = env_str("AUDIT_CHAIN_KEY", "")
if AUDIT_CHAIN_KEY and len(AUDIT_CHAIN_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_CHAIN_KEY: use at least 32 characters (or leave it empty).")
# Importing from authentik (sources/): the key that encrypts the sources' API tokens (empty:
# derived from SECRET_KEY), how far before its position each pull starts again (events
# authentik commits late), and the HTTP timeout (seconds).
SOURCES_SECRET_KEY = env_str("SOURCES_SECRET_KEY", "")
SOURCES_SYNC_OVERLAP = env_duration("SOURCES_SYNC_OVERLAP", "minutes=10")
SOURCES_HTTP_TIMEOUT = env_int("SOURCES_HTTP_TIMEOUT", 30, minimum=1)
# Streams to SIEMs (streams/): the key that encrypts destinations' secrets (empty: derived
# from SECRET_KEY); how long a worker holds a destination (a dead worker's batch is sent again
# after it); how long one run may send before it queues the next; the backoff of a failing
# destination (doubling from the base up to the maximum); how long a destination may fail
# before one system_task_exception event reports it; the network timeout (seconds); the
# HOSTNAME of syslog messages (empty: this machine's name).
STREAMS_SECRET_KEY = env_str("STREAMS_SECRET_KEY", "")
STREAMS_LEASE = env_duration("STREAMS_LEASE", "seconds=120")
STREAMS_RUN_BUDGET = env_int("STREAMS_RUN_BUDGET", 30, minimum=1)
STREAMS_RETRY_BASE = env_duration("STREAMS_RETRY_BASE", "seconds=5")
STREAMS_RETRY_MAX = env_duration("STREAMS_RETRY_MAX", "minutes=5")
STREAMS_FAILURE_THRESHOLD = env_duration("STREAMS_FAILURE_THRESHOLD", "minutes=15")
STREAMS_TIMEOUT = env_int("STREAMS_TIMEOUT", 30, minimum=1)
STREAMS_SYSLOG_HOSTNAME = env_str("STREAMS_SYSLOG_HOSTNAME", "")
# Directories under which file destinations may write (an administrator of the pages must not
# be able to append to any file the server can write).
STREAMS_FILE_ROOTS = env_list("STREAMS_FILE_ROOTS", [str(DATA_DIR / "streams")])
# A signed checkpoint after this many newly sealed events, or this much time, whichever first.
AUDIT_CHAIN_CHECKPOINT_EVENTS = env_int("AUDIT_CHAIN_CHECKPOINT_EVENTS", 10000, minimum=1)
AUDIT_CHAIN_CHECKPOINT_INTERVAL = env_duration("AUDIT_CHAIN_CHECKPOINT_INTERVAL", "hours=1")
# How far an event's `created` may lie before the database's clock when it was inserted: covers
# transactions in flight and clock skew between application and database. An event older than
# that (and not marked context["imported"]) is reported as backdated by the sealer and verify.
AUDIT_CHAIN_BACKDATE_BOUND = env_duration("AUDIT_CHAIN_BACKDATE_BOUND", "minutes=5")

# Reads of the audit trail (auditlog/reads.py): recorded as events; the same read by the same
# reader within AUDIT_READS_WINDOW is one event, then one summary with the count of repeats.
AUDIT_READS = env_bool("AUDIT_READS", True)
# PostgreSQL: the events table partitioned by month (auditlog/partitions.py); off keeps the
# plain table for new installations (an existing partitioned table stays partitioned).
AUDITLOG_PARTITION_EVENTS = env_bool("AUDITLOG_PARTITION_EVENTS", True)
AUDIT_READS_WINDOW = env_duration("AUDIT_READS_WINDOW", "minutes=1")
if AUDIT_READS_WINDOW.total_seconds() < 1:
    raise ImproperlyConfigured("AUDIT_READS_WINDOW: use at least one second (e.g. minutes=1).")

# --- Cache ----------------------------------------------------------------------------------
# Counts repeated reads until their summary is written: shared by every web process and the
# worker when it is Redis (redis://host:6379/N); locmem:// is per process (development).
CACHE_URL = env_str("CACHE_URL", "locmem://")
CACHES: dict[str, dict[str, object]]
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": CACHE_URL.removeprefix("locmem://") or "auditlog",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
else:
    raise ImproperlyConfigured("CACHE_URL: use redis://host:6379/N or locmem://.")

# --- REST API -------------------------------------------------------------------------------
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 10000, minimum=1)
# Largest JSON body the API reads (ingestion batches included); larger ones are a 413.
# The event stream (/api/v3/events/events/stream/) sends a keep-alive comment this often, so
# that proxies and load balancers keep an idle stream open.
LIVE_HEARTBEAT = env_duration("LIVE_HEARTBEAT", "seconds=15")
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
# Django's own limit sits above it, so the API answers with its JSON 413 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES + 1024 * 1024
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "auditlog.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["auditlog.api.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["project.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["auditlog.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "auditlog.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "EXCEPTION_HANDLER": "auditlog.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 100,
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Path parameters keep authentik's name, {pk}, instead of the primary key's column name.
    "SCHEMA_COERCE_PATH_PK": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Audit log API",
    "DESCRIPTION": "authentik-compatible events, directory and export API.",
    "VERSION": "3.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v3/",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "auditlog.api.schema.document_errors",
        "auditlog.api.schema.describe_text_as_accepted",
        "auditlog.api.schema.bound_event_batch",
    ],
    "ENUM_NAME_OVERRIDES": {
        "EventActionEnum": "auditlog.models.EventAction",
        "NotificationSeverityEnum": "notifications.models.NotificationSeverity",
    },
}

# --- Email and notifications ---------------------------------------------------------------
# Email transports of notification rules send through Django's mail backend.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set at most one of them to true.")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "auditlog@localhost")
# Seconds a webhook may take to answer, and how often a failed send is retried (with
# exponential backoff) before the failure is final.
NOTIFICATION_WEBHOOK_TIMEOUT = env_int("NOTIFICATION_WEBHOOK_TIMEOUT", 10, minimum=1)
NOTIFICATION_MAX_RETRIES = env_int("NOTIFICATION_MAX_RETRIES", 5, minimum=0)

# --- Data exports ---------------------------------------------------------------------------
# A running build shows a sign of life every few seconds; one silent for this long is taken
# for dead (its worker stopped) and is queued again, or failed after its last attempt.
EXPORT_STALL_TIMEOUT = env_duration("EXPORT_STALL_TIMEOUT", "minutes=5")

# --- Celery ---------------------------------------------------------------------------------
# The default broker is a directory on disk, so the quick start needs no external service;
# CELERY_BROKER_URL=redis://... switches to Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The file-system transport has no server, but kombu warns on every connection whose URL
    # names no host ("No hostname was supplied"); the name means nothing to this transport.
    if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
        CELERY_BROKER_URL = "filesystem://localhost/"
        if "CELERY_BROKER_URL" in os.environ:  # Celery reads the variable itself, first
            os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
    for _sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # The worker looks for new messages this often (kombu's default is every second): a
        # seal queued after a commit starts within a tenth of a second, for the live stream.
        "polling_interval": 0.1,
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "delete-expired-events": {
        "task": "auditlog.tasks.delete_expired_events",
        "schedule": crontab(minute="2-59/5"),
    },
    "reap-stalled-exports": {
        "task": "exports.tasks.reap_stalled_exports",
        "schedule": crontab(),
    },
    # notifications.tasks (the task keeps the name it had in auditlog).
    "clean-up-notifications": {
        "task": "auditlog.tasks.clean_up_notifications",
        "schedule": crontab(minute=17, hour="*/8"),
    },
    # Seals what the after-commit trigger missed (bulk writes, other processes) and
    # writes checkpoints that are due.
    "seal-events": {"task": "auditlog.tasks.seal_events", "schedule": crontab()},
    # PostgreSQL: the events' month partitions, made two months ahead (auditlog/partitions.py).
    "make-event-partitions": {
        "task": "auditlog.tasks.make_event_partitions",
        "schedule": crontab(minute=23, hour=1),
    },
    # Follow every enabled authentik source (sources/): new events within a minute.
    "sync-sources": {"task": "sources.tasks.sync_sources", "schedule": crontab()},
    # Streams to SIEMs: catch up what the wake-up after each sealed batch missed, and retries.
    "deliver-streams": {
        "task": "streams.tasks.deliver_streams",
        "schedule": timedelta(seconds=15),
    },
    # A full walk of the chain; a broken link notifies the administrators.
    # Summaries of repeated reads whose window is over (auditlog/reads.py).
    "flush-reads": {"task": "auditlog.tasks.flush_reads", "schedule": crontab()},
    "verify-event-chain": {
        "task": "auditlog.tasks.verify_event_chain",
        "schedule": crontab(minute=41, hour=3),
    },
}

# --- Logging --------------------------------------------------------------------------------
# One structured schema for web, worker and scheduler (logs/setup.py): readable lines on a
# terminal, JSON lines elsewhere. LOG_LEVEL: trace (5, below debug), debug, info, warning or
# error; LOG_LEVELS sets single loggers (auditlog.capture=trace,notifications=debug).
LOG_LEVEL = env_str("LOG_LEVEL", "info").strip().lower() or "info"
LOG_LEVEL_NUMBER = parse_level("LOG_LEVEL", LOG_LEVEL)
LOG_LEVELS = parse_logger_levels("LOG_LEVELS", env_str("LOG_LEVELS", ""))
LOG_FORMAT = parse_format(env_str("LOG_FORMAT", ""))
LOG_PROCESS = process_role(sys.argv)
# Log files, one per process role, JSON lines, rotated by size: `make run` turns them on; the
# System > Logs page and `manage.py logs` read them.
LOG_FILES = env_bool("LOG_FILES", False)
LOG_DIR = Path(env_str("LOG_DIR", str(DATA_DIR / "logs"))).resolve()
LOG_FILE_MAX_BYTES = env_int("LOG_FILE_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
LOG_FILE_BACKUPS = env_int("LOG_FILE_BACKUPS", 5, minimum=1)
# A one-off management command (not a server) keeps its terminal for its own output: its
# console shows warnings and errors unless LOG_LEVEL asks for more.
_COMMAND = is_one_off_command(sys.argv)
LOGGING = build_logging(
    level=LOG_LEVEL_NUMBER,
    console_level=logging.WARNING if _COMMAND and "LOG_LEVEL" not in os.environ else None,
    logger_levels=LOG_LEVELS,
    log_format=LOG_FORMAT,
    role=LOG_PROCESS,
    file_dir=LOG_DIR if LOG_FILES else None,
    file_max_bytes=LOG_FILE_MAX_BYTES,
    file_backups=LOG_FILE_BACKUPS,
)
# django-structlog: the request and task lines, the request id and the task id on every line
# (logs/apps.py binds the request id the events store).
DJANGO_STRUCTLOG_CELERY_ENABLED = True
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False  # the events keep client_ip; logs need not
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
