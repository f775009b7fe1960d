"""The shared cache (GLABELLA_CACHE_URL), the client's address behind the proxy, and the
contrib/ files agreeing with the settings. Redis is the real one at 127.0.0.1:6379."""

from __future__ import annotations

import math
import re
import runpy
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import RequestFactory

from glabella.interop.imports import jobs as imports
from glabella.portal import services as portal
from glabella.proxy import ForwardedForMiddleware, client_address
from glabella.settings import _cache

ROOT = Path(__file__).resolve().parents[3]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the real Redis; its keys are removed afterwards."""
    prefix = f"glabella-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    assert not list(client.scan_iter(f"{prefix}:*"))


def test_the_cache_url_chooses_the_backend():
    assert _cache("redis://cache.internal:6379/2")["BACKEND"].endswith("RedisCache")
    assert _cache("redis://cache.internal:6379/2")["LOCATION"] == "redis://cache.internal:6379/2"
    assert _cache("db://") == {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "glabella_cache",
        "KEY_PREFIX": "glabella",
    }
    assert _cache("locmem://")["BACKEND"].endswith("LocMemCache")
    with pytest.raises(ValueError, match="unknown cache"):
        _cache("memcached://x")


def test_two_processes_see_one_redis_cache(redis_prefix):
    """Two cache clients (as two app processes hold) share counters and values."""
    one = RedisCache(REDIS_URL, {"KEY_PREFIX": redis_prefix})
    two = RedisCache(REDIS_URL, {"KEY_PREFIX": redis_prefix})
    assert one.add("hits", 1, timeout=60)
    assert not two.add("hits", 1, timeout=60)  # already there: the other process made it
    assert two.incr("hits") == 2
    assert one.incr("hits") == 3
    one.set("progress", [5, 10], timeout=60)
    assert two.get("progress") == [5, 10]


def test_the_portal_rate_limit_counts_in_redis(settings, redis_prefix):
    settings.CACHES = {
        "default": {**_cache(REDIS_URL), "KEY_PREFIX": redis_prefix},
    }
    settings.GLABELLA_PORTAL_RATE_PER_MINUTE = 3
    token = "t" * 43
    answers = [portal.rate_limited(token, "203.0.113.9") for _ in range(4)]
    assert answers == [False, False, False, True]
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}:*portal-rate*"))
    assert len(stored) == 2  # one counter for the address, one for the link


def test_the_database_cache_table_is_made_by_migrate(db):
    assert "glabella_cache" in connection.introspection.table_names()
    shared = DatabaseCache("glabella_cache", {"KEY_PREFIX": "t"})
    shared.set("a", {"b": 1}, 60)
    assert DatabaseCache("glabella_cache", {"KEY_PREFIX": "t"}).get("a") == {"b": 1}
    assert shared.add("n", 1, 60) and shared.incr("n") == 2


def test_an_imports_progress_is_seen_by_another_process_through_redis(settings, redis_prefix):
    settings.CACHES = {"default": {**_cache(REDIS_URL), "KEY_PREFIX": redis_prefix}}
    run = SimpleNamespace(pk=987654)
    imports._share(run.pk, (40, 200))  # the process running the import
    assert imports.progress(run) == (40, 200)  # any process: nothing of its own in memory
    imports._share(run.pk, None)
    assert imports.progress(run) == (0, 0)


def test_the_database_cache_does_not_pretend_to_share_an_imports_progress(db, settings):
    settings.CACHES = {"default": _cache("db://")}
    imports._share(987655, (1, 2))
    assert imports.progress(SimpleNamespace(pk=987655)) == (0, 0)


# --- the client's address behind the proxy ----------------------------------------------------


def test_the_clients_address_is_taken_from_a_trusted_proxy_only():
    trusted = "127.0.0.1,10.0.0.0/8"
    assert client_address("127.0.0.1", "203.0.113.7", trusted) == "203.0.113.7"
    # What the client itself wrote first is never believed; the last untrusted hop is.
    assert client_address("127.0.0.1", "6.6.6.6, 203.0.113.7, 10.1.2.3", trusted) == "203.0.113.7"
    # From anywhere else the header is ignored.
    assert client_address("198.51.100.1", "203.0.113.7", trusted) == "198.51.100.1"
    assert client_address("127.0.0.1", "203.0.113.7", "") == "127.0.0.1"
    assert client_address("127.0.0.1", "not an address", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "", trusted) == "127.0.0.1"


def test_the_middleware_sets_the_address_lockouts_and_rate_limits_see(settings):
    seen = []
    middleware = ForwardedForMiddleware(lambda request: seen.append(request.META["REMOTE_ADDR"]))
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    settings.GLABELLA_TRUSTED_PROXIES = ""
    middleware(request)
    settings.GLABELLA_TRUSTED_PROXIES = "127.0.0.1"
    middleware(request)
    assert seen == ["127.0.0.1", "203.0.113.7"]
    assert settings.MIDDLEWARE[0] == "glabella.proxy.ForwardedForMiddleware"


# --- contrib/ agrees with the settings --------------------------------------------------------


def test_the_gunicorn_config_loads_and_logs_no_query_strings(monkeypatch):
    monkeypatch.setenv("GLABELLA_WORKERS", "3")
    conf = runpy.run_path(str(ROOT / "contrib" / "gunicorn.conf.py"))
    assert conf["workers"] == 3 and conf["threads"] >= 1
    assert conf["worker_class"] == "gthread"
    assert conf["forwarded_allow_ips"] == "127.0.0.1"
    assert conf["preload_app"] is False  # no database connection shared by workers
    fmt = conf["access_log_format"]
    for atom in ("%(r)s", "%(q)s", "%(f)s", "%(a)s", "%({referer}i)s"):
        assert atom not in fmt
    assert "%(U)s" in fmt
    # The logged path is redacted like the app's own log lines.
    logger = conf["logger_class"]
    from gunicorn.config import Config

    atoms = logger(Config()).atoms(
        SimpleNamespace(status="200 OK", sent=10, headers=[]),
        SimpleNamespace(
            headers=[],
            method="GET",
            path="/my/SeCrEtToKeN/diary/",
            query="q=Smith",
            version=(1, 1),
            uri="/my/SeCrEtToKeN/diary/?q=Smith",
        ),
        {
            "REMOTE_ADDR": "127.0.0.1",
            "RAW_URI": "/my/SeCrEtToKeN/diary/?q=Smith",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "PATH_INFO": "/my/SeCrEtToKeN/diary/",
            "QUERY_STRING": "q=Smith",
            "REQUEST_METHOD": "GET",
        },
        __import__("datetime").timedelta(seconds=0.01),
    )
    assert atoms["U"] == "/my/[link]/diary/"
    assert atoms["r"] == atoms["q"] == "-"  # the request line and query never reach the log


def _nginx() -> str:
    return (ROOT / "contrib" / "nginx" / "glabella.conf").read_text()


def test_the_proxys_upload_limit_is_the_apps_largest_plus_the_form_around_it():
    largest = max(
        settings.GLABELLA_IMPORT_MAX_BYTES,
        settings.GLABELLA_PHOTO_MAX_BYTES,
        settings.GLABELLA_MAX_UPLOAD_BYTES,
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    )
    (limit,) = re.findall(r"^\s*client_max_body_size\s+(\d+)m;", _nginx(), re.M)
    assert int(limit) == math.ceil(largest / 2**20) + 1


def test_the_proxy_serves_static_files_and_no_private_ones():
    conf = _nginx()
    locations = re.findall(r"^\s*location\s+(?:=\s*)?(\S+)", conf, re.M)
    assert sorted(locations) == ["/", "/", "/healthz", "/static/"]
    (static_root,) = re.findall(r"location /static/ \{\s*alias (\S+);", conf)
    assert static_root.rstrip("/") == "/srv/glabella/var/static"  # GLABELLA_STATIC_ROOT there
    for private in ("media", "photos", "exports", "imports", "private"):
        assert f"location /{private}" not in conf
    # The proxy overwrites what the client sent in the headers the app trusts.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
    assert '$request_uri"' not in conf and "$args" not in conf


def test_the_systemd_units_run_commands_that_exist():
    from django.core.management import get_commands

    commands = get_commands()
    for unit in ("glabella-web.service", "glabella-worker.service"):
        text = (ROOT / "contrib" / "systemd" / unit).read_text()
        for line in re.findall(r"^ExecStart(?:Pre)?=(.*)$", text, re.M):
            words = line.split()
            if words[0].endswith("/glabella"):
                assert words[1] in commands, line
            elif words[0].endswith("/gunicorn"):
                assert words[words.index("-c") + 1].endswith("contrib/gunicorn.conf.py")
                assert words[-1] == "glabella.wsgi:application"
