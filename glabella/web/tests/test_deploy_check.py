"""`manage.py check --deploy` is clean with the documented production environment
(docs/security.md, "The production environment"), warns when a protection is off, and
production refuses to start with the development key or with debug on."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "security.md"


def documented_environment() -> dict[str, str]:
    """The NAME=value lines of the first ```sh block under "## The production environment"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The production environment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "docs/security.md has no ```sh block of production variables"
    found = {}
    for line in block.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = value
    return found


def run_check(tmp_path: Path, **changes: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GLABELLA_VAR_DIR": str(tmp_path / "var"),
        **documented_environment(),
        # A real key of the length the settings demand (the doc shows a placeholder).
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    env = documented_environment()
    assert env["GLABELLA_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgres")
    result = run_check(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and "ERRORS" not in output, output
    assert "no issues" in output


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"GLABELLA_HSTS_SECONDS": "0"}, ["security.W004"]),
        (
            {"GLABELLA_SSL_REDIRECT": "0", "GLABELLA_SECURE_COOKIES": "0"},
            ["security.W008", "security.W012", "security.W016"],
        ),
        ({"GLABELLA_MFA_REQUIRED": "0"}, ["glabella.W001"]),
        (
            {
                "DATABASE_URL": None,
                "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
                "ALLOWED_HOSTS": "*",
                "GLABELLA_SMS_PROVIDER": "console",
            },
            ["glabella.W002", "glabella.W003", "glabella.W004", "glabella.W005"],
        ),
        ({"GLABELLA_ENV": None}, ["glabella.W007", "security.W004", "security.W008"]),
    ],
)
def test_check_deploy_warns_when_a_protection_is_off(tmp_path, changes, expected):
    result = run_check(tmp_path, **changes)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for check_id in expected:
        assert check_id in output, output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY of at least 50"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY of at least 50"),
        ({"GLABELLA_DEBUG": "1"}, "GLABELLA_DEBUG is on"),
        ({"GLABELLA_ENV": "prod"}, "must be 'production' or 'development'"),
    ],
)
def test_production_refuses_to_start_unsafely(tmp_path, changes, message):
    result = run_check(tmp_path, **changes)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_production_cookies_are_host_bound_and_https_only(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GLABELLA_VAR_DIR": str(tmp_path / "var"),
        **documented_environment(),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SETTINGS_MODULE": "glabella.settings",
    }
    code = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_PROXY_SSL_HEADER, s.SECURE_REDIRECT_EXEMPT)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split()[:5] == [
        "__Host-glabella_session",
        "__Host-glabella_csrf",
        "True",
        "True",
        "31536000",
    ]
    assert "HTTP_X_FORWARDED_PROTO" in result.stdout and "healthz" in result.stdout
