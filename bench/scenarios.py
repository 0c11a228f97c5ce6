"""The scenarios: every row of the table, each timed next to its floor in the same run.

- the fixtures: the busybox image (``ensure_image``), the ``bench-<i>`` containers
  (``ensure_containers``, reused between runs) and ``cleanup``;
- ``Run``: one N's measurements, in this order (``--only`` picks steps by these names): info+exec,
  dashboard, nat, nat with filler, start/stop, create/delete, create with a plan, GET /containers,
  traffic (with the traffic history's fold, and add NAT rule under the traffic counters), snapshots
  (take, and restore with the plan put back), backups (1 GiB of data: backup and restore against
  ``incus export`` / ``incus import``'s REST calls, the service's memory meanwhile); then the
  memory at rest and 16
  concurrent clients (``--clients``) calling info and exec, through the service and at the floor.
"""
import concurrent.futures
import random
import re
import secrets
import sqlite3
import statistics
import subprocess
import threading
import time
from datetime import timedelta

from floor import BENCH_TAG, ROOT, RawNat, batch_add, remove_bench_rules
from report import log, make_row, memory_row, summary
from service import TRAFFIC_INTERVAL, ApiClient, Dashboard, TrafficSampler, cpu_seconds

from incus_api.nat import Forward  # after floor, which puts the repository root on sys.path
from incus_api.traffic import periods

NAME = re.compile(r"bench-(\d+)")
TMP_PREFIX = "bench-tmp-"
FILLER_FIRST_PORT = 50000               # the 5,000 rules present: 50000..54999/tcp
MEASURED_FIRST_PORT = 45000             # the rules added and deleted while timing


# -- timing ----------------------------------------------------------------------------------

def clock(fn, *args):
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1000


