#!/usr/bin/env python3
"""Benchmark of incus-api-web against the Incus floor (issue 8).

For N busybox containers (``bench-0`` .. ``bench-<N-1>``, created once and reused between runs)
it starts the service (``app.py``, gunicorn, one gthread worker, threads=32) on a free loopback port with a temporary
database, and times every operation through HTTP next to the raw Incus REST call that fetches the
same data over the unix socket (the floor), in the same run and interleaved with it, because this
machine is noisy. Reports median / p95 / ratio, the service's resident memory, and 16 concurrent
clients calling info and exec. Writes ``bench/results.json`` and the table into README.md
(between ``<!-- bench:start -->`` and ``<!-- bench:end -->``).

    sudo /path/to/venv/bin/python bench/bench.py                 # N = 40 then 200
    sudo /path/to/venv/bin/python bench/bench.py --counts 40 --quick
    sudo /path/to/venv/bin/python bench/bench.py --cleanup       # delete the bench-* containers

Needs root (iptables), a running Incus with the ``busybox`` image (built by image/busybox.sh when
missing) and the project's Python environment. All traffic stays on loopback and the unix socket.
"""
import argparse
import concurrent.futures
import contextlib
import datetime
import fcntl
import json
import math
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from pylxd import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from incus_api.incus.exec import ExecStreams  # noqa: E402
from incus_api.nat import CHAIN, XTABLES_LOCK, Forward, NatTable  # noqa: E402
from incus_api.service.addresses import BridgeNetwork, used_ipv4  # noqa: E402

BENCH_TAG = "incus-api-bench:"        # our kernel rules; the service's own and the tests' differ
NAME = re.compile(r"bench-(\d+)")
TMP_PREFIX = "bench-tmp-"
FILLER_FIRST_PORT = 50000               # the 5,000 rules present: 50000..54999/tcp
MEASURED_FIRST_PORT = 45000             # the rules added and deleted while timing
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics ------------------------------------------------------------------------------

def summary(samples):
    if not samples:
        return None
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 2),
        "min_ms": round(ordered[0], 2),
        "n": len(ordered),
    }


def clock(fn, *args):
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1000


def timed_in_turn(i, calls):
    """Time each ``(call, samples)`` once; which goes first alternates with ``i`` (same noise for both)."""
    for call, samples in (reversed(calls) if i % 2 else calls):
        samples.append(clock(call))


# -- the floor: raw Incus REST over the unix socket -------------------------------------------

