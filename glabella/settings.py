"""Glabella settings: one file, driven by the environment.

With no environment at all this gives a working laptop setup: SQLite under ./var/,
a generated development secret kept in ./var/secret_key, debug off (``make run``
switches it on with GLABELLA_DEBUG=1).

Every variable may instead be read from a file by appending ``_FILE`` to its name
(``SECRET_KEY_FILE=/run/secrets/glabella_key``), for container and systemd secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GLABELLA_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    """The variable NAME, or the contents of the file named by NAME_FILE."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _development_secret() -> str:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


DEBUG = env_bool("GLABELLA_DEBUG")
# --- production or development (hardening, docs/security.md) ----------------------
# GLABELLA_ENV=production switches on everything `manage.py check --deploy` asks for: HTTPS
# only, HSTS, secure `__Host-` cookies; it refuses to start with debug on or without a long
# SECRET_KEY of its own. Anything else (the default) is the laptop setup over plain http.
GLABELLA_ENV = (env("GLABELLA_ENV") or "development").strip().lower()
if GLABELLA_ENV not in {"production", "development"}:
    raise ImproperlyConfigured(
        f"GLABELLA_ENV is {GLABELLA_ENV!r}; it must be 'production' or 'development'."
    )
PRODUCTION = GLABELLA_ENV == "production"
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured(
        "GLABELLA_DEBUG is on while GLABELLA_ENV=production: debug pages show patient data. "
        "Switch one of them off."
    )
if PRODUCTION and len(env("SECRET_KEY") or "") < 50:
    raise ImproperlyConfigured(
        "GLABELLA_ENV=production needs a SECRET_KEY of at least 50 random characters from the "
        "environment (or SECRET_KEY_FILE), not the development key. Make one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
SECRET_KEY = env("SECRET_KEY") or _development_secret()
ALLOWED_HOSTS = [h.strip() for h in (env("ALLOWED_HOSTS") or "127.0.0.1,localhost").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in (env("CSRF_TRUSTED_ORIGINS") or "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "glabella.audit",
    "glabella.accounts",
    "glabella.patients",
    "glabella.consent",
    "glabella.charting",
    "glabella.inventory",
    "glabella.scheduling",
    "glabella.outcomes",
    "glabella.photos",
    "glabella.portal",
    "glabella.interop",
    "glabella.web",
    "ninja",  # serves the API docs' Swagger UI from its own static files (no CDN)
]

MIDDLEWARE = [
    "glabella.audit.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # H5: a connection-level database failure is a 503 in words, never a 500 (web/middleware.py).
    "glabella.web.middleware.DatabaseUnavailableMiddleware",
    # Content-Security-Policy, Permissions-Policy and friends on every response; and the
    # request id made available to log lines (H3, issue 9 §2).
    "glabella.web.security.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "glabella.accounts.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "glabella.accounts.middleware.MembershipMiddleware",
    "glabella.accounts.middleware.MfaRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "glabella.urls"
WSGI_APPLICATION = "glabella.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "glabella.accounts.context_processors.membership",
            ],
            # |date for the formats every page writes, without Django's formatter (the same
            # text; glabella/web/templatetags/dates.py).
            "builtins": ["glabella.web.templatetags.dates"],
        },
    }
]

# --- database ----------------------------------------------------------------
# DATABASE_URL=postgres://user:password@host:5432/glabella switches to PostgreSQL.
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'glabella.sqlite3'}"
# A process keeps its database connection between requests for this many seconds (opening a
# PostgreSQL connection costs a process on the server and several milliseconds); it is checked
# before it is used again, so a database that went away and came back is reconnected to.
CONN_MAX_AGE = int(env("GLABELLA_CONN_MAX_AGE") or "300")
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or DEFAULT_DATABASE_URL,
        conn_max_age=CONN_MAX_AGE,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if not env("DATABASE_URL"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets readers work while one writer writes; IMMEDIATE transactions take the
    # write lock up front, so two writers queue instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        # How long a writer waits for the write lock before "database is locked" (a 503).
        "timeout": float(env("GLABELLA_SQLITE_TIMEOUT") or "20"),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
        "PRAGMA foreign_keys=ON;",
    }
    # Tests use a file too (not Django's shared-cache in-memory database, whose table locks
    # fail at once instead of waiting), so background jobs and live-server pages meet the same
    # locking as in use. One file per test process.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# PostgreSQL: the pages' fixed queries are prepared on the server once per connection and
