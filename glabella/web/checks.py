"""Glabella's own deployment checks, run by ``manage.py check --deploy`` beside Django's.

Each says what is wrong and what to do, in words an operator can act on; docs/security.md lists
them. They run only with ``--deploy`` (on a laptop, SQLite and the console mail are right).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

SECURITY_MIDDLEWARE = "glabella.web.security.SecurityHeadersMiddleware"
_DEV_MAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


def _inside(child: Any, parent: Any) -> bool:
    try:
        return Path(child).resolve().is_relative_to(Path(parent).resolve())
    except (TypeError, ValueError, OSError):
        return False


@register(Tags.security, deploy=True)
def check_production(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if not getattr(settings, "PRODUCTION", False):
        found.append(
            Warning(
                "GLABELLA_ENV is not 'production', so the HTTPS, HSTS and secure-cookie settings "
                "below are the laptop ones.",
                hint="Set GLABELLA_ENV=production (and SECRET_KEY, DATABASE_URL, ALLOWED_HOSTS) "
                "on the server; docs/security.md lists the environment.",
                id="glabella.W007",
            )
        )
    if not getattr(settings, "GLABELLA_MFA_REQUIRED", True):
        found.append(
            Warning(
                "Two-step sign-in is switched off (GLABELLA_MFA_REQUIRED=0): owners, prescribers "
                "and injectors can sign in with a password alone.",
                hint="Remove GLABELLA_MFA_REQUIRED from the environment (it is on by default).",
                id="glabella.W001",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        found.append(
            Warning(
                "The database is SQLite. It suits one laptop; a clinic's server should use "
                "PostgreSQL (several app processes, a replica for reports, backups while "
                "working).",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/glabella "
                "(docs/deploy.md).",
                id="glabella.W002",
            )
        )
    if settings.EMAIL_BACKEND in _DEV_MAIL:
        found.append(
            Warning(
                f"E-mail goes to {settings.EMAIL_BACKEND.rsplit('.', 2)[-2]} instead of being "
                "sent: reminders and sign-in mails never leave the server, and the console "
                "backend writes patients' names and messages into the logs.",
                hint="Unset EMAIL_BACKEND (SMTP is the default) and set EMAIL_HOST.",
                id="glabella.W003",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        found.append(
            Warning(
                "ALLOWED_HOSTS contains '*': any Host header is accepted, which lets links in "
                "e-mails (password resets, patient links) point at another site.",
                hint="Set ALLOWED_HOSTS to the clinic's own host names, comma-separated.",
                id="glabella.W004",
            )
        )
    if getattr(settings, "GLABELLA_SMS_PROVIDER", "") == "console":
        found.append(
            Warning(
                "Text messages go to the console (GLABELLA_SMS_PROVIDER=console): they are not "
                "sent, and their text (with patients' names) is written to the log.",
                hint="Set GLABELLA_SMS_PROVIDER=http with GLABELLA_SMS_URL and "
                "GLABELLA_SMS_TOKEN, or to your provider class (docs/reminders.md).",
                id="glabella.W005",
            )
        )
    if SECURITY_MIDDLEWARE not in settings.MIDDLEWARE:
        found.append(
            Warning(
                "The Content-Security-Policy middleware is not installed: pages are sent "
                "without a CSP.",
                hint=f"Add '{SECURITY_MIDDLEWARE}' to MIDDLEWARE after SecurityMiddleware.",
                id="glabella.W006",
            )
        )
    static_root = getattr(settings, "STATIC_ROOT", None)
    if static_root:
        for name in ("MEDIA_ROOT", "GLABELLA_PHOTO_ROOT", "GLABELLA_EXPORT_ROOT"):
            value = getattr(settings, name, None)
            if value and _inside(value, static_root):
                found.append(
                    Warning(
                        f"{name} ({value}) is inside STATIC_ROOT ({static_root}): the web "
                        "server would hand those files to anyone who guesses the name.",
                        hint=f"Move {name} outside STATIC_ROOT (the default is var/private/).",
                        id="glabella.W008",
                    )
                )
    return found
