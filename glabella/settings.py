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
    "django.contrib.sessions.middleware.SessionMiddleware",
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
        },
    }
]

# --- database ----------------------------------------------------------------
# DATABASE_URL=postgres://user:password@host:5432/glabella switches to PostgreSQL.
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'glabella.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or DEFAULT_DATABASE_URL, conn_max_age=0, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if not env("DATABASE_URL"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets readers work while one writer writes; IMMEDIATE transactions take the
    # write lock up front, so two writers queue instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
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

# A session ends after 15 idle minutes: every request pushes the expiry forward.
SESSION_COOKIE_AGE = int(env("GLABELLA_IDLE_MINUTES") or "15") * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool(
    "GLABELLA_SECURE_COOKIES", default=not DEBUG and bool(env("SECRET_KEY"))
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- i18n / time -------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("GLABELLA_TIME_ZONE") or "UTC"
USE_I18N = True
USE_TZ = True

# --- static files ------------------------------------------------------------
STATIC_URL = "/static/"
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
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("GLABELLA_LOG_LEVEL") or "WARNING"},
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
