import contextlib
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import websocket

from incus_api.host.certificate import make_self_signed
from tests.conftest import INCUS_SOCKET, ROOT, TEST_TAG_PREFIX

PROBE = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    print(data.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip())
except OSError as exc:
    print("ERROR", type(exc).__name__, exc)
    sys.exit(1)
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class TestHost:
    """A network namespace of our own, wired to the host by a veth pair: a client outside the host."""

    name: str
    host_ip: str  # the host's address on the veth, i.e. the address the client connects to
    client_ip: str

    def http_get(self, address, port):
        """GET / from inside the namespace; the body, or None when the connection failed."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", PROBE, address, str(port)],
            capture_output=True, text=True, timeout=20,
        )
        return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture
def test_host():
    token = secrets.token_hex(3)
    subnet = 200 + secrets.randbelow(50)
    name, veth_host, veth_ns = f"t-ns-{token}", f"tvh{token}", f"tvn{token}"
    host_ip, client_ip = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
    try:
        ip("netns", "add", name)
        ip("link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
        ip("link", "set", veth_ns, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", veth_host)
        ip("link", "set", veth_host, "up")
        for args in (("addr", "add", f"{client_ip}/30", "dev", veth_ns), ("link", "set", veth_ns, "up"),
                     ("link", "set", "lo", "up"), ("route", "add", "default", "via", host_ip)):
            ip("netns", "exec", name, "ip", *args)
        yield TestHost(name=name, host_ip=host_ip, client_ip=client_ip)
    finally:
        ip("link", "del", veth_host, check=False)
        ip("netns", "del", name, check=False)


def free_port():
    """A host port unlikely to be in use or reserved: 20000-29999."""
    return 20000 + secrets.randbelow(10000)


def kernel_nat_rules():
    return subprocess.run(["iptables-legacy", "-t", "nat", "-S", "PREROUTING"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def forward_policy_drop_later():
    """``drop(backend)``: FORWARD policy DROP in ``iptables-legacy`` or ``iptables-nft``, as Docker
    sets it; every policy set is restored afterwards (the ``app`` fixture removes its rules)."""
    nft_had_filter = subprocess.run(["nft", "list", "table", "ip", "filter"], capture_output=True).returncode == 0
    changed = []

    def drop(backend):
        subprocess.run([backend, "-P", "FORWARD", "DROP"], check=True)
        changed.append(backend)

    yield drop
    for backend in changed:
        subprocess.run([backend, "-P", "FORWARD", "ACCEPT"], check=True)
    if not nft_had_filter and "incus-api" not in subprocess.run(
            ["iptables-nft", "-S", "FORWARD"], capture_output=True, text=True).stdout:
        subprocess.run(["nft", "delete", "table", "ip", "filter"], check=False)


@pytest.fixture
def service():
    """app.py in a subprocess, as a host runs it (the front with TLS, gunicorn behind): temporary DB
    and config, known API secret and admin, loopback. Its certificate is made by the test
    (``TLS_CERT``: the repository's instance folder is left alone); ``service.session()`` and
    ``service.websocket()`` trust it. Extra settings: ``@pytest.mark.parametrize("service_env", ...)``."""
    tmp = Path(tempfile.mkdtemp(prefix="incus-api-service-"))
    (tmp / "config.env").write_text("")
    make_self_signed(str(tmp / "cert.pem"), str(tmp / "key.pem"), ["localhost", "127.0.0.1"])
    port, secret, password = free_port(), "console-test-secret", secrets.token_urlsafe(12)
    env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
           "API_SECRET_KEY": secret, "SECRET_KEY": secrets.token_hex(16), "DATABASE": str(tmp / "db.sqlite3"),
           "HOST": "127.0.0.1", "PORT": str(port), "INCUS_SOCKET": INCUS_SOCKET, "NAT_SYNC_INTERVAL": "0",
           "TRAFFIC_INTERVAL": "0", "NAT_TAG_PREFIX": f"{TEST_TAG_PREFIX}-{secrets.token_hex(3)}:",
           "INCUS_API_CONFIG": str(tmp / "config.env"), "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": password,
           "LOG_LEVEL": "INFO", "TLS_CERT": str(tmp / "cert.pem"), "TLS_KEY": str(tmp / "key.pem")}
    subprocess.run([sys.executable, "init_db.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    log = open(tmp / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.base, proc.password, proc.log, proc.cert = f"https://127.0.0.1:{port}", password, tmp / "service.log", str(tmp / "cert.pem")
    proc.api = {"X-API-Hash": hashlib.sha256(secret.encode()).hexdigest()}

    def session():
        http = requests.Session()
        http.trust_env, http.verify = False, proc.cert
        return http

    def open_websocket(url, **kwargs):
        return websocket.create_connection(url, sslopt={"ca_certs": proc.cert}, **kwargs)

    def login():
        """A session signed in as the admin, as a browser does it (over HTTPS the CSRF check wants
        the Referer of this very site)."""
        http = session()
        page = http.get(proc.base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = http.post(proc.base + "/login", data={"username": "admin", "password": password, "csrf_token": token},
                         headers={"Referer": proc.base + "/login"}, timeout=10, allow_redirects=False)
        assert done.status_code == 302, done.text[:300]
        return http

    proc.session, proc.websocket, proc.login = session, open_websocket, login
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the worker answers (the front alone answers 503)
        assert proc.poll() is None, (tmp / "service.log").read_text()
        with contextlib.suppress(requests.RequestException):
            if session().get(proc.base + "/login", timeout=1).status_code == 200:
                break
        time.sleep(0.1)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()
