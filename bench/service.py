"""The service under test and its clients.

- ``Service``: ``app.py`` (the front with TLS, gunicorn behind with one gthread worker, threads=32)
  in a subprocess on a free loopback port, with a temporary database and certificate, a known API
  secret and no periodic NAT sync; its processes and their memory;
- ``ApiClient``: the JSON API with the API hash; ``Dashboard``: a logged-in browser session;
- ``TrafficSampler``: the service's traffic pass in this process (built through the public app
  factory, ``incus_api.create_app``), so that its wall and CPU time can be measured apart from HTTP.
"""
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from floor import BENCH_TAG, ROOT
from incus_api.host.certificate import make_self_signed

TRAFFIC_INTERVAL = 60  # the sampler's setting, and the interval its CPU share is given for


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """app.py in a subprocess: temporary DB, known API secret, loopback, no periodic NAT sync."""

    def __init__(self, socket_path, bridge):
        self.tmp = Path(tempfile.mkdtemp(prefix="incus-api-bench-"))
        self.port = free_port()
        self.secret = secrets.token_hex(16)
        self.password = secrets.token_urlsafe(12)
        (self.tmp / "config.env").write_text("")
        # As install.sh serves it, HTTPS (the certificate in the bench's folder, not instance/).
        self.cert = str(self.tmp / "cert.pem")
        make_self_signed(self.cert, str(self.tmp / "key.pem"), ["127.0.0.1"])
        self.database = self.tmp / "bench.sqlite3"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
            "API_SECRET_KEY": self.secret, "SECRET_KEY": secrets.token_hex(16),
            "DATABASE": str(self.database), "HOST": "127.0.0.1", "PORT": str(self.port),
            "INCUS_SOCKET": socket_path, "INCUS_BRIDGE": bridge, "NAT_SYNC_INTERVAL": "0",
            "NAT_TAG_PREFIX": BENCH_TAG, "INCUS_API_CONFIG": str(self.tmp / "config.env"),
            "ADMIN_USERNAME": "bench", "ADMIN_PASSWORD": self.password, "LOG_LEVEL": "WARNING",
            "TLS_CERT": self.cert, "TLS_KEY": str(self.tmp / "key.pem"),
            "BACKUP_DIR": str(self.tmp / "backups"),
        }
        self.base = f"https://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        subprocess.run([sys.executable, "init_db.py"], cwd=ROOT, env=self.env, check=True, capture_output=True)
        self.log_file = open(self.tmp / "service.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=self.env,
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited: {(self.tmp / 'service.log').read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):  # the worker answers (the front alone: 503)
                if self.session().get(self.base + "/login", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("the service did not answer in 30 s")

    def session(self):
        """A client of the service: loopback only (never a proxy), its certificate trusted."""
        session = requests.Session()
        session.trust_env, session.verify = False, self.cert
        return session

    def pids(self):
        """app.py (gunicorn's master) and its children, the front and the worker: the service's processes."""
        pids = [self.proc.pid]
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in (task / "children").read_text().split()]
        return pids

    def memory_kb(self, peak=False):
        """The service's memory: the proportional set size (Pss, shared pages split between the
        processes that share them) of app.py's processes. ``peak``: the children's high-water marks
        (VmHWM, shared pages whole, so it errs high) plus the master's Pss."""
        total = 0
        for pid in self.pids():
            worker_peak = peak and pid != self.proc.pid
            path, field = (f"/proc/{pid}/status", "VmHWM:") if worker_peak else (f"/proc/{pid}/smaps_rollup", "Pss:")
            with contextlib.suppress(OSError):
                for line in Path(path).read_text().splitlines():
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
        return total or None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()
            with contextlib.suppress(OSError):  # kept for a look after a run that went wrong
                shutil.copyfile(self.tmp / "service.log", "/tmp/incus-api-web-bench-service.log")
        shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_seconds():
    """CPU time of this process and of the children it waited for (nft)."""
    own = time.process_time()
    children = os.times()
    return own + children.children_user + children.children_system


class TrafficSampler:
    """The service's traffic pass, run in this process on a database of its own (the service's
    settings), so that its wall and CPU time can be measured apart from HTTP.

    Built through the public factory (``create_app`` and ``app.extensions["incus_api"]``), not
    from the service objects' constructors, so the bench does not follow their signatures. The
    factory starts no background work (no NAT sync, no scheduler): only ``sample()`` runs."""

    def __init__(self, service):
        from incus_api import create_app

        self.tmp = Path(tempfile.mkdtemp(prefix="incus-api-bench-traffic-"))
        config = {
            "DATABASE": str(self.tmp / "traffic.sqlite3"), "API_SECRET_KEY": "bench", "SECRET_KEY": "bench",
            "INCUS_SOCKET": service.env["INCUS_SOCKET"], "INCUS_BRIDGE": service.env["INCUS_BRIDGE"],
            "NAT_TAG_PREFIX": BENCH_TAG, "NAT_SYNC_INTERVAL": 0, "TRAFFIC_INTERVAL": TRAFFIC_INTERVAL,
            "LOG_LEVEL": service.env["LOG_LEVEL"],
        }
        app = create_app(config, instance_path=self.tmp)
        self.traffic = app.extensions["incus_api"].services.traffic

    def sample(self):
        return self.traffic.sample()

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


IDLE_REUSE_SECONDS = 4  # the front's keep-alive idle limit is 5 s


class ApiClient:
    def __init__(self, service):
        self.base = service.base
        self.session = service.session()
        self.session.headers["X-API-Hash"] = hashlib.sha256(service.secret.encode()).hexdigest()
        self.last_call = 0.0

    def call(self, method, path, **kwargs):
        if time.monotonic() - self.last_call > IDLE_REUSE_SECONDS:
            # The front closes a connection idle for 5 s; a request sent on it as it closes is lost
            # ("Remote end closed connection without response": a POST is not retried).
            self.session.close()
        try:
            response = self.session.request(method, self.base + path, timeout=600, **kwargs)
        finally:
            self.last_call = time.monotonic()
        if response.status_code not in (200, 202):
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        body = response.json()
        if body.get("status") == "error":
            raise RuntimeError(f"{method} {path}: {body.get('message')}")
        return body

    def info(self, name):
        return self.call("GET", f"/container/{name}/info")

    def exec(self, name, command):
        return self.call("POST", f"/container/{name}/exec", data={"command": command})

    def action(self, name, action):
        return self.call("POST", f"/container/{name}/action", data={"action": action})

    def create(self, name, image="busybox", **plan):
        return self.call("POST", "/container/create", data={"name": name, "image": image, **plan})

    def containers(self):
        return self.call("GET", "/containers")

    def add_rule(self, name, host_port, container_port=80, protocol="tcp"):
        return self.call("POST", f"/container/{name}/add_nat_rule",
                         data={"host_port": host_port, "container_port": container_port, "protocol": protocol})

    def delete_rule(self, rule_id):
        return self.call("DELETE", f"/container/nat_rule/{rule_id}")

    def rules(self, name):
        return self.call("GET", f"/container/{name}/nat_rules")

    def traffic(self, name=None):
        return self.call("GET", f"/container/{name}/traffic" if name else "/traffic")


class Dashboard:
    """A logged-in browser session (login form with its CSRF token)."""

    def __init__(self, service):
        self.base = service.base
        self.session = service.session()
        page = self.session.get(self.base + "/login", timeout=30).text
        token = re.search(r'name="csrf_token"\s+value="([^"]+)"', page).group(1)
        response = self.session.post(self.base + "/login", timeout=30, allow_redirects=False,
                                     headers={"Referer": self.base + "/login"}, data={
            "username": "bench", "password": service.password, "csrf_token": token})
        if response.status_code != 302 or "/login" in response.headers.get("Location", ""):
            raise RuntimeError(f"dashboard login failed: HTTP {response.status_code}")
        self.get("/")  # 200 only when logged in (a redirect to /login otherwise)

    def get(self, path):
        response = self.session.get(self.base + path, timeout=60, allow_redirects=False)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
        return response.text
