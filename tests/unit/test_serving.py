"""The real server app.py runs (the front and gunicorn, with the options app.py gives them, in a
subprocess as app.py runs it): HTTPS by default with a self-signed certificate made at start, a
real one from TLS_CERT/TLS_KEY, plain HTTP with TLS=off; a body over the app's limit is refused
before the app reads it, and X-Forwarded-* reach the app's own proxy check (gunicorn trusts no
proxy itself)."""
import contextlib
import datetime
import json
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from incus_api.web.serving import THREADS, WorkerApp, gunicorn_options
from tests.conftest import API_HEADERS, API_SECRET, ROOT

SERVER = """
import json, sys
from incus_api import create_app
from incus_api.web.serving import serve
config = {"DATABASE": sys.argv[1], "API_SECRET_KEY": sys.argv[2], "SECRET_KEY": "k",
          "INCUS_SOCKET": sys.argv[1] + ".none", "HOST": "127.0.0.1", "PORT": int(sys.argv[3]),
          "TLS": True, "TLS_CERT": "", "TLS_KEY": "", "TRUSTED_PROXIES": "", **json.loads(sys.argv[4])}
serve(config, lambda: create_app(config, instance_path=sys.argv[1] + ".instance"), instance_path=sys.argv[1] + ".instance")
"""


@pytest.fixture
def app_overrides(tmp_path):
    return {"INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    def __init__(self, url, database, output):
        self.url, self.database, self.output = url, database, output
        self.cert = str(database) + ".instance/tls/cert.pem"


def start(tmp_path, name=None, **config):
    database, port = tmp_path / f"{name or time.monotonic_ns()}.sqlite3", free_port()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    output = open(tmp_path / f"{database.name}.log", "a+b")  # appended: the test reads it meanwhile
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(database), API_SECRET, str(port), json.dumps(config)],
                            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    return proc, port, database, output


@contextlib.contextmanager
def served(tmp_path, name=None, **config):
    """The app under the front and gunicorn in a subprocess (``name``: its database's, the
    instance folder beside it); yields a ``Served``."""
    proc, port, database, output = start(tmp_path, name, **config)
    scheme = "https" if config.get("TLS", True) else "http"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            output.seek(0)
            assert proc.poll() is None, output.read().decode()
            with contextlib.suppress(OSError, requests.RequestException):  # the worker answers (not the front's 503)
                cert = str(database) + ".instance/tls/cert.pem"
                if requests.get(f"{scheme}://127.0.0.1:{port}/login", timeout=1,
                                verify=config.get("TLS_CERT") or cert).status_code != 503:
                    break
            time.sleep(0.1)
        output.seek(0)
        yield Served(f"{scheme}://127.0.0.1:{port}", database, output.read().decode())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        output.close()


def audit_rows(database):
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM audit_log").fetchall()


def test_serve_options_carry_the_config(app):
    options = gunicorn_options(app.config, WorkerApp(lambda: app), "/run/x/worker.sock")
    assert options["bind"] == ["unix:/run/x/worker.sock"] and options["umask"] == 0o077
    assert (options["workers"], options["worker_class"], options["threads"]) == (1, "gthread", THREADS)
    assert THREADS >= 8 + 16  # eight consoles and the dashboard at once
    assert options["forwarded_allow_ips"] == "" and options["secure_scheme_headers"] == {}


def raw_request(served, head, body=b""):
    host, port = served.url.split("://")[1].split(":")
    context = ssl.create_default_context(cafile=served.cert)
    with socket.create_connection((host, int(port)), timeout=10) as plain, \
            context.wrap_socket(plain, server_hostname=host) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer.decode("latin-1")