def timed_in_turn(i, calls):
    """Time each ``(call, samples)`` once; which goes first alternates with ``i`` (same noise for both)."""
    for call, samples in (reversed(calls) if i % 2 else calls):
        samples.append(clock(call))


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
            # Pinned, as the service pins what it sells: the bridge's dynamic DHCP range is small.
            log(f"creating {len(missing)} busybox containers")
            pinned = dict(zip(missing, floor.free_addresses()))
            list(pool.map(lambda name: floor.create(name, devices=floor.pinned_nic(pinned[name])), missing))
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
        row = make_row(op, service_samples, floor_samples, floor_desc, target, check, note)
        self.rows.append(row)
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
                              ("traffic", self.measure_traffic), ("snapshots", self.measure_snapshots),
                              ("backups", self.measure_backups)):
            if self.args.only and step not in self.args.only:
                continue
            measure()
            trace[step] = round(self.service.memory_kb() / 1024, 1)
        log(f"  RSS after each step (MB): {trace}")
        time.sleep(2)  # at rest: the service gives freed memory back once NAT calls are quiet
        rss = self.service.memory_kb() / 1024
        self.rows.append(memory_row(rss))
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

    def measure_snapshots(self):
        """Take a snapshot and restore it (the service stops the running container, restores, puts the
        plan back and starts it) against Incus's own snapshot and restore of a running container."""
        name = self.names[-2 if len(self.names) > 1 else -1]
        n = self.iterations(4)
        self.api.call("POST", f"/container/{name}/limits", data={"snapshots": "100"})
        take_s, take_f, restore_s, restore_f = [], [], [], []
        node = self.floor.api.instances[name]
        token = secrets.token_hex(2)
        for i in range(n):
            mine, floors = f"b{token}s{i}", f"b{token}f{i}"
            timed_in_turn(i, [(lambda: self.api.call("POST", f"/container/{name}/snapshots", data={"snapshot": mine}),
                               take_s),
                              (lambda: self.floor.wait(node.snapshots.post(json={"name": floors})), take_f)])
            timed_in_turn(i, [(lambda: self.api.call("POST", f"/container/{name}/snapshots/{mine}/restore"), restore_s),
                              (lambda: self.floor.wait(node.put(json={"restore": floors})), restore_f)])
            self.wait_ready(name)
        for i in range(n):
            self.api.call("DELETE", f"/container/{name}/snapshots/b{token}s{i}")
            self.floor.wait(node.snapshots[f"b{token}f{i}"].delete())
        self.api.call("POST", f"/container/{name}/limits", data={"snapshots": "0"})
        self.row("snapshot (running busybox)", take_s, take_f, "POST /1.0/instances/<name>/snapshots + wait")
        self.row("restore a snapshot (running busybox, the plan put back)", restore_s, restore_f,
                 "PUT /1.0/instances/<name> restore + wait (Incus stops and starts it)")

    def measure_backups(self):
        """A container holding 1 GiB of random data: the service's backup (queued, streamed into
        BACKUP_DIR, read back for its SHA-256) against what ``incus export`` does (POST backups,
        wait, stream the export into a file, delete the Incus backup), and the service's restore (as
        a copy) against what ``incus import`` does (POST the tarball, wait). The service's memory is
        sampled throughout, and GET /containers timed while the backup runs."""
        name = self.names[-3 if len(self.names) > 2 else -1]
        subprocess.run(["incus", "exec", name, "--", "sh", "-c",
                        "[ -s /root/bench-1g ] || dd if=/dev/urandom of=/root/bench-1g bs=1M count=1024 2>/dev/null"],
                       check=True)
        n = max(2, int(2 * self.args.scale))
        node = self.floor.api.instances[name]
        backup_s, backup_f, restore_s, restore_f, answers, growth = [], [], [], [], [], []
        export = ROOT / "bench" / ".bench-export.tar.gz"
        token = secrets.token_hex(2)
        try:
            for i in range(n):
                def service_backup():
                    base = self.service.memory_kb()
                    backup_id = self.api.call("POST", f"/container/{name}/backup")["backup_id"]
                    peak = base
                    while True:
                        started = time.perf_counter()
                        state = self.api.call("GET", f"/backups/{backup_id}")["backup"]["state"]
                        answers.append((time.perf_counter() - started) * 1000)
                        peak = max(peak, self.service.memory_kb())
                        if state != "running":
                            break
                        time.sleep(0.2)
                    growth.append((peak - base) / 1024)
                    service_backup.id = backup_id

                def floor_backup():
                    self.floor.wait(node.backups.post(json={"name": f"bf{token}{i}", "instance_only": True,
                                                            "compression_algorithm": "gzip"}), timeout=600)
                    with node.backups[f"bf{token}{i}"].export.get(stream=True, is_api=False) as response, \
                            open(export, "wb") as out:
                        for chunk in response.iter_content(1024 * 1024):
                            out.write(chunk)
                    self.floor.wait(node.backups[f"bf{token}{i}"].delete())

                timed_in_turn(i, [(service_backup, backup_s), (floor_backup, backup_f)])
                copy_s, copy_f = f"{TMP_PREFIX}bk{token}s{i}", f"{TMP_PREFIX}bk{token}f{i}"

                def floor_import():
                    with open(export, "rb") as source:
                        self.floor.wait(self.floor.api.instances.post(
                            data=source, headers={"Content-Type": "application/octet-stream", "X-Incus-name": copy_f}),
                            timeout=600)

                timed_in_turn(i, [(lambda: self.api.call("POST", f"/backups/{service_backup.id}/restore",
                                                         data={"name": copy_s}), restore_s),
                                  (floor_import, restore_f)])
                for copy in (copy_s, copy_f):
                    subprocess.run(["incus", "delete", "--force", copy], check=False, capture_output=True)
                self.api.call("DELETE", f"/backups/{service_backup.id}")
        finally:
            export.unlink(missing_ok=True)
        note = (f"memory growth during the backup: max {max(growth):.1f} MB; GET /backups/<id> answered in "
                f"max {max(answers):.0f} ms meanwhile")
        self.row("backup (1 GiB of random data, gzip, streamed to BACKUP_DIR + SHA-256)", backup_s, backup_f,
                 "POST backups + wait + GET export streamed to a file + DELETE (incus export)",
                 "memory growth < 100 MB", lambda s, r: max(growth) < 100)["shown_note"] = note
        self.row("restore a backup as a copy (1 GiB, new identity and address)", restore_s, restore_f,
                 "POST /1.0/instances with the tarball + wait (incus import)")

    def measure_listing(self):
        n = self.iterations(20)
        s, f = self.paired(lambda i: self.api.containers(), lambda i: self.floor.instances(), n)
        self.row("GET /containers (every container)", s, f, "GET instances?recursion=1", "<= 2x", lambda s, r: r <= 2)

    # Traffic: one sampling pass, the reports, and what the counters add to a NAT add

    def measure_traffic(self):
        sampler = TrafficSampler(self.service)
        try:
            self.measure_sampling_pass(sampler)
            self.measure_traffic_reads()
            self.measure_history_fold(sampler)
            self.measure_nat_with_counters(sampler)
        finally:
            sampler.close()

    def measure_sampling_pass(self, sampler):
        n = self.iterations(12)
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
        interval = TRAFFIC_INTERVAL
        share = statistics.median(cpu) / (interval * 1000) * 100
        row = self.row(f"traffic sampling pass ({self.count} containers; CPU {statistics.median(cpu):.1f} ms, "
                       f"{share:.2f} % of a core at TRAFFIC_INTERVAL={interval})", wall, floor,
                       "GET instances?recursion=1 (the pass's own Incus read)", "<= 250 ms",
                       lambda s, r: s["median_ms"] <= 250,
                       note="CPU: this process and the nft it runs")
        row["cpu_ms"] = round(statistics.median(cpu), 1)
        row["cpu_share_percent"] = round(share, 3)

    def measure_traffic_reads(self):
        samples = [clock(self.api.traffic, self.pick(i)) for i in range(self.iterations(20))]
        self.row("GET /container/<name>/traffic (with its days)", samples, note="DB only; no Incus call, so no floor")
        samples = [clock(self.api.traffic) for _ in range(self.iterations(20))]
        self.row(f"GET /traffic ({self.count} containers)", samples, note="DB only; no Incus call, so no floor")

    def measure_history_fold(self, sampler):
        """The traffic history's fold (the scheduler's hourly job) on the sampler's database: every
        container has 90 days of hours, and before each pass one more day of hours, old enough to
        fold, for each of them (the pass after a local midnight: the one that has work)."""
        traffic = sampler.traffic
        names = [row[0] for row in traffic.db.query("SELECT container_name FROM traffic_plans")]
        midnight = periods.local_now().replace(hour=0, minute=0, second=0, microsecond=0)

        def hours_of(first_day, days):
            start = midnight - timedelta(days=first_day)
            return [(name, periods.hour_of(start + timedelta(hours=h)), 1000 + h, 2000 + h)
                    for name in names for h in range(24 * days)]

        conn = sqlite3.connect(traffic.db.path, timeout=30)
        insert = "INSERT OR REPLACE INTO traffic_hourly (container_name, hour, rx_bytes, tx_bytes) VALUES (?, ?, ?, ?)"
        with conn:
            conn.executemany(insert, hours_of(90, 90))
        samples = []
        for i in range(self.iterations(10)):
            with conn:
                conn.executemany(insert, hours_of(92 + i, 1))
            samples.append(clock(traffic.fold_history))
        conn.close()
        self.row(f"traffic history fold ({len(names)} containers, a day of hours each into days)", samples,
                 target="<= 250 ms", check=lambda s, r: s["median_ms"] <= 250,
                 note="DB only (the scheduler's hourly job); no Incus call, so no floor")

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
