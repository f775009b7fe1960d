import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[3]
# The WSGI application in a plain server process (runserver would refuse to start
# without a database; a production server starts and must say what is wrong).
SERVE = (
    "import sys; from wsgiref.simple_server import make_server; "
    "from glabella.wsgi import application; "
    "make_server('127.0.0.1', int(sys.argv[1]), application).serve_forever()"
)


def test_healthz_reports_the_database(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_healthz_answers_503_with_a_reason_when_the_database_is_unreachable(tmp_path):
    """A real server process pointed at a PostgreSQL port where nothing listens."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/glabella",
        "GLABELLA_VAR_DIR": str(tmp_path),
        "GLABELLA_DEBUG": "0",
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            else:
                raise AssertionError("healthz said 200 without a database")
        assert status == 503
        assert '"database": "unreachable"' in body
        assert "cannot be reached" in body
    finally:
        server.terminate()
        server.wait(timeout=10)
