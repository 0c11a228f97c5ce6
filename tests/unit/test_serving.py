"""The real server app.py runs (waitress, with the options app.py gives it): a body over the
app's limit is refused by waitress before the app reads it, and X-Forwarded-* reach the app's own
proxy check (waitress would otherwise drop them)."""
import socket
import threading

import pytest
import requests

from incus_api import MAX_REQUEST_BYTES
from incus_api.serving import waitress_options
from tests.conftest import API_HEADERS


@pytest.fixture
def app_overrides(tmp_path):
    return {"INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


@pytest.fixture
def waitress_url(app):
    import waitress

    options = {**waitress_options(app), "host": "127.0.0.1", "port": 0, "threads": 2}
    server = waitress.create_server(app, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(timeout=5)


def test_serve_options_carry_the_app_limit(app):
    options = waitress_options(app)
    assert options["max_request_body_size"] == MAX_REQUEST_BYTES == app.config["MAX_CONTENT_LENGTH"]
    assert (options["host"], options["port"]) == (app.config["HOST"], app.config["PORT"])


def raw_request(url, head, body=b""):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


def audit_rows(app):
    return app.extensions["incus_api"].db.query("SELECT * FROM audit_log")


def test_a_2_mib_body_gets_413_from_waitress_before_the_app_reads_it(app, waitress_url):
    size = 2 * 1024 * 1024
    head = (f"POST /container/create HTTP/1.1\r\nHost: localhost\r\nX-API-Hash: {API_HEADERS['X-API-Hash']}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n")
    # Only the headers and a first piece are sent: the answer comes without the rest of the body.
    answer = raw_request(waitress_url, head, b"name=" + b"a" * 1000)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert audit_rows(app) == []  # the app never saw the request


def test_a_body_within_the_limit_reaches_the_app(app, waitress_url):
    response = requests.post(f"{waitress_url}/container/create", headers=API_HEADERS,
                             data={"name": "bad name", "image": "busybox", "pad": "x" * 500_000})
    assert response.status_code == 400 and response.json()["status"] == "error"
    assert [row["action"] for row in audit_rows(app)] == ["api.create_container"]


def test_forwarded_for_reaches_the_app_only_from_a_trusted_proxy(tmp_path):
    """Waitress drops X-Forwarded-* by default; the options leave the decision to the app."""
    import waitress

    from incus_api import create_app

    for trusted, expected in (("127.0.0.1", "203.0.113.9"), ("", "127.0.0.1")):
        app = create_app({"DATABASE": str(tmp_path / f"db{trusted}"), "API_SECRET_KEY": "s", "SECRET_KEY": "k",
                          "INCUS_SOCKET": str(tmp_path / "none"), "TRUSTED_PROXIES": trusted},
                         instance_path=tmp_path / "instance")
        server = waitress.create_server(app, **{**waitress_options(app), "host": "127.0.0.1", "port": 0})
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            requests.post(f"http://127.0.0.1:{server.effective_port}/container/create",
                          headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        finally:
            server.close()
            thread.join(timeout=5)
        assert [row["client_address"] for row in audit_rows(app)] == [expected], trusted