class Floor:
    """Raw Incus REST calls through pylxd's API node (no pylxd model objects)."""

    def __init__(self, socket_path, bridge):
        self.socket_path = socket_path
        self.bridge = bridge
        self._local = threading.local()

    @property
    def api(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(endpoint=self.socket_path)
        return client.api

    def wait(self, response, timeout=120):
        body = response.json()
        if body.get("type") != "async":
            return body.get("metadata")
        operation = body["operation"].rsplit("/", 1)[-1]
        result = self.api.operations[operation].wait.get(params={"timeout": timeout}).json()["metadata"]
        if result["status_code"] != 200:
            raise RuntimeError(f"Incus operation failed: {result.get('err') or result.get('status')}")
        return result.get("metadata")

    def instances(self):
        return self.api.instances.get(params={"recursion": 1}).json()["metadata"]

    def instance(self, name):
        return self.api.instances[name].get(params={"recursion": 1}).json()["metadata"]

    def leases(self):
        return self.api.networks[self.bridge].leases.get().json()["metadata"]

    def list_and_leases(self):
        return self.instances(), self.leases()

    def exec(self, name, argv):
        """What the service's exec does, bare: POST exec with websockets, connect stdin, stdout,
        stderr and control, end stdin, read both outputs to their end, wait for the operation."""
        body = {"command": argv, "wait-for-websocket": True, "interactive": False,
                "environment": {"HOME": "/root", "USER": "root", "LANG": "C.UTF-8"}}
        response = self.api.instances[name]["exec"].post(json=body)
        answer = response.json()
        operation = answer["operation"].rsplit("/", 1)[-1]
        with ExecStreams(self.socket_path, operation, answer["metadata"]["metadata"]["fds"]) as streams:
            streams.send_stdin(b"")
            streams.drain(time.monotonic() + 120, 1024 * 1024)
            metadata = self.wait(response)
        return metadata.get("return")

    def create(self, name, image="busybox", start=True, devices=None, config=None):
        body = {"name": name, "type": "container", "source": {"type": "image", "alias": image}, "start": start,
                "devices": devices or {}, "config": config or {}}
        self.wait(self.api.instances.post(json=body))

    def guarded_nic(self):
        """The NIC the service writes at create (a free address pinned, MAC/IPv4 filtering, port
        isolation), so that the floor's create does the same device work. Chosen untimed."""
        network = BridgeNetwork.from_incus(self.api.networks[self.bridge].get().json()["metadata"])
        leases = self.api.networks[self.bridge].leases.get().json()["metadata"]
        used = used_ipv4(network, leases)
        # From the top of the subnet: the service's create, timed next to this one, takes from the bottom.
        address = next(str(h) for h in reversed(list(network.subnet.hosts())) if str(h) not in used)
        return {"eth0": {"type": "nic", "network": self.bridge, "name": "eth0", "ipv4.address": address,
                         "security.mac_filtering": "true", "security.ipv4_filtering": "true",
                         "security.port_isolation": "true"}}

    def change_state(self, name, action, force=False):
        self.wait(self.api.instances[name].state.put(json={"action": action, "force": force, "timeout": 30}))

    def delete(self, name):
        """What the service's delete does: forced stop, then delete."""
        with contextlib.suppress(Exception):
            self.change_state(name, "stop", force=True)
        self.wait(self.api.instances[name].delete())


# -- the service -----------------------------------------------------------------------------

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
        self.database = self.tmp / "bench.sqlite3"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
            "API_SECRET_KEY": self.secret, "SECRET_KEY": secrets.token_hex(16),
            "DATABASE": str(self.database), "HOST": "127.0.0.1", "PORT": str(self.port),
            "INCUS_SOCKET": socket_path, "INCUS_BRIDGE": bridge, "NAT_SYNC_INTERVAL": "0",
            "NAT_TAG_PREFIX": BENCH_TAG, "INCUS_API_CONFIG": str(self.tmp / "config.env"),
            "ADMIN_USERNAME": "bench", "ADMIN_PASSWORD": self.password, "LOG_LEVEL": "WARNING",
        }
        self.base = f"http://127.0.0.1:{self.port}"
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
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.1)
        raise RuntimeError("the service did not start listening in 30 s")

    def pids(self):
        """The gunicorn master and its worker(s): the service's processes."""
        pids = [self.proc.pid]
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in (task / "children").read_text().split()]
        return pids

    def memory_kb(self, peak=False):
        """The service's memory: the proportional set size (Pss, shared pages split between the
        processes that share them) of the gunicorn master and its worker. ``peak``: the worker's
        high-water mark (VmHWM, shared pages whole, so it errs high) plus the master's Pss."""
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
        shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_seconds():
    """CPU time of this process and of the children it waited for (nft)."""
    own = time.process_time()
    children = os.times()
    return own + children.children_user + children.children_system


class TrafficSampler:
    """The service's traffic pass, run in this process on a database of its own (the service's
    settings), so that its wall and CPU time can be measured apart from HTTP."""

    def __init__(self, service):
        from incus_api import create_app

        self.tmp = Path(tempfile.mkdtemp(prefix="incus-api-bench-traffic-"))
        app = create_app({"DATABASE": str(self.tmp / "traffic.sqlite3"), "API_SECRET_KEY": "bench",
                          "SECRET_KEY": "bench", "INCUS_SOCKET": service.env["INCUS_SOCKET"],
                          "INCUS_BRIDGE": service.env["INCUS_BRIDGE"], "NAT_TAG_PREFIX": BENCH_TAG},
                         instance_path=self.tmp)
        self.traffic = app.extensions["incus_api"].services.traffic

    def sample(self):
        return self.traffic.sample()


class ApiClient:
    def __init__(self, service):
        self.base = service.base
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never a proxy
        self.session.headers["X-API-Hash"] = __import__("hashlib").sha256(service.secret.encode()).hexdigest()

    def call(self, method, path, **kwargs):
        response = self.session.request(method, self.base + path, timeout=120, **kwargs)
        if response.status_code != 200:
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
        self.session = requests.Session()
        self.session.trust_env = False
        page = self.session.get(self.base + "/login", timeout=30).text
        token = re.search(r'name="csrf_token"\s+value="([^"]+)"', page).group(1)
        response = self.session.post(self.base + "/login", timeout=30, allow_redirects=False, data={
            "username": "bench", "password": service.password, "csrf_token": token})
        if response.status_code != 302 or "/login" in response.headers.get("Location", ""):
            raise RuntimeError(f"dashboard login failed: HTTP {response.status_code}")
        self.get("/")  # 200 only when logged in (a redirect to /login otherwise)

    def get(self, path):
        response = self.session.get(self.base + path, timeout=60, allow_redirects=False)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
        return response.text


# -- kernel rules (python-iptables, in this process) ------------------------------------------