def test_bodies_over_and_within_the_limit_and_forwarded_headers(tmp_path):
    with served(tmp_path) as server:
        size = 2 * 1024 * 1024
        head = (f"POST /container/create HTTP/1.1\r\nHost: localhost\r\nX-API-Hash: {API_HEADERS['X-API-Hash']}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n"
                "Connection: close\r\n\r\n")
        # Only the headers and a first piece are sent: the answer comes without the rest of the body.
        answer = raw_request(server, head, b"name=" + b"a" * 1000)
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        assert audit_rows(server.database) == []  # the app never saw the request

        response = requests.post(f"{server.url}/container/create", headers={**API_HEADERS, "X-Forwarded-For": "203.0.113.9"},
                                 data={"name": "bad name", "image": "busybox", "pad": "x" * 500_000}, timeout=10,
                                 verify=server.cert)
        assert response.status_code == 400 and response.json()["status"] == "error"
        rows = audit_rows(server.database)
        assert [(row["action"], row["client_address"]) for row in rows] == [("api.create_container", "127.0.0.1")]
    with served(tmp_path, TRUSTED_PROXIES="127.0.0.1") as server:
        requests.post(f"{server.url}/container/create", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10,
                      verify=server.cert)
        assert [row["client_address"] for row in audit_rows(server.database)] == ["203.0.113.9"]


