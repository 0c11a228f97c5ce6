"""The real server app.py runs (gunicorn, with the options app.py gives it, in a subprocess as
app.py runs it): a body over the app's limit is refused before the app reads it, and
X-Forwarded-* reach the app's own proxy check (gunicorn trusts no proxy itself)."""
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from incus_api.config import MAX_REQUEST_BYTES
from incus_api.web.serving import (
    THREADS,
    BodyLimit,
    WorkerApp,
    bind_address,
    gunicorn_options,
)
from tests.conftest import API_HEADERS, API_SECRET, ROOT

SERVER = """
import sys
from incus_api import create_app
from incus_api.web.serving import serve
config = {"DATABASE": sys.argv[1], "API_SECRET_KEY": sys.argv[2], "SECRET_KEY": "k",
          "INCUS_SOCKET": sys.argv[1] + ".none", "TRUSTED_PROXIES": sys.argv[3],
          "HOST": "127.0.0.1", "PORT": int(sys.argv[4])}
serve(config, lambda: create_app(config, instance_path=sys.argv[1] + ".instance"))
"""


@pytest.fixture
def app_overrides(tmp_path):
    return {"INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(tmp_path, trusted=""):
    """The app under gunicorn in a subprocess; yields ``(base URL, database path)``."""
    database, port = tmp_path / f"serve{len(trusted)}.sqlite3", free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(database), API_SECRET, trusted, str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", database
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def audit_rows(database):
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM audit_log").fetchall()


def test_serve_options_carry_the_config(app):
    options = gunicorn_options(app.config, WorkerApp(lambda: app))
    assert options["bind"] == [f"{app.config['HOST']}:{app.config['PORT']}"]
    assert (options["workers"], options["worker_class"], options["threads"]) == (1, "gthread", THREADS)
    assert THREADS >= 8 + 16  # eight consoles and the dashboard at once
    assert options["forwarded_allow_ips"] == "" and options["secure_scheme_headers"] == {}
    assert bind_address("::1", 5000) == "[::1]:5000"


def test_the_body_limit_answers_before_the_app(app):
    seen, status = [], []
    limited = BodyLimit(lambda environ, start: seen.append(environ) or app(environ, start), MAX_REQUEST_BYTES)
    body = limited({"CONTENT_LENGTH": str(MAX_REQUEST_BYTES + 1)}, lambda line, headers: status.append(line))
    assert status == ["413 Request Entity Too Large"] and seen == [] and b"too large" in b"".join(body)
    limited({"CONTENT_LENGTH": "", "REQUEST_METHOD": "GET", "PATH_INFO": "/login", "SERVER_NAME": "x",
             "SERVER_PORT": "80", "wsgi.url_scheme": "http"}, lambda line, headers: status.append(line))
    assert len(seen) == 1


def raw_request(url, head, body=b""):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


def test_bodies_over_and_within_the_limit_and_forwarded_headers(tmp_path):
    with served(tmp_path) as (url, database):
        size = 2 * 1024 * 1024
        head = (f"POST /container/create HTTP/1.1\r\nHost: localhost\r\nX-API-Hash: {API_HEADERS['X-API-Hash']}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n"
                "Connection: close\r\n\r\n")
        # Only the headers and a first piece are sent: the answer comes without the rest of the body.
        answer = raw_request(url, head, b"name=" + b"a" * 1000)
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        assert audit_rows(database) == []  # the app never saw the request

        response = requests.post(f"{url}/container/create", headers={**API_HEADERS, "X-Forwarded-For": "203.0.113.9"},
                                 data={"name": "bad name", "image": "busybox", "pad": "x" * 500_000}, timeout=10)
        assert response.status_code == 400 and response.json()["status"] == "error"
        rows = audit_rows(database)
        assert [(row["action"], row["client_address"]) for row in rows] == [("api.create_container", "127.0.0.1")]
    with served(tmp_path, trusted="127.0.0.1") as (url, database):
        requests.post(f"{url}/container/create", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        assert [row["client_address"] for row in audit_rows(database)] == ["203.0.113.9"]


def test_the_master_reads_its_settings_without_loading_the_app():
    """app.py's master imports the package, its config and serving only: Flask and the app are
    the worker's (a master holding them keeps a second copy of the app in memory)."""
    probe = ("import sys, incus_api, incus_api.config, incus_api.web.serving; "
             "print(sorted(m for m in ('flask', 'pylxd', 'incus_api.factory') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