@contextlib.contextmanager
def xtables_locked():
    fd = os.open(XTABLES_LOCK, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tag(rule):
    return next((m.comment for m in rule.matches if m.name == "comment"), None)


def batch_add(forwards, tag_prefix=BENCH_TAG):
    """Many rules in one table commit (one rewrite of the table instead of one per rule)."""
    NatTable(tag_prefix).add_many(forwards)


def remove_bench_rules(keep=lambda tag: False):
    """Every rule tagged with BENCH_TAG (nat PREROUTING and filter FORWARD, legacy and nft)."""
    import iptc

    removed = 0
    with xtables_locked():
        for table_name, chain_name in (("nat", CHAIN), ("filter", "FORWARD")):
            table = iptc.Table(table_name)
            table.refresh()
            table.autocommit = False
            try:
                chain = iptc.Chain(table, chain_name)
                for rule in chain.rules:
                    tag = _tag(rule)
                    if tag and tag.startswith(BENCH_TAG) and not keep(tag):
                        chain.delete_rule(rule)
                        removed += 1
                table.commit()
            finally:
                table.autocommit = True
    iptables_nft = shutil.which("iptables-nft")
    if iptables_nft:
        listing = subprocess.run([iptables_nft, "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            if BENCH_TAG in line and line.startswith("-A "):
                subprocess.run([iptables_nft, "-w", "-D", *shlex.split(line)[1:]], capture_output=True)
                removed += 1
    return removed


class RawNat:
    """The floor of a NAT change: one python-iptables append / exact delete with the xtables lock,
    one read of the table and one write (no autocommit, which would read the table again)."""

    def __init__(self):
        import iptc

        self.iptc = iptc
        self.nat = NatTable(BENCH_TAG + "floor-")

    def _change(self, forwards, method):
        with xtables_locked():
            table = self.iptc.Table("nat")
            table.autocommit = False
            try:
                table.refresh()
                chain = self.iptc.Chain(table, CHAIN)
                for forward in forwards:
                    getattr(chain, method)(self.nat.rule_for(forward))
                table.commit()
            finally:
                table.close()
                table.autocommit = True

    def add(self, forward):
        self._change([forward], "append_rule")

    def delete(self, forward):
        self._change([forward], "delete_rule")

    def add_many(self, forwards):
        """What a sale's rules cost at the floor: one read and one write of the table for all."""
        self._change(forwards, "append_rule")

    def delete_many(self, forwards):
        self._change(forwards, "delete_rule")


# -- containers ------------------------------------------------------------------------------

def bench_index(name):
    match = NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def ensure_image(floor):
    try:
        floor.api.images.aliases["busybox"].get()
    except Exception:  # noqa: BLE001 - not there: build it
        log("building the busybox image (image/busybox.sh)")
        subprocess.run(["bash", str(ROOT / "image" / "busybox.sh")], check=True)


def ipv4_by_name(floor):
    by_hwaddr = {lease["hwaddr"].lower(): lease["address"] for lease in floor.leases() or []
                 if lease.get("hwaddr") and "." in lease.get("address", "")}
    found = {}
    for instance in floor.instances():
        if instance.get("status") != "Running":
            continue
        for key, value in (instance.get("config") or {}).items():
            if key.startswith("volatile.") and key.endswith(".hwaddr") and value.lower() in by_hwaddr:
                found[instance["name"]] = by_hwaddr[value.lower()]
    return found


def ensure_containers(floor, count, workers=4):
    """bench-0..bench-<count-1> exist and run (reused); higher-numbered bench-* are deleted so the
    host has exactly ``count`` of them; leftover bench-tmp-* from an interrupted run too."""
    started = time.monotonic()
    existing = {i["name"]: i for i in floor.instances()}
    wanted = {f"bench-{i}" for i in range(count)}
    extra = [n for n in existing if (bench_index(n) is not None and bench_index(n) >= count) or n.startswith(TMP_PREFIX)]
    missing = sorted(wanted - set(existing), key=bench_index)
    stopped = [n for n in wanted & set(existing) if existing[n].get("status") != "Running"]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        if extra:
            log(f"deleting {len(extra)} extra bench containers")
            list(pool.map(floor.delete, extra))
        if missing:
            log(f"creating {len(missing)} busybox containers")
            list(pool.map(floor.create, missing))
        if stopped:
            log(f"starting {len(stopped)} stopped bench containers")
            list(pool.map(lambda n: floor.change_state(n, "start"), stopped))
    deadline = time.monotonic() + 90
    while True:
        addresses = ipv4_by_name(floor)
        lacking = wanted - set(addresses)
        if not lacking:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no IPv4 address after 90 s: {sorted(lacking)[:5]}")
        time.sleep(0.5)
    log(f"{count} bench containers running ({time.monotonic() - started:.1f} s of setup)")
    return addresses


def cleanup(floor, stop_only=False):
    names = [i["name"] for i in floor.instances() if bench_index(i["name"]) is not None or i["name"].startswith(TMP_PREFIX)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        if stop_only:
            running = [i["name"] for i in floor.instances() if i["name"] in names and i.get("status") == "Running"]
            list(pool.map(lambda n: floor.change_state(n, "stop", force=True), running))
            log(f"stopped {len(running)} bench containers")
        else:
            list(pool.map(floor.delete, names))
            log(f"deleted {len(names)} bench containers")


# -- the measurements ------------------------------------------------------------------------

class Run:
    def __init__(self, args, count, floor, service, addresses):
        self.args = args
        self.count = count
        self.floor = floor
        self.service = service
        self.api = ApiClient(service)
        self.addresses = addresses
        self.rows = []
        self.names = [f"bench-{i}" for i in range(count)]
        self.rng = random.Random(8)

    def iterations(self, default):
        return max(3, int(default * self.args.scale))

    def row(self, op, service_samples, floor_samples=None, floor_desc=None, target=None, check=None, note=None):
        service = summary(service_samples)
        floor = summary(floor_samples) if floor_samples else None
        ratio = round(service["median_ms"] / floor["median_ms"], 2) if floor else None
        met = check(service, ratio) if check else None
        row = {"op": op, "service": service, "floor": floor, "floor_call": floor_desc, "ratio": ratio,
               "target": target, "met": met}
        if note:
            row["note"] = note
        self.rows.append(row)
        floor_text = f"floor {floor['median_ms']:.1f}/{floor['p95_ms']:.1f} ms ratio {ratio}" if floor else ""
        log(f"  {op}: {service['median_ms']:.1f}/{service['p95_ms']:.1f} ms {floor_text} {'' if met is None else ('met' if met else 'MISSED')}")
        return row

    def paired(self, service_fn, floor_fn, n, warmup=2):
        """Alternate service and floor calls (which goes first alternates too): same noise for both."""
        for i in range(warmup):
            service_fn(i)
            floor_fn(i)
        service_samples, floor_samples = [], []
        for i in range(n):
            if i % 2:
                service_samples.append(clock(service_fn, i))
                floor_samples.append(clock(floor_fn, i))
            else:
                floor_samples.append(clock(floor_fn, i))
                service_samples.append(clock(service_fn, i))
        return service_samples, floor_samples

    def pick(self, i):
        return self.names[(i * 7) % len(self.names)]

    def run(self):
        result = {"containers": self.count}
        result["rss_idle_mb"] = round(self.service.memory_kb() / 1024, 1)
        result["rss_trace_mb"] = trace = {"idle": result["rss_idle_mb"]}
        for step, measure in (("info+exec", self.measure_info_exec), ("dashboard", self.measure_dashboard),
                              ("nat", lambda: self.measure_nat(filler=0)),
                              ("nat with filler", lambda: self.measure_nat(filler=self.args.rules)),
                              ("start/stop", self.measure_state_changes), ("create/delete", self.measure_create),
                              ("create with a plan", self.measure_create_with_plan), ("GET /containers", self.measure_listing),
                              ("traffic", self.measure_traffic)):
            if self.args.only and step not in self.args.only:
                continue
            measure()
            trace[step] = round(self.service.memory_kb() / 1024, 1)
        log(f"  RSS after each step (MB): {trace}")
        time.sleep(2)  # at rest: the service gives freed memory back once NAT calls are quiet
        rss = self.service.memory_kb() / 1024
        self.rows.append({"op": "memory (Pss of the master and its worker, at rest after the runs above)",
                          "service": {"mb": round(rss, 1)},
                          "target": "<= 80 MB", "met": rss <= 80})
        result["rss_mb"] = round(rss, 1)
        result["rss_peak_mb"] = round(self.service.memory_kb(peak=True) / 1024, 1)
        result["concurrency"] = self.measure_concurrency()
        time.sleep(2)
        result["rss_after_concurrency_mb"] = round(self.service.memory_kb() / 1024, 1)
        result["rss_peak_mb"] = round(self.service.memory_kb(peak=True) / 1024, 1)
        result["instances_on_host"] = len(self.floor.instances())
        result["operations"] = self.rows
        return result

    def measure_info_exec(self):
        n = self.iterations(40)
        s, f = self.paired(lambda i: self.api.info(self.pick(i)), lambda i: self.floor.instance(self.pick(i)), n)
        self.row("info", s, f, "GET /1.0/instances/<name>?recursion=1", "<= 2.5x", lambda s, r: r <= 2.5)
        s, f = self.paired(lambda i: self.api.exec(self.pick(i), "true"),
                           lambda i: self.floor.exec(self.pick(i), ["true"]), n)
        self.row("exec `true`", s, f, "POST exec + 4 websockets (stdin, stdout, stderr, control) + wait", "<= 1.3x",
                 lambda s, r: r <= 1.3)

    def measure_dashboard(self):
        dashboard = Dashboard(self.service)
        n = self.iterations(20)
        s, f = self.paired(lambda i: dashboard.get("/"), lambda i: self.floor.list_and_leases(), n)
        self.row("dashboard page /", s, f, "GET instances?recursion=1 + GET leases", "<= 3x", lambda s, r: r <= 3)
        s, f = self.paired(lambda i: dashboard.get("/containers/rows"), lambda i: self.floor.list_and_leases(), n)
        self.row("containers partial /containers/rows", s, f, "GET instances?recursion=1 + GET leases", "<= 3x",
                 lambda s, r: r <= 3)

    # NAT

    def add_filler(self, count):
        """``count`` rules spread over the other containers: rows in the service's DB and the kernel
        rules in one commit (what the service's sync would put back)."""
        names = self.names[1:] or self.names
        rows = [(names[k % len(names)], FILLER_FIRST_PORT + k, FILLER_FIRST_PORT + k, 80, "tcp",
                 self.addresses[names[k % len(names)]]) for k in range(count)]
        conn = sqlite3.connect(self.service.database, timeout=30)
        with conn:
            conn.executemany("INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol,"
                             " container_ip) VALUES (?, ?, ?, ?, ?, ?)", rows)
        forwards = [Forward(rule_id=r[0], protocol=r[5], host_port=r[2], host_port_end=r[3], container_ip=r[6],
                            container_port=r[4])
                    for r in conn.execute("SELECT id, container_name, host_port, host_port_end, container_port, protocol,"
                                          " container_ip FROM nat_rules WHERE host_port >= ?", (FILLER_FIRST_PORT,))]
        conn.close()
        batch_add(forwards)
        return forwards

    def remove_filler(self):
        conn = sqlite3.connect(self.service.database, timeout=30)
        with conn:
            conn.execute("DELETE FROM nat_rules WHERE host_port >= ?", (FILLER_FIRST_PORT,))
        conn.close()
        remove_bench_rules(keep=lambda tag: tag == f"{BENCH_TAG}forward")

    def measure_nat(self, filler):
        suffix = f" ({filler:,} rules present)" if filler else ""
        if filler:
            started = time.monotonic()
            self.add_filler(filler)
            log(f"  {filler} rules added in {time.monotonic() - started:.1f} s")
        try:
            target_name = self.names[0]
            ip = self.addresses[target_name]
            raw = RawNat()
            n = self.iterations(20)
            add_s, del_s, add_f, del_f = [], [], [], []
            for i in range(n + 2):
                port = MEASURED_FIRST_PORT + i
                forward = Forward(rule_id=90000 + i, protocol="tcp", host_port=port, container_ip=ip, container_port=80)
                t0 = time.perf_counter()
                rule_id = self.api.add_rule(target_name, port)["rule_id"]
                t1 = time.perf_counter()
                raw.add(forward)
                t2 = time.perf_counter()
                self.api.delete_rule(rule_id)
                t3 = time.perf_counter()
                raw.delete(forward)
                t4 = time.perf_counter()
                if i >= 2:  # warm-up
                    add_s.append((t1 - t0) * 1000)
                    add_f.append((t2 - t1) * 1000)
                    del_s.append((t3 - t2) * 1000)
                    del_f.append((t4 - t3) * 1000)
            self.row("add NAT rule" + suffix, add_s, add_f, "python-iptables append (xtables lock, read + write the table)",
                     "<= 25 ms", lambda s, r: s["median_ms"] <= 25)
            self.row("delete NAT rule" + suffix, del_s, del_f, "python-iptables exact delete (xtables lock, read + write the table)",
                     "<= 15 ms", lambda s, r: s["median_ms"] <= 15)
            listed = self.names[1] if len(self.names) > 1 else self.names[0]
            count = len(self.api.rules(listed)["rules"])
            samples = [clock(self.api.rules, listed) for _ in range(self.iterations(20))]
            self.row(f"list NAT rules of a container ({count} rules){suffix}", samples,
                     note="DB only; no Incus call, so no floor")
        finally:
            if filler:
                self.remove_filler()

    def measure_state_changes(self):
        name = self.names[-1]
        n = self.iterations(8)
        stop_s, start_s, stop_f, start_f = [], [], [], []
        for i in range(n):
            pairs = [(self.api.action, stop_s, start_s), (self.floor.change_state, stop_f, start_f)]
            if i % 2:
                pairs.reverse()
            for call, stops, starts in pairs:
                stops.append(clock(call, name, "stop"))
                starts.append(clock(call, name, "start"))
                self.wait_ready(name)  # untimed: a stop right after a start races the guest's init
        self.row("stop", stop_s, stop_f, "PUT state stop (graceful) + wait")
        self.row("start", start_s, start_f, "PUT state start + wait")

    def wait_ready(self, name, timeout=30):
        """Until the guest has its IPv4 address (its init has run, so it handles SIGPWR)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            network = (self.floor.api.instances[name].state.get().json()["metadata"].get("network") or {})
            if any(a.get("family") == "inet" and a.get("scope") == "global"
                   for iface, details in network.items() if iface != "lo"
                   for a in (details or {}).get("addresses") or []):
                return
            time.sleep(0.05)

    def measure_create(self):
        n = self.iterations(8)
        create_s, create_f, delete_s, delete_f = [], [], [], []
        token = secrets.token_hex(2)
        for i in range(n):
            mine, floors = f"{TMP_PREFIX}{token}-s{i}", f"{TMP_PREFIX}{token}-f{i}"
            floor_nic = self.floor.guarded_nic()
            timed_in_turn(i, [(lambda: self.api.create(mine), create_s),
                              (lambda: self.floor.create(floors, devices=floor_nic), create_f)])
            self.wait_ready(mine)
            self.wait_ready(floors)
            timed_in_turn(i, [(lambda: self.api.action(mine, "delete"), delete_s),
                              (lambda: self.floor.delete(floors), delete_f)])
        self.row("create busybox to Running", create_s, create_f,
                 "POST /1.0/instances start:true with the same pinned, filtered NIC + wait",
                 "<= 500 ms", lambda s, r: s["median_ms"] <= 500)
        self.row("delete container", delete_s, delete_f, "PUT state stop force + DELETE + wait")

    # A sale: plan + SSH port + 10 ports (the billing system's one call)

    PLAN = {"cpu": "1", "memory": "256MiB", "processes": "200", "ssh_port": "auto", "ports": "10"}
    PLAN_CONFIG = {"limits.cpu": "1", "limits.memory": "256MiB", "limits.processes": "200"}
    SALE_FIRST_PORT = 40000  # the floor's 21 rules: 40000/tcp (ssh) and 40001-40010 tcp+udp

    def measure_create_with_plan(self):
        n = self.iterations(6)
        create_s, create_f = [], []
        token = secrets.token_hex(2)
        raw = RawNat()
        for i in range(n):
            mine, floors = f"{TMP_PREFIX}{token}-p{i}", f"{TMP_PREFIX}{token}-q{i}"
            floor_nic = self.floor.guarded_nic()
            address = floor_nic["eth0"]["ipv4.address"]
            forwards = [Forward(rule_id=95000, protocol="tcp", host_port=self.SALE_FIRST_PORT, container_ip=address,
                                container_port=22)]
            forwards += [Forward(rule_id=95001 + k, protocol=proto, host_port=self.SALE_FIRST_PORT + 1,
                                 host_port_end=self.SALE_FIRST_PORT + 10, container_ip=address,
                                 container_port=self.SALE_FIRST_PORT + 1)
                         for k, proto in enumerate(("tcp", "udp"))]

            def floor_sale():
                self.floor.create(floors, devices=floor_nic, config=self.PLAN_CONFIG)
                raw.add_many(forwards)

            timed_in_turn(i, [(lambda: self.api.create(mine, **self.PLAN), create_s), (floor_sale, create_f)])
            self.wait_ready(mine)
            self.wait_ready(floors)
            self.api.action(mine, "delete")
            self.floor.delete(floors)
            raw.delete_many(forwards)
        self.row("create with a plan to Running (cpu, memory, processes, SSH port, 10 ports tcp+udp)", create_s,
                 create_f, "POST /1.0/instances start:true with the same config and pinned, filtered NIC + wait,"
                 " and the same DNAT rules in one table write", "<= 1.3x", lambda s, r: r <= 1.3)

    def measure_listing(self):
        n = self.iterations(20)
        s, f = self.paired(lambda i: self.api.containers(), lambda i: self.floor.instances(), n)
        self.row("GET /containers (every container)", s, f, "GET instances?recursion=1", "<= 2x", lambda s, r: r <= 2)

    # Traffic: one sampling pass, the reports, and what the counters add to a NAT add

    def measure_traffic(self):
        n = self.iterations(12)
        sampler = TrafficSampler(self.service)
        wall, cpu, floor = [], [], []
        for i in range(n + 2):
            pair = [(sampler.sample, wall), (self.floor.instances, floor)]
            for call, samples in (reversed(pair) if i % 2 else pair):
                if call == sampler.sample:
                    start_cpu = cpu_seconds()
                    t0 = time.perf_counter()
                    call()
                    ms = (time.perf_counter() - t0) * 1000
                    if i >= 2:
                        samples.append(ms)
                        cpu.append((cpu_seconds() - start_cpu) * 1000)
                else:
                    ms = clock(call)
                    if i >= 2:
                        samples.append(ms)
        interval = 60
        share = statistics.median(cpu) / (interval * 1000) * 100
        row = self.row(f"traffic sampling pass ({self.count} containers; CPU {statistics.median(cpu):.1f} ms, "
                       f"{share:.2f} % of a core at TRAFFIC_INTERVAL={interval})", wall, floor,
                       "GET instances?recursion=1 (the pass's own Incus read)", "<= 250 ms",
                       lambda s, r: s["median_ms"] <= 250,
                       note="CPU: this process and the nft it runs")
        row["cpu_ms"] = round(statistics.median(cpu), 1)
        row["cpu_share_percent"] = round(share, 3)
        samples = [clock(self.api.traffic, self.pick(i)) for i in range(self.iterations(20))]
        self.row("GET /container/<name>/traffic (with its days)", samples, note="DB only; no Incus call, so no floor")
        samples = [clock(self.api.traffic) for _ in range(self.iterations(20))]
        self.row(f"GET /traffic ({self.count} containers)", samples, note="DB only; no Incus call, so no floor")
        self.measure_nat_with_counters(sampler)

    def measure_nat_with_counters(self, sampler):
        """add NAT rule with every container's counters in the kernel against the same add with
        no traffic table at all (the table is taken out before and put back after each floor
        sample): what accounting costs a NAT add."""
        name = self.names[0]
        n = self.iterations(16)
        with_counters, without = [], []
        port = MEASURED_FIRST_PORT + 900
        for i in range(n + 2):
            for counting in ((True, False) if i % 2 else (False, True)):
                if counting:
                    sampler.sample()  # the table and every container's counters are back
                else:
                    subprocess.run(["nft", "delete", "table", "inet", "incus_api_traffic"], capture_output=True)
                time.sleep(0.05)
                t0 = time.perf_counter()
                added = self.api.add_rule(name, port)
                ms = (time.perf_counter() - t0) * 1000
                self.api.delete_rule(added["rule_id"])
                if i >= 2:
                    (with_counters if counting else without).append(ms)
        sampler.sample()
        self.row(f"add NAT rule, traffic counters of {self.count} containers in the kernel", with_counters, without,
                 "the same add NAT rule with no traffic table", "<= 1.1x", lambda s, r: r <= 1.1)

    def measure_concurrency(self):
        seconds = self.args.concurrency_seconds
        clients = self.args.clients
        out = {"clients": clients, "seconds": seconds}
        for label, make_calls in (("service", self._service_calls), ("floor", self._floor_calls)):
            ok, errors, samples, first_errors = [0], [0], [], []
            lock = threading.Lock()
            stop_at = time.monotonic() + seconds

            def worker(index):
                info, exec_ = make_calls()
                rng = random.Random(index)
                k = index
                local_samples, local_ok, local_err = [], 0, 0
                while time.monotonic() < stop_at:
                    name = self.names[rng.randrange(len(self.names))]
                    call = info if k % 2 == 0 else exec_
                    k += 1
                    started = time.perf_counter()
                    try:
                        call(name)
                        local_ok += 1
                        local_samples.append((time.perf_counter() - started) * 1000)
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        local_err += 1
                        with lock:
                            if len(first_errors) < 5:
                                first_errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                with lock:
                    ok[0] += local_ok
                    errors[0] += local_err
                    samples.extend(local_samples)

            started = time.monotonic()
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            out[label] = {"requests": ok[0], "errors": errors[0], "throughput_rps": round(ok[0] / elapsed, 1),
                          "latency": summary(samples), "first_errors": first_errors}
            log(f"  concurrency {label}: {out[label]['throughput_rps']} req/s, {errors[0]} errors, "
                f"latency {out[label]['latency']}")
        return out

    def _service_calls(self):
        client = ApiClient(self.service)  # one HTTP session per client thread
        return client.info, lambda name: client.exec(name, "true")

    def _floor_calls(self):
        return self.floor.instance, lambda name: self.floor.exec(name, ["true"])


# -- report ----------------------------------------------------------------------------------

def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    try:
        incus_version = Client(endpoint=ARGS.socket).host_info["environment"].get("server_version")
    except Exception:  # noqa: BLE001
        incus_version = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "incus": incus_version, "python": platform.python_version()}


def fmt(value):
    return "-" if value is None else f"{value:.1f}"


def table(result):
    lines = ["| operation | service median / p95 (ms) | floor median / p95 (ms) | ratio | target | met |",
             "|---|---:|---:|---:|---|:-:|"]
    for row in result["operations"]:
        service, floor = row["service"], row.get("floor")
        if "mb" in service:
            lines.append(f"| {row['op']} | {service['mb']:.1f} MB (peak {result['rss_peak_mb']:.1f} MB) | | | "
                         f"{row['target']} | {'yes' if row['met'] else '**no**'} |")
            continue
        met = "" if row.get("met") is None else ("yes" if row["met"] else "**no**")
        floor_text = f"{fmt(floor['median_ms'])} / {fmt(floor['p95_ms'])}" if floor else "-"
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") is not None else "-"
        lines.append(f"| {row['op']} | {fmt(service['median_ms'])} / {fmt(service['p95_ms'])} | {floor_text} | "
                     f"{ratio} | {row.get('target') or ''} | {met} |")
    conc = result["concurrency"]
    lines.append("")
    for label in ("service", "floor"):
        c = conc[label]
        lat = c["latency"] or {}
        lines.append(f"- {conc['clients']} concurrent clients, info + exec, {conc['seconds']} s, {label}: "
                     f"{c['throughput_rps']} req/s, {c['errors']} errors, median {fmt(lat.get('median_ms'))} ms, "
                     f"p95 {fmt(lat.get('p95_ms'))} ms")
    return "\n".join(lines)


def render_readme_block(results):
    meta = results["meta"]
    m = meta["machine"]
    out = [
        f"运行 / Run: `{meta['command']}`（需要 root / needs root; `--quick` 更短 / shorter, `--cleanup` 删除 "
        "`bench-*` 容器 / deletes the `bench-*` containers）",
        "",
        f"日期 / Date: {meta['date']} · 机器 / Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"kernel {m['kernel']}, Incus {m['incus']}, Python {m['python']}; 服务 / service: `app.py` (gunicorn, one gthread worker, threads=32).",
        "",
        "底线（floor）= 同一次运行中直接通过 unix socket 调用 Incus REST 获取相同数据的耗时，与服务调用交替测量；"
        "比值 = 服务中位数 / 底线中位数。The floor is the raw Incus REST call over the unix socket for the same "
        "data, measured in the same run, interleaved with the service's calls; ratio = service median / floor "
        "median. Full numbers: `bench/results.json`.",
    ]
    for key in sorted(results["runs"], key=int):
        run = results["runs"][key]
        out += ["", f"**N = {key}** busybox 容器 / containers ({run['instances_on_host']} instances on the host, "
                f"memory idle {run['rss_idle_mb']} MB, after concurrency {run['rss_after_concurrency_mb']} MB)", "",
                table(run)]
    return "\n".join(out)


def write_readme(results):
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        log("README.md has no bench markers; not updated")
        return
    block = render_readme_block(results)
    path.write_text(text[:start + len(README_START)] + "\n" + block + "\n" + text[end:], encoding="utf-8")


# -- main ------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="40,200", help="container counts, comma separated (default 40,200)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of repetitions")
    parser.add_argument("--rules", type=int, default=5000, help="NAT rules present for the second NAT run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--concurrency-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 5 s of concurrency")
    parser.add_argument("--socket", default=os.environ.get("INCUS_SOCKET", "/var/lib/incus/unix.socket"))
    parser.add_argument("--bridge", default=os.environ.get("INCUS_BRIDGE", "incusbr0"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--stop-after", action="store_true", help="stop the bench containers at the end")
    parser.add_argument("--cleanup", action="store_true", help="delete every bench-* container and exit")
    parser.add_argument("--only", type=lambda text: [step.strip() for step in text.split(",") if step.strip()],
                        default=[], help="only these steps, comma separated (e.g. 'create with a plan,traffic'); "
                                         "with --no-readme, for a look at one change")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale = min(args.scale, 0.4)
        args.concurrency_seconds = min(args.concurrency_seconds, 5)
    return args


def main():
    global ARGS
    ARGS = args = parse_args()
    floor = Floor(args.socket, args.bridge)
    if args.cleanup:
        cleanup(floor)
        remove_bench_rules()
        return
    ensure_image(floor)
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    results["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": "sudo .venv/bin/python bench/bench.py" + (f" --counts {args.counts}" if args.counts != "40,200" else ""),
        "args": {k: v for k, v in vars(args).items() if k not in ("json",)},
    }
    for count in [int(c) for c in args.counts.split(",") if c.strip()]:
        log(f"N = {count}")
        remove_bench_rules()  # a crashed run's leftovers
        addresses = ensure_containers(floor, count)
        service = Service(args.socket, args.bridge).start()
        try:
            run = Run(args, count, floor, service, addresses).run()
        finally:
            service.stop()
            remove_bench_rules()
        run["date"] = results["meta"]["date"]
        results["runs"][str(count)] = run
        print(f"\nN = {count}\n" + table(run) + "\n", flush=True)
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        if not args.no_readme:
            write_readme(results)
    if args.stop_after:
        cleanup(floor, stop_only=True)


if __name__ == "__main__":
    main()