def test_https_by_default_with_a_self_signed_certificate_made_at_start(tmp_path):
    with served(tmp_path, "kept", PUBLIC_HOST="panel.example.com") as server:
        from cryptography import x509

        certificate = x509.load_pem_x509_certificate(open(server.cert, "rb").read())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "panel.example.com" in names.get_values_for_type(x509.DNSName)
        assert socket.gethostname() in names.get_values_for_type(x509.DNSName)
        assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
        assert certificate.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3000)
        assert oct(os.stat(server.cert.replace("cert.pem", "key.pem")).st_mode & 0o777) == "0o600"
        fingerprint = certificate.fingerprint(certificate.signature_hash_algorithm).hex(":").upper()
        assert f"TLS SHA-256 fingerprint: {fingerprint}" in server.output
        pin = server.output.split("TLS public key pin (curl --pinnedpubkey): ")[1].split()[0]

        # curl, as the README has it: --cacert, or the pinned key; never -k.
        for trust in (["--cacert", server.cert], ["--cacert", server.cert, "--pinnedpubkey", pin]):
            done = subprocess.run(["curl", "-sS", "--noproxy", "*", *trust, "-H", f"X-API-Hash: {API_HEADERS['X-API-Hash']}",
                                   f"{server.url}/container/x/info", "-o", "/dev/null", "-w", "%{http_code}"],
                                  capture_output=True, text=True, timeout=20)
            assert done.stdout in ("404", "503"), done.stderr
        readme = subprocess.run(  # the README's way: CURL_CA_BUNDLE, then its examples as they are
            ["curl", "-s", "--noproxy", "*", "-H", f"X-API-Hash: {API_HEADERS['X-API-Hash']}", f"{server.url}/container/x/info",
             "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True, text=True, timeout=20,
            env={**os.environ, "CURL_CA_BUNDLE": server.cert})
        assert readme.stdout in ("404", "503"), readme.stderr
        pinned_only = subprocess.run(["curl", "-s", "--noproxy", "*", "-k", "--pinnedpubkey", pin, f"{server.url}/login",
                                      "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True, text=True, timeout=20)
        assert pinned_only.stdout == "200"
        wrong = subprocess.run(["curl", "-sS", "--noproxy", "*", "-k", "--pinnedpubkey",
                                "sha256//" + "A" * 43 + "=", f"{server.url}/login"], capture_output=True, text=True, timeout=20)
        assert wrong.returncode != 0
        with pytest.raises(requests.exceptions.SSLError):  # an unknown self-signed certificate is refused
            requests.get(f"{server.url}/login", timeout=10)
        login = requests.get(f"{server.url}/login", timeout=10, verify=server.cert)
        assert login.status_code == 200 and "Strict-Transport-Security" not in login.headers
        assert "Secure" in login.headers["Set-Cookie"]
        with pytest.raises(requests.exceptions.ConnectionError):  # plain HTTP to the HTTPS port: nothing served
            requests.get(server.url.replace("https", "http") + "/login", timeout=10)
    with served(tmp_path, "kept") as again:  # kept: the same certificate at the next start
        assert again.cert == server.cert and f"TLS SHA-256 fingerprint: {fingerprint}" in again.output


def test_a_given_certificate_is_served_with_hsts_and_tls_off_serves_http(tmp_path):
    from incus_api.host.certificate import make_self_signed

    cert, key = tmp_path / "real.pem", tmp_path / "real.key"
    make_self_signed(str(cert), str(key), ["localhost", "127.0.0.1"])
    with served(tmp_path, TLS_CERT=str(cert), TLS_KEY=str(key)) as server:
        login = requests.get(f"{server.url}/login", timeout=10, verify=str(cert))
        assert login.status_code == 200 and login.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "from TLS_CERT" in server.output and not os.path.exists(server.cert)
    with served(tmp_path, TLS=False) as server:
        login = requests.get(f"{server.url}/login", timeout=10)
        assert login.status_code == 200 and server.url.startswith("http://")
        assert "Strict-Transport-Security" not in login.headers and "TLS: off" in server.output


def test_a_half_given_certificate_stops_the_service_with_a_clear_message(tmp_path):
    proc, _port, _database, output = start(tmp_path, TLS_CERT=str(tmp_path / "missing.pem"), TLS_KEY="")
    assert proc.wait(timeout=20) != 0
    output.seek(0)
    assert "TLS_CERT and TLS_KEY go together" in output.read().decode()


def test_the_front_is_a_process_of_its_own_and_gunicorn_forks_with_no_other_thread(tmp_path):
    """The front runs in a process app.py forks before gunicorn starts, so gunicorn's master has
    one thread when it forks the worker: a fork beside a thread serving TLS can leave OpenSSL's
    locks held in the worker for ever (its first scrypt, a login, hung)."""
    with served(tmp_path) as server:
        port = int(server.url.rsplit(":", 1)[1])
        listeners = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
        front = int(re.search(r"pid=(\d+)", listeners).group(1))
        master = int(Path(f"/proc/{front}/stat").read_text().split(") ")[1].split()[1])  # its parent
        assert len(os.listdir(f"/proc/{master}/task")) == 1
        children = {int(pid) for task in os.listdir(f"/proc/{master}/task")
                    for pid in Path(f"/proc/{master}/task/{task}/children").read_text().split()}
        assert front in children and len(children) == 2  # the front and gunicorn's worker
        login = requests.get(f"{server.url}/login", timeout=10, verify=server.cert)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        answer = requests.post(f"{server.url}/login", timeout=10, verify=server.cert, cookies=login.cookies,
                               headers={"Referer": f"{server.url}/login"},
                               data={"username": "admin", "password": "wrong-password", "csrf_token": token})
        assert answer.status_code == 401  # the worker checked a password (scrypt) and answered


def test_the_front_keeps_its_connection_to_the_worker_between_requests(tmp_path):
    """Kept connections spare gunicorn's one accepting thread an accept and a close per request."""
    with served(tmp_path) as server:
        session = requests.Session()
        session.trust_env, session.verify = False, server.cert
        for _ in range(5):
            assert session.get(f"{server.url}/login", timeout=10).status_code == 200
        port = int(server.url.rsplit(":", 1)[1])
        listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
        front = re.search(r"pid=(\d+)", listening).group(1)
        sockets = [line.split() for line in subprocess.run(["ss", "-Hxp"], capture_output=True, text=True).stdout.splitlines()]
        worker_ends = {fields[5] for fields in sockets if fields[4].endswith("worker.sock")}  # their inodes
        to_worker = [fields for fields in sockets if f"pid={front}," in fields[-1] and fields[7] in worker_ends]
        assert len(to_worker) == 1, to_worker  # one connection, used five times


def test_the_master_reads_its_settings_without_loading_the_app():
    """app.py's master imports the package, its config and serving only: Flask and the app are
    the worker's (a master holding them keeps a second copy of the app in memory)."""
    probe = ("import sys, incus_api, incus_api.config, incus_api.web.serving; "
             "print(sorted(m for m in ('flask', 'pylxd', 'incus_api.factory') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