# planned once (glabella/prepared.py). Turn off (0) behind a pooler that moves a client's
# transactions between server sessions (PgBouncer in transaction or statement mode).
GLABELLA_PG_PREPARE = env_bool("GLABELLA_PG_PREPARE", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- authentication ----------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# --- password rules (H1, accounts/passwords.py; NIST SP 800-63B) ---------------------------
# Long passphrases up to 128 characters, spaces and any Unicode; no composition rules, no
# forced change; refuse passwords made of the user's name/e-mail, the clinic's or "glabella".
AUTH_PASSWORD_VALIDATORS += [
    {"NAME": "glabella.accounts.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "glabella.accounts.passwords.ContextWordsValidator"},
]
# --- end password rules ---------------------------------------------------------------------
# Two-step sign-in (accounts/mfa.py): required for owners, prescribers and injectors. Switch off
# only for the laptop demo (`make run` does); `check --deploy` warns when it is off.
GLABELLA_MFA_REQUIRED = env_bool("GLABELLA_MFA_REQUIRED", default=True)
# Sensitive actions (export, role changes, break-glass) ask for the password again when it was
# last typed longer ago than this.
GLABELLA_REAUTH_SECONDS = int(env("GLABELLA_REAUTH_SECONDS") or "300")
# Lockout after repeated failed sign-ins (per account and per address), doubling each time.
GLABELLA_LOGIN_FAILURES_BEFORE_LOCK = int(env("GLABELLA_LOGIN_FAILURES_BEFORE_LOCK") or "5")
GLABELLA_LOGIN_LOCK_SECONDS = int(env("GLABELLA_LOGIN_LOCK_SECONDS") or "60")
GLABELLA_LOGIN_LOCK_MAX_SECONDS = int(env("GLABELLA_LOGIN_LOCK_MAX_SECONDS") or "3600")
# Break-glass: how long emergency access to one patient's clinical summary lasts.
GLABELLA_BREAK_GLASS_MINUTES = int(env("GLABELLA_BREAK_GLASS_MINUTES") or "30")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# A session ends after 15 idle minutes. The page signs out at exactly that (accounts/idle.js);
# the server keeps the session while it is used, writing its expiry at most once a minute
# (accounts/middleware.py IdleSessionMiddleware) rather than on every request, so it ends
# between 15 and 16 minutes after the last request.
GLABELLA_IDLE_SECONDS = int(env("GLABELLA_IDLE_MINUTES") or "15") * 60
GLABELLA_SESSION_REFRESH_SECONDS = max(1, min(60, GLABELLA_IDLE_SECONDS // 4))
SESSION_COOKIE_AGE = GLABELLA_IDLE_SECONDS + GLABELLA_SESSION_REFRESH_SECONDS
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- HTTPS, cookies and security headers (glabella/web/security.py adds the CSP) ---------
# In production: HTTPS only (a plain-http request is redirected, except /healthz so a load
# balancer may probe the process directly), HSTS for a year, cookies only over HTTPS and with
# the `__Host-` prefix (bound to this exact host). Behind a reverse proxy that ends TLS, set
# GLABELLA_PROXY_SSL_HEADER=X-Forwarded-Proto (the proxy must set that header itself,
# overwriting whatever the client sent; contrib/nginx does).
SESSION_COOKIE_SECURE = env_bool("GLABELLA_SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# htmx sends the token from the page (base.html hx-headers), never from the cookie, so no
# script needs to read the CSRF cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
if SESSION_COOKIE_SECURE:
    SESSION_COOKIE_NAME = "__Host-glabella_session"
    CSRF_COOKIE_NAME = "__Host-glabella_csrf"
SECURE_SSL_REDIRECT = env_bool("GLABELLA_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
_proxy_ssl_header = (env("GLABELLA_PROXY_SSL_HEADER") or "").strip()
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
_HSTS_DEFAULT = str(365 * 24 * 3600) if PRODUCTION else "0"
SECURE_HSTS_SECONDS = int(env("GLABELLA_HSTS_SECONDS") or _HSTS_DEFAULT)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GLABELLA_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("GLABELLA_HSTS_PRELOAD", default=PRODUCTION)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy sent with every response (glabella/web/security.py): scripts and
# styles only from this server's static files, never inline. GLABELLA_CSP_REPORT_URI adds a
# report-uri for violation reports.
GLABELLA_CSP_REPORT_URI = env("GLABELLA_CSP_REPORT_URI") or ""
# An operator who turns HSTS sub-domains or preload off on purpose (a sub-domain still on plain
# http) has decided it; check --deploy stops repeating it.
SILENCED_SYSTEM_CHECKS: list[str] = []
if PRODUCTION and not SECURE_HSTS_INCLUDE_SUBDOMAINS:
    SILENCED_SYSTEM_CHECKS.append("security.W005")
if PRODUCTION and not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# --- i18n / time -------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("GLABELLA_TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

# --- static files ------------------------------------------------------------
STATIC_URL = "/static/"
# Django's static files storage, each file's URL kept once worked out (web/static_storage.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "glabella.web.static_storage.StaticStorage"},
}
STATIC_ROOT = Path(env("GLABELLA_STATIC_ROOT") or VAR_DIR / "static")

# --- uploaded files (signatures, scanned consents, later photos) --------------
# Kept outside any web root and served only through views that check the role.
MEDIA_ROOT = Path(env("GLABELLA_MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "/media/"  # never served directly
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
GLABELLA_MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# --- e-mail ------------------------------------------------------------------
# EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend prints mail instead of sending it.
EMAIL_BACKEND = env("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(env("EMAIL_PORT") or "25")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL") or "glabella@localhost"

# --- logging: no patient data in logs (we log request ids, never bodies) -----
# Every line goes through glabella.logging_filters.NoPatientData: query strings (search pages put
# names in ?q=) and secret-link tokens are cut from paths, SQL with its parameters is never
# written, and each line carries the request id so a line can be matched to a request (and its
# audit rows) without any patient detail. Django's "mail the admins" handler, which would send
# request bodies by e-mail, is not used.
GLABELLA_LOG_LEVEL = (env("GLABELLA_LOG_LEVEL") or "WARNING").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_patient_data": {"()": "glabella.logging_filters.NoPatientData"}},
    "formatters": {
        "glabella": {
            "format": "%(asctime)s %(levelname)s %(name)s [request %(request_id)s] %(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["no_patient_data"],
            "formatter": "glabella",
        }
    },
    "root": {"handlers": ["console"], "level": GLABELLA_LOG_LEVEL},
    "loggers": {
        # Django's own lines go to the root handler above (and so through the filter).
        "django": {"handlers": [], "level": GLABELLA_LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- clinical settings a clinic may tighten (never loosen) -------------------
# "3 months" for the cumulative onabotulinumtoxinA limit: 84 or 90 days.
GLABELLA_CUMULATIVE_WINDOW_DAYS = int(env("GLABELLA_CUMULATIVE_WINDOW_DAYS") or "90")

# --- reminders: links in messages, SMS provider, the worker --------------------
# Absolute address of this installation, for the opt-out link in every message.
GLABELLA_SITE_URL = (env("GLABELLA_SITE_URL") or "http://localhost:8000").rstrip("/")
# How long an SMTP conversation may stall before the worker gives up on it (seconds).
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT") or "30")
EMAIL_HOST_USER = env("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
# SMS: "console" (development: printed, nothing leaves the machine), "http" (POST JSON to
# GLABELLA_SMS_URL with a bearer token), or the dotted path of your own provider class
# (docs/reminders.md, "Plugging in an SMS provider").
GLABELLA_SMS_PROVIDER = env("GLABELLA_SMS_PROVIDER") or "console"
GLABELLA_SMS_URL = env("GLABELLA_SMS_URL") or ""
GLABELLA_SMS_TOKEN = env("GLABELLA_SMS_TOKEN") or ""
GLABELLA_SMS_SENDER = env("GLABELLA_SMS_SENDER") or "Glabella"
GLABELLA_SMS_TIMEOUT = float(env("GLABELLA_SMS_TIMEOUT") or "10")
# The console provider also appends each message as a JSON line to this file, if set.
GLABELLA_SMS_CONSOLE_FILE = env("GLABELLA_SMS_CONSOLE_FILE") or ""
# `glabella worker` plans and sends every this many seconds.
GLABELLA_WORKER_INTERVAL = int(env("GLABELLA_WORKER_INTERVAL") or "60")
# A message left "being sent" longer than this (the worker died mid-send) is marked
# "may not have gone out" for a person to check; it is never resent by itself. Keep it well
# above EMAIL_TIMEOUT and GLABELLA_SMS_TIMEOUT.
GLABELLA_REMINDER_LEASE_SECONDS = int(env("GLABELLA_REMINDER_LEASE_SECONDS") or "600")

# --- clinical photographs ---------------------------------------------------------
# Stored privately and served only through a view that checks the role (never a public URL).
# GLABELLA_PHOTO_STORAGE: "local" (default: files under GLABELLA_PHOTO_ROOT) or "s3" for
# S3-compatible object storage (docs/photos.md lists the GLABELLA_S3_* variables).
GLABELLA_PHOTO_STORAGE = env("GLABELLA_PHOTO_STORAGE") or "local"
GLABELLA_PHOTO_ROOT = Path(env("GLABELLA_PHOTO_ROOT") or VAR_DIR / "private" / "photos")
GLABELLA_PHOTO_MAX_BYTES = int(env("GLABELLA_PHOTO_MAX_BYTES") or str(15 * 1024 * 1024))
# Larger pictures are refused (decompression bombs) or scaled down on the long side.
GLABELLA_PHOTO_MAX_PIXELS = int(env("GLABELLA_PHOTO_MAX_PIXELS") or "64000000")
GLABELLA_PHOTO_MAX_SIDE = int(env("GLABELLA_PHOTO_MAX_SIDE") or "4096")
# S3-compatible storage (GLABELLA_PHOTO_STORAGE=s3; needs `pip install glabella[s3]`).
GLABELLA_S3_BUCKET = env("GLABELLA_S3_BUCKET") or ""
GLABELLA_S3_ENDPOINT_URL = env("GLABELLA_S3_ENDPOINT_URL") or ""
GLABELLA_S3_ACCESS_KEY = env("GLABELLA_S3_ACCESS_KEY") or ""
GLABELLA_S3_SECRET_KEY = env("GLABELLA_S3_SECRET_KEY") or ""
GLABELLA_S3_REGION = env("GLABELLA_S3_REGION") or ""
GLABELLA_S3_PREFIX = env("GLABELLA_S3_PREFIX") or "photos"

# --- the patient's own pages (signed links) ---------------------------------------
# How long a link sent to a patient works, and how many page requests one link (and one
# address) may make per minute.
GLABELLA_PORTAL_LINK_DAYS = int(env("GLABELLA_PORTAL_LINK_DAYS") or "14")
GLABELLA_PORTAL_RATE_PER_MINUTE = int(env("GLABELLA_PORTAL_RATE_PER_MINUTE") or "60")

# --- interoperability: exports, imports, API ----------------------------------------
# Export jobs (FHIR bulk export, full export) write their files here, privately; they are
# served only through views that check the role and the organization.
GLABELLA_EXPORT_ROOT = Path(env("GLABELLA_EXPORT_ROOT") or VAR_DIR / "private" / "exports")
# Finished export files are kept this many hours, then deleted (the job row stays).
GLABELLA_EXPORT_KEEP_HOURS = int(env("GLABELLA_EXPORT_KEEP_HOURS") or "24")
# A running export job that has not shown a sign of life for this long (its process died) is
# marked failed, so it never stays "running" forever.
GLABELLA_EXPORT_STALE_MINUTES = int(env("GLABELLA_EXPORT_STALE_MINUTES") or "10")
# The largest CSV file the import accepts (bytes).
GLABELLA_IMPORT_MAX_BYTES = int(env("GLABELLA_IMPORT_MAX_BYTES") or str(50 * 1024 * 1024))


# --- several app processes, several machines (H6; docs/deploy.md) ----------------------------
# Nothing an app process keeps in its own memory may matter to the next request, which another
# process (or machine) may answer. Sessions live in the database. The cache (the portal's
# per-minute rate limits, the import page's progress) must be shared by every process:
#   GLABELLA_CACHE_URL=redis://host:6379/0  Redis (Django's RedisCache)
#   GLABELLA_CACHE_URL=db://                the database table glabella_cache, made by `migrate`
#                                           (the default)
#   GLABELLA_CACHE_URL=locmem://            this process's memory: only with a single process
# Under pytest the default is locmem (tests clear it between tests; web/tests/test_cache.py
# checks the database and Redis caches).
def _cache(url: str) -> dict:
    scheme = url.split("://", 1)[0].lower()
    prefix = env("GLABELLA_CACHE_PREFIX") or "glabella"
    if scheme in {"redis", "rediss", "unix"}:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    if scheme == "db":
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": url.split("://", 1)[1].strip("/") or "glabella_cache",
            "KEY_PREFIX": prefix,
        }
    if scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}
    raise ValueError(f"GLABELLA_CACHE_URL: unknown cache {scheme!r} (redis://, db:// or locmem://)")


CACHES = {
    "default": _cache(
        env("GLABELLA_CACHE_URL") or ("locmem://" if os.environ.get("PYTEST_VERSION") else "db://")
    )
}
# Sessions: "db" (default: the database), "cached_db" (the database, read through the cache)
# or "cache" (the cache only: Redis; everyone is signed out if Redis loses its data).
SESSION_ENGINE = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
}[(env("GLABELLA_SESSION_ENGINE") or "db").lower()]

# Reports and exports read from a PostgreSQL streaming replica when DATABASE_REPLICA_URL is
# set (glabella/db_router.py says which); everything else reads and writes the primary. Tests
# never use the replica: it mirrors the test database.
if env("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        env("DATABASE_REPLICA_URL") or "", conn_max_age=CONN_MAX_AGE, conn_health_checks=True
    )
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["glabella.db_router.ReplicaRouter"]

# Behind a reverse proxy: requests from these addresses (comma-separated addresses or
# networks, e.g. 127.0.0.1) have the client's own address taken from X-Forwarded-For
# (glabella/proxy.py), so lockouts and rate limits count each client, not the proxy.
GLABELLA_TRUSTED_PROXIES = env("GLABELLA_TRUSTED_PROXIES") or ""
MIDDLEWARE = ["glabella.proxy.ForwardedForMiddleware", *MIDDLEWARE]
# --- end of H6's block ----------------------------------------------------------------------
