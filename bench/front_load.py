"""The front's CPU time per request under a repeatable load (issue 18, point 2).

app.py is started as the tests' ``service`` fixture starts it (HTTPS, its own database, config,
certificate and port), then 16 threads, each with a ``requests.Session`` (kept-alive HTTPS), call
the bench's two routes, ``GET /container/<name>/info`` and ``POST /container/<name>/exec`` (a
form body), alternately, with no Incus behind the app (its JSON error, at once; the shared Incus
daemon is left alone). The front's CPU time (utime + stime from ``/proc/<pid>/stat``) is read
before and after: microseconds of front CPU per request (and the worker's, for scale). Each
process shares two cores with the others, so CPU time, not requests per second, is the measure.

    .venv/bin/python bench/front_load.py [--requests 4000] [--clients 16] [--repeat 3] [--front FILE]

``--front FILE`` serves with another ``front.py`` (e.g. the one of an earlier commit, saved with
``git show REV:incus_api/web/front.py > /tmp/front_before.py``) so that two versions can be
compared on the same machine in the same minute.
"""
import argparse
import collections
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from incus_api.host.certificate import make_self_signed  # noqa: E402

# No Incus behind it: the worker answers at once (a JSON 503 of the app's own), the front does its whole work.
INCUS_SOCKET = "/nonexistent/incus-front-load.socket"
# app.py, with the front's module taken from another file when asked.
LAUNCH = """
import importlib.util, runpy, sys
if sys.argv[1]:
    spec = importlib.util.spec_from_file_location("incus_api.web.front", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    sys.modules["incus_api.web.front"] = module
    spec.loader.exec_module(module)
sys.argv = ["app.py"]
runpy.run_path("app.py", run_name="__main__")
"""
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class Service:
    def __init__(self, front_file=""):
        self.tmp = Path(tempfile.mkdtemp(prefix="incus-api-front-load-"))
        (self.tmp / "config.env").write_text("")
        self.cert = str(self.tmp / "cert.pem")
        make_self_signed(self.cert, str(self.tmp / "key.pem"), ["localhost", "127.0.0.1"])
        self.port = free_port()
        self.secret = secrets.token_hex(16)
        self.env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
                    "API_SECRET_KEY": self.secret, "SECRET_KEY": secrets.token_hex(16),
                    "DATABASE": str(self.tmp / "db.sqlite3"), "HOST": "127.0.0.1", "PORT": str(self.port),
                    "INCUS_SOCKET": INCUS_SOCKET, "NAT_SYNC_INTERVAL": "0", "TRAFFIC_INTERVAL": "0",
                    "NAT_TAG_PREFIX": f"incus-api-front-load-{secrets.token_hex(3)}:",
                    "INCUS_API_CONFIG": str(self.tmp / "config.env"), "ADMIN_USERNAME": "admin",
                    "ADMIN_PASSWORD": secrets.token_urlsafe(12), "LOG_LEVEL": "WARNING",
                    "TLS_CERT": self.cert, "TLS_KEY": str(self.tmp / "key.pem")}
        self.api = {"X-API-Hash": hashlib.sha256(self.secret.encode()).hexdigest()}
        self.base = f"https://127.0.0.1:{self.port}"
        subprocess.run([sys.executable, "init_db.py"], cwd=ROOT, env=self.env, check=True, capture_output=True)
        self.log = open(self.tmp / "service.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, front_file], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.tmp / "service.log").read_text()[-2000:])
            with contextlib.suppress(requests.RequestException):
                if self.session().get(self.base + "/login", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        self.front, self.worker = self.children()

    def children(self):
        children = [int(pid) for pid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        listening = subprocess.run(["ss", "-Hltnp", f"sport = :{self.port}"], capture_output=True, text=True).stdout
        front = int(re.search(r"pid=(\d+)", listening).group(1))
        return front, next(pid for pid in children if pid != front)

    def session(self):
        http = requests.Session()
        http.trust_env, http.verify = False, self.cert
        return http

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load(service, total, clients):
    """``total`` requests from ``clients`` threads; returns (front µs/request, worker µs/request,
    requests/s, {(status, the app's own answer): count})."""
    per_client = total // clients
    statuses = collections.Counter()
    sessions = [service.session() for _ in range(clients)]
    for index, http in enumerate(sessions):  # connected (TLS handshake) before the count starts
        http.get(service.base + f"/container/front-load-{index}/info", headers=service.api, timeout=30)
    barrier = threading.Barrier(clients + 1)

    def client(index, http):
        barrier.wait()
        for k in range(per_client):
            if k % 2:
                answer = http.post(service.base + f"/container/front-load-{index}/exec", data={"command": "true"},
                                   headers=service.api, timeout=30)
            else:
                answer = http.get(service.base + f"/container/front-load-{index}/info", headers=service.api, timeout=30)
            statuses[answer.status_code, "Incus" in answer.text] += 1

    threads = [threading.Thread(target=client, args=(index, http)) for index, http in enumerate(sessions)]
    for thread in threads:
        thread.start()
    front0, worker0 = cpu_seconds(service.front), cpu_seconds(service.worker)
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    front1, worker1 = cpu_seconds(service.front), cpu_seconds(service.worker)
    done = per_client * clients
    for http in sessions:
        http.close()
    return (front1 - front0) / done * 1e6, (worker1 - worker0) / done * 1e6, done / elapsed, dict(statuses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--front", default="", help="serve with this front.py instead of the repository's")
    args = parser.parse_args()
    service = Service(os.path.abspath(args.front) if args.front else "")
    try:
        load(service, 200, args.clients)  # warm: imports, caches, kept backend connections
        fronts = []
        for _ in range(args.repeat):
            front_us, worker_us, rate, statuses = load(service, args.requests, args.clients)
            fronts.append(front_us)
            print(f"front {front_us:7.1f} µs/request  worker {worker_us:7.1f} µs/request  {rate:6.1f} req/s"
                  f"  answers {statuses}", flush=True)
        print(f"median front CPU: {statistics.median(fronts):.1f} µs/request ({args.front or 'repository front.py'})")
    finally:
        service.stop()


if __name__ == "__main__":
    main()
