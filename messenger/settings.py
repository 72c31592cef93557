"""Settings for the messenger server, read from environment variables.

With no variable set this is the embedded default: SQLite, the in-memory channel layer,
a filesystem Celery broker and a local-memory cache, with secrets generated into the
data folder. Production parts switch on when their variable is set (`DATABASE_URL`,
`REDIS_URL`, `S3_BUCKET`); `PRODUCTION=true` turns on the production defaults (HTTPS,
HSTS, proof of work) and requires secrets to be given. The README lists every variable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from messenger.env import (
    env_bool,
    env_int,
    env_int_list,
    env_list,
    env_optional_secret,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("MESSENGER_DATA_DIR", str(BASE_DIR / "data"))).resolve()

PRODUCTION = env_bool("PRODUCTION", False)
# Secrets are generated into the data folder only in the embedded default; production
# must be given them explicitly so that every node shares the same ones.
_secret_dir = None if PRODUCTION else DATA_DIR

SECRET_KEY = env_secret("SECRET_KEY", data_dir=_secret_dir, generate_bytes=48)
# The at-rest master key wraps the epoch keys that encrypt stored envelopes and blob
# chunks (messenger/atrest.py). 32 random bytes, base64url.
MASTER_KEY = env_secret("MASTER_KEY", data_dir=_secret_dir, generate_bytes=32)

# DEBUG pages leak request data; the server never runs with them.
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
SERVER_VERSION = "0.1.0"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "messenger",
    "keys",
    "relay",
    "files",
]

# The header middlewares sit above WhiteNoise so static files get the same headers.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "messenger.middleware.security_headers",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "messenger.urls"
ASGI_APPLICATION = "messenger.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    # A connection pool per process: without it every request (and every database call
    # of a WebSocket consumer) opens a new PostgreSQL connection.
    DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 8)
    if DATABASE_POOL_SIZE > 0:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": 10,
        }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            "OPTIONS": {
                # The web process and the Celery worker write the same file: take the
                # write lock at BEGIN so a transaction never fails half-way on upgrade,
                # and let readers proceed during writes (WAL).
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker -----------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "courier"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "courier",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _broker = DATA_DIR / "broker"
    for _sub in ("in", "processed", "control"):
        (_broker / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "in"),
        "data_folder_out": str(_broker / "in"),
        "processed_folder": str(_broker / "processed"),
        "store_processed": False,
        # Without this kombu keeps its broadcast files in the working directory.
        "control_folder": str(_broker / "control"),
    }

# --- Celery ----------------------------------------------------------------------------
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Only one beat per deployment runs the schedule: a Redis lock plus heartbeats that
# `check --deploy` reads (messenger/beat.py).
CELERY_BEAT_SCHEDULER = "messenger.beat:HeartbeatScheduler"
# Every periodic job is idempotent and named explicitly; each sits beside the retention
# setting it serves. Beat must run exactly once per deployment.
PURGE_INTERVAL_SECONDS = env_int("PURGE_INTERVAL_SECONDS", 300)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "purge-expired-sessions": {
        "task": "messenger.purge_expired_sessions",
        "schedule": timedelta(seconds=PURGE_INTERVAL_SECONDS),
    },
    "rotate-epoch-keys": {
        "task": "messenger.rotate_epoch_keys",
        "schedule": timedelta(seconds=PURGE_INTERVAL_SECONDS),
    },
    "purge-stale-prekey-bundles": {
        "task": "keys.purge_stale_bundles",
        "schedule": timedelta(seconds=PURGE_INTERVAL_SECONDS),
    },
    "purge-blobs": {
        "task": "files.purge_blobs",
        "schedule": timedelta(seconds=PURGE_INTERVAL_SECONDS),
    },
    "purge-expired-relay": {
        "task": "relay.purge_expired",
        "schedule": timedelta(seconds=PURGE_INTERVAL_SECONDS),
    },
}

# --- Anonymous sessions -----------------------------------------------------------------
SESSION_TTL_SECONDS = env_int("SESSION_TTL_SECONDS", 7 * 24 * 3600)
# Leading zero bits required of sha256(challenge || nonce) to mint a session.
POW_DIFFICULTY = env_int("POW_DIFFICULTY", 20 if PRODUCTION else 0)
CHALLENGE_TTL_SECONDS = env_int("CHALLENGE_TTL_SECONDS", 120)
# One session per contact is the design, and many people may share an address (NAT, Tor
# exits): the limit is generous, and the proof of work prices bulk minting.
RATELIMIT_SESSION_MINT = env_str("RATELIMIT_SESSION_MINT", "200/h")
RATELIMIT_PER_SESSION = env_str("RATELIMIT_PER_SESSION", "600/m")
# Stored timestamps are rounded up to this many seconds so they say little about when
# something happened.
TIME_GRANULARITY_SECONDS = env_int("TIME_GRANULARITY_SECONDS", 60)

# --- Relay policy ------------------------------------------------------------------------
ENVELOPE_BUCKETS = env_int_list("ENVELOPE_BUCKETS", [1024, 4096, 16384, 65536])
ENVELOPE_MAX_TTL_SECONDS = env_int("ENVELOPE_MAX_TTL_SECONDS", 7 * 24 * 3600)
MAILBOX_MAX_TTL_SECONDS = env_int("MAILBOX_MAX_TTL_SECONDS", 90 * 24 * 3600)
MAILBOX_QUOTA_ENVELOPES = env_int("MAILBOX_QUOTA_ENVELOPES", 1000)
MAILBOX_QUOTA_BYTES = env_int("MAILBOX_QUOTA_BYTES", 32 * 1024 * 1024)
# The relay socket (docs/api/relay.md): seconds to send the auth frame, seconds without
# a client frame before the socket is closed, subscriptions per socket, envelopes pushed
# and not yet acknowledged per socket (flow control), frames per second with a burst,
# and how often a socket re-reads its mailboxes to heal lost doorbells (0: never).
RELAY_WS_AUTH_TIMEOUT_SECONDS = env_int("RELAY_WS_AUTH_TIMEOUT_SECONDS", 10)
RELAY_WS_IDLE_TIMEOUT_SECONDS = env_int("RELAY_WS_IDLE_TIMEOUT_SECONDS", 300)
RELAY_WS_MAX_SUBSCRIPTIONS = env_int("RELAY_WS_MAX_SUBSCRIPTIONS", 256)
RELAY_WS_MAX_INFLIGHT = env_int("RELAY_WS_MAX_INFLIGHT", 100)
RELAY_WS_RATE_PER_SECOND = env_int("RELAY_WS_RATE_PER_SECOND", 100)
RELAY_WS_RATE_BURST = env_int("RELAY_WS_RATE_BURST", 300)
RELAY_WS_RESYNC_SECONDS = env_int("RELAY_WS_RESYNC_SECONDS", 30)

# --- Prekey directory policy --------------------------------------------------------------
PREKEY_RETENTION_SECONDS = env_int("PREKEY_RETENTION_SECONDS", 30 * 24 * 3600)
SIGNED_PREKEY_ROTATION_SECONDS = env_int("SIGNED_PREKEY_ROTATION_SECONDS", 7 * 24 * 3600)
PREKEY_MAX_ONE_TIME = env_int("PREKEY_MAX_ONE_TIME", 200)
# One-time prekeys of each kind in one PUT: a full ML-KEM-768 batch must fit the request
# body limit (about 1.7 KB of JSON per key), so clients top up in several PUTs.
PREKEY_MAX_BATCH = env_int("PREKEY_MAX_BATCH", 50)
# Beyond the per-handle rate a claim still gets the bundle, with last-resort keys only
# (a stranger can neither drain the stock nor lock contacts out); beyond the per-session
# rate it is refused.
RATELIMIT_PREKEY_CLAIM_PER_HANDLE = env_str("RATELIMIT_PREKEY_CLAIM_PER_HANDLE", "20/h")
RATELIMIT_PREKEY_CLAIM_PER_SESSION = env_str("RATELIMIT_PREKEY_CLAIM_PER_SESSION", "10/h")
RATELIMIT_PREKEY_PUBLISH = env_str("RATELIMIT_PREKEY_PUBLISH", "60/h")

# --- Blob policy ---------------------------------------------------------------------------
BLOB_CHUNK_SIZES = env_int_list("BLOB_CHUNK_SIZES", [65536, 1048576, 4194304])
BLOB_MAX_BYTES = env_int("BLOB_MAX_BYTES", 1024 * 1024 * 1024)
BLOB_MAX_TTL_SECONDS = env_int("BLOB_MAX_TTL_SECONDS", 48 * 3600)
BLOB_MAX_DOWNLOADS = env_int("BLOB_MAX_DOWNLOADS", 100)
BLOB_SESSION_QUOTA_BYTES = env_int("BLOB_SESSION_QUOTA_BYTES", 2 * 1024 * 1024 * 1024)
BLOB_STORAGE_DIR = Path(env_str("BLOB_STORAGE_DIR", str(DATA_DIR / "blobs"))).resolve()
BLOB_DEFAULT_TTL_SECONDS = env_int("BLOB_DEFAULT_TTL_SECONDS", 48 * 3600)
# A blob not complete this long after creation is abandoned: uploads stop, purge reclaims it.
BLOB_UPLOAD_WINDOW_SECONDS = env_int("BLOB_UPLOAD_WINDOW_SECONDS", 12 * 3600)
# Fetching chunk 0 opens a download; the other chunks stay fetchable this long after the
# last allowed download was opened, then the exhausted blob is purged.
BLOB_DOWNLOAD_WINDOW_SECONDS = env_int("BLOB_DOWNLOAD_WINDOW_SECONDS", 3 * 3600)
RATELIMIT_BLOB_CHUNKS = env_str("RATELIMIT_BLOB_CHUNKS", "3000/m")

# --- At-rest encryption -------------------------------------------------------------------
EPOCH_SECONDS = env_int("EPOCH_SECONDS", 3600)

# --- Storage --------------------------------------------------------------------------------
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    _blob_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("S3_REGION", "") or None,
            "access_key": env_optional_secret("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_optional_secret("S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": False,
            "file_overwrite": True,
        },
    }
else:
    _blob_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(BLOB_STORAGE_DIR), "file_permissions_mode": 0o600},
    }
STORAGES = {
    "default": _blob_storage,
    "blobs": _blob_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# --- Request limits -------------------------------------------------------------------------
# JSON bodies and envelopes (64 KiB at most) fit; blob chunks are read as a stream.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 128 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 128 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100

# --- Security headers -------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# The load balancer and the metrics scraper talk to the nodes directly over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 63072000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No cookie is ever set (no sessions, no CSRF cookie); these only satisfy check --deploy.
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SILENCED_SYSTEM_CHECKS = [
    # CSRF protection defends cookie-authenticated forms. This server sets no cookies
    # and authenticates API calls with bearer tokens, so there is nothing to forge.
    "security.W003",
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        # blob: shows images the browser has just decrypted; nothing leaves the page.
        "img-src": [SELF, "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "manifest-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(self), display-capture=(), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)

# --- Rate limiting -------------------------------------------------------------------------------
RATELIMIT_USE_CACHE = "default"
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
if not REDIS_URL:
    # The embedded default is one process, so a local-memory cache is shared by every
    # request it serves.
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Metrics -------------------------------------------------------------------------------------
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)

# --- Logging -------------------------------------------------------------------------------------
# Nothing that identifies a person is logged: no address, token, user agent, path or body.
# django.request and daphne's access log would print paths (which carry capabilities) and
# peers, so they are held to errors and scrubbed by RedactRequestFilter.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "messenger.logging.RedactRequestFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
        "django.channels.server": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "daphne.server": {"level": "WARNING"},
        "daphne.http_protocol": {"level": "WARNING"},
        "daphne.ws_protocol": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = False
