"""A sale in one call against the real daemon and kernel: ssh_port and ports from PORT_POOL carry
traffic from a network namespace, concurrent creates never share a port, a failure at any step
leaves nothing behind, and what a billing system polls (containers, rules, free ports)."""
import json
import re
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from incus_api.exceptions import IncusError
from incus_api.service.credentials import Credentials
from incus_api.service.nat_rules import NatRuleService
from incus_api.service.traffic import TrafficService

from ..conftest import API_HEADERS, incus_cli, wait_for_ipv4
from .conftest import kernel_nat_rules


@pytest.fixture
def app_overrides(pool):
    return {"PORT_POOL": f"{pool[0]}-{pool[1]}", "PUBLIC_HOST": "203.0.113.7"}


ENGLISH = {"Accept-Language": "en"}


def create(api, name, **fields):
    return api.post("/container/create", data={"name": name, "image": "busybox", **fields}, headers=ENGLISH)


def forwarded_ports(app):
    """Every host port our test's kernel rules forward, from ``iptables -S``."""
    ports = []
    prefix = app.config["NAT_TAG_PREFIX"]
    for line in kernel_nat_rules().splitlines():
        if prefix in line:
            match = re.search(r"--dport (\d+)(?::(\d+))?", line)
            ports.append((int(match.group(1)), int(match.group(2) or match.group(1)), line.split(" -p ")[1].split()[0]))
    return ports


def httpd(name, port):
    """busybox httpd on ``port`` in the container, serving a page that says which port."""
    incus_cli("exec", name, "--", "sh", "-c",
              f"mkdir -p /www{port} && echo port-{port} > /www{port}/index.html && httpd -p {port} -h /www{port}")


def pinned_on(address):
    """Names of the instances whose NIC has ``address`` pinned."""
    out = subprocess.run(["incus", "query", "/1.0/instances?recursion=1"], capture_output=True, text=True, check=True)
    return [instance["name"] for instance in json.loads(out.stdout)
            for device in (instance.get("devices") or {}).values() if device.get("ipv4.address") == address]


@pytest.fixture
def pinned_addresses(app, monkeypatch):
    """The addresses the app pins on new containers, as it chooses them."""
    import contextlib

    guard = app.extensions["incus_api"].services.nic_guard
    real = guard.new_nic
    chosen = []

    @contextlib.contextmanager
    def new_nic(profiles=None):
        with real(profiles) as devices:
            chosen.extend(device["ipv4.address"] for device in devices.values())
            yield devices

    monkeypatch.setattr(guard, "new_nic", new_nic)
    return chosen


# -- ssh_port and ports carry traffic ----------------------------------------------------------

def test_ssh_auto_and_three_ports_carry_traffic(api, app, container_name, busybox_image, test_host, pool):
    name = container_name()
    response = create(api, name, ssh_port="auto", ports="3")
    body = response.get_json()
    assert response.status_code == 200, body
    ssh, block = body["ssh"], body["ports"]
    assert ssh["host"] == "203.0.113.7"
    assert block["end"] - block["start"] == 2
    used = [ssh["port"], *range(block["start"], block["end"] + 1)]
    assert len(set(used)) == 4 and all(pool[0] <= port <= pool[1] for port in used)
    assert body["password"]  # none given: generated, answered once
    # the rules: 22/tcp, and the block tcp + udp to the same numbers
    rules = {(r["host_port"], r["host_port_end"], r["container_port"], r["protocol"]) for r in body["nat_rules"]}
    assert rules == {(ssh["port"], ssh["port"], 22, "tcp"), (block["start"], block["end"], block["start"], "tcp"),
                     (block["start"], block["end"], block["start"], "udp")}
    kernel = forwarded_ports(app)
    assert (block["start"], block["end"], "udp") in kernel and (block["start"], block["end"], "tcp") in kernel
    assert (ssh["port"], ssh["port"], "tcp") in kernel

    # busybox serves :80 only: a server on each port of the block, reached from outside the host
    assert wait_for_ipv4(name) == body["ip"]  # the container has configured the address it was given
    for port in range(block["start"], block["end"] + 1):
        httpd(name, port)
    for port in range(block["start"], block["end"] + 1):
        assert test_host.http_get(test_host.host_ip, port) == f"port-{port}"
    # the SSH forward reaches the container's port 22 (a server there stands in for sshd)
    httpd(name, 22)
    assert test_host.http_get(test_host.host_ip, ssh["port"]) == "port-22"

    info = api.get(f"/container/{name}/info").get_json()
    assert info["ssh"] == {"host": "203.0.113.7", "port": ssh["port"]}


def test_fixed_ssh_port_and_its_conflicts(api, container_name, busybox_image, pool):
    port = pool[0] + 5
    first = create(api, container_name(), ssh_port=str(port))
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["ssh"]["port"] == port
    # taken: 409 before anything is made
    name = container_name()
    second = create(api, name, ssh_port=str(port))
    assert second.status_code == 409, second.get_json()
    assert second.get_json()["step"] == "ports"
    assert "already forwarded" in second.get_json()["message"]
    assert incus_cli("info", name, check=False).returncode != 0
    # reserved (22) and bad values
    assert create(api, container_name(), ssh_port="22").status_code == 409
    for bad in ("0", "65536", "-1", "2²", "１２", "auto1", "1e3"):
        response = create(api, container_name(), ssh_port=bad)
        assert response.status_code == 400, (bad, response.get_json())
        assert "ssh_port" in response.get_json()["message"]
    for bad in ("0", "1001", "-3", "٣", "3.0"):
        response = create(api, container_name(), ports=bad)
        assert response.status_code == 400, (bad, response.get_json())
        assert "ports" in response.get_json()["message"]


def test_without_ports_it_is_as_before(api, container_name, busybox_image):
    name = container_name()
    body = create(api, name).get_json()
    assert body["status"] == "success" and body["nat_rules"] == []
    assert "ssh" not in body and "ports" not in body
    assert api.get(f"/container/{name}/info").get_json()["ssh"] is None


# -- concurrency -------------------------------------------------------------------------------

def test_eight_concurrent_sales_get_distinct_ports(app, live_server, container_name, busybox_image, test_host):
    import requests

    names = [container_name() for _ in range(8)]

    def sell(name):
        return requests.post(f"{live_server}/container/create", headers=API_HEADERS, timeout=120,
                             data={"name": name, "image": "busybox", "ssh_port": "auto", "ports": "3"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(sell, names))
    bodies = [answer.json() for answer in answers]
    assert [answer.status_code for answer in answers] == [200] * 8, bodies
    taken = []
    for body in bodies:
        taken.append(body["ssh"]["port"])
        taken.extend(range(body["ports"]["start"], body["ports"]["end"] + 1))
    assert len(taken) == 32 and len(set(taken)) == 32, sorted(taken)
    # the database: no two rules of one protocol overlap
    rules = requests.get(f"{live_server}/nat_rules", headers=API_HEADERS, timeout=30).json()["rules"]
    assert len(rules) == 24
    for protocol in ("tcp", "udp"):
        spans = sorted((r["host_port"], r["host_port_end"]) for r in rules if r["protocol"] == protocol)
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans
    # the kernel: exactly those rules
    kernel = sorted(forwarded_ports(app))
    assert kernel == sorted((r["host_port"], r["host_port_end"], r["protocol"]) for r in rules)
    # and each sale's SSH port reaches its own container
    for name, body in zip(names, bodies):
        assert wait_for_ipv4(name) == body["ip"]
        incus_cli("exec", name, "--", "sh", "-c", f"mkdir -p /w22 && echo {name} > /w22/index.html && httpd -p 22 -h /w22")
        assert test_host.http_get(test_host.host_ip, body["ssh"]["port"]) == name


# -- all or nothing ----------------------------------------------------------------------------

def nothing_left(app, api, name, pinned):
    assert incus_cli("info", name, check=False).returncode != 0, f"{name} was left behind"
    assert api.get("/nat_rules").get_json()["rules"] == []
    assert app.extensions["incus_api"].services.nat_rules.block_of(name) is None  # nor its port block
    assert forwarded_ports(app) == []
    assert app.extensions["incus_api"].services.addresses._pending == set()  # the address chosen for the sale is no longer held
    # ... and pinned on no instance of ours (another test's create may have taken it since)
    assert pinned and all(owner != name for owner in pinned_on(pinned))


def fail(*_args, **_kwargs):
    raise IncusError("injected failure")


STEPS = {
    # step name -> (what to break, the step the error names)
    "the instance": (lambda mp, app: mp.setattr(app.extensions["incus_api"].incus, "create", _create_then_fail(app)),
                     "create"),
    "the credentials": (lambda mp, app: mp.setattr(Credentials, "set_password", fail), "credentials"),
    "the forwards (database)": (lambda mp, app: mp.setattr(NatRuleService, "add_many", _add_then_fail), "forwards"),
    "the forwards (kernel)": (lambda mp, app: mp.setattr(app.extensions["incus_api"].nat, "add_many", fail),
                              "forwards"),
    "the traffic plan": (lambda mp, app: mp.setattr(TrafficService, "create_plan", fail), "traffic"),
}


def _create_then_fail(app):
    real = app.extensions["incus_api"].incus.create

    def create_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the instance exists, then the step fails
        raise IncusError("injected failure after the instance was made")

    return create_then_fail


_real_add_many = NatRuleService.add_many


def _add_then_fail(self, *args, **kwargs):
    _real_add_many(self, *args, **kwargs)  # the rules are written, then the step fails
    raise IncusError("injected failure after the forwards were written")


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failure_at_each_step_leaves_nothing(step, api, app, container_name, busybox_image, monkeypatch,
                                               pinned_addresses):
    breaks, named = STEPS[step]
    breaks(monkeypatch, app)
    name = container_name()
    response = create(api, name, ssh_port="auto", ports="2")
    body = response.get_json()
    assert response.status_code == 500, body
    assert body["status"] == "error" and body["step"] == named
    assert "injected failure" in body["message"] and name in body["message"]
    monkeypatch.undo()
    assert len(pinned_addresses) == 1
    nothing_left(app, api, name, pinned_addresses[0])


def test_an_exhausted_pool_is_a_409_before_anything_is_made(api, app, container_name, busybox_image, pool):
    name = container_name()
    response = create(api, name, ports="201")
    assert response.status_code == 409, response.get_json()
    assert "no 201 consecutive free ports" in response.get_json()["message"]
    assert incus_cli("info", name, check=False).returncode != 0


# -- what a billing system polls ---------------------------------------------------------------

def test_containers_list_filters_and_order(api, container_name, busybox_image):
    names = [container_name() for _ in range(3)]
    prefix = names[0].rsplit("-", 1)[0]  # t-<this test>: only this test's containers
    for name in names:
        assert create(api, name).status_code == 200
    assert api.post(f"/container/{names[0]}/action", data={"action": "suspend"}).status_code == 200

    body = api.get(f"/containers?q={prefix}").get_json()
    assert body["live_data_available"] is True
    listed = body["containers"]
    assert [c["name"] for c in listed] == sorted(names)
    by_name = {c["name"]: c for c in listed}
    assert by_name[names[0]]["status"] == "Stopped" and by_name[names[0]]["ipv4"] is None
    assert by_name[names[1]]["status"] == "Running" and by_name[names[1]]["ipv4"]
    assert all(c["nat_rules"] == 0 and c["created_at"] and c["image"] for c in listed)
    assert [c["suspended"] for c in listed] == [name == names[0] for name in sorted(names)]
    everything = [c["name"] for c in api.get("/containers").get_json()["containers"]]
    assert everything == sorted(everything) and set(names) <= set(everything)

    running = api.get(f"/containers?q={prefix.upper()}&status=running").get_json()["containers"]
    assert [c["name"] for c in running] == sorted(names[1:])
    stopped = api.get(f"/containers?q={names[0][-6:]}&status=Stopped").get_json()["containers"]
    assert [c["name"] for c in stopped] == [names[0]]
    for bad in ("status=sleeping", "q=a%20b", "q=" + "x" * 64, "q=%D9%A3"):
        response = api.get(f"/containers?{bad}", headers=ENGLISH)
        assert response.status_code == 400 and response.get_json()["status"] == "error", bad


def test_free_ports_skip_reserved_used_and_listened(api, app, container_name, busybox_image, pool):
    start = pool[0]
    assert api.get("/ports/free").get_json() == {"start": start, "end": start}
    # a NAT rule (udp, a range) takes start..start+2
    name = container_name()
    assert create(api, name).status_code == 200
    added = api.post(f"/container/{name}/add_nat_rule",
                     data={"host_port": f"{start}-{start + 2}", "container_port": "1000", "protocol": "udp"})
    assert added.status_code == 200, added.get_json()
    # a host program listens on start+4 (tcp) and start+7 (udp)
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("0.0.0.0", start + 4))
        tcp.listen()
        udp.bind(("0.0.0.0", start + 7))
        assert api.get("/ports/free").get_json() == {"start": start + 3, "end": start + 3}
        assert api.get("/ports/free?count=2").get_json() == {"start": start + 5, "end": start + 6}
        assert api.get("/ports/free?count=3").get_json() == {"start": start + 8, "end": start + 10}
    # reserved: the pool's first port as RESERVED_PORTS
    app.extensions["incus_api"].services.nat_rules.port_policy.reserved.add(start + 3)
    assert api.get("/ports/free").get_json() == {"start": start + 4, "end": start + 4}
    assert api.get("/ports/free?count=200").status_code == 409
    for bad in ("0", "1001", "x", "²"):
        response = api.get(f"/ports/free?count={bad}", headers=ENGLISH)
        assert response.status_code == 400 and "count" in response.get_json()["message"], bad


def test_all_rules_host_wide(api, container_name, busybox_image):
    first, second = container_name(), container_name()
    assert create(api, first, ports="1").status_code == 200
    assert create(api, second, ssh_port="auto").status_code == 200
    rules = api.get("/nat_rules").get_json()["rules"]
    assert sorted({r["container_name"] for r in rules}) == sorted([first, second])
    assert len(rules) == 3


# -- with a plan -------------------------------------------------------------------------------

def test_a_plan_with_ports_answers_its_limits(api, container_name, busybox_image):
    name = container_name()
    response = create(api, name, cpu="1", memory="256MiB", processes="200", ssh_port="auto", ports="2")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["limits"]["cpu"] == 1 and body["limits"]["memory"] == "256MiB" and body["limits"]["processes"] == 200
    assert body["ssh"]["port"] and body["ports"]["end"] - body["ports"]["start"] == 1
    listed = api.get(f"/containers?q={name}").get_json()["containers"]
    assert [c["name"] for c in listed] == [name]
    assert listed[0]["limits"]["memory"] == "256MiB" and listed[0]["nat_rules"] == 3


def test_a_refused_plan_leaves_no_container_and_no_rule(api, app, container_name, busybox_image):
    pool = incus_cli("profile", "device", "get", "default", "root", "pool").stdout.strip()
    driver = incus_cli("storage", "get", pool, "driver", check=False).stdout.strip() or \
        json.loads(incus_cli("query", f"/1.0/storage-pools/{pool}").stdout)["driver"]
    if driver != "dir":
        pytest.skip(f"the default pool {pool} is {driver}: it can enforce a disk size")
    name = container_name()
    response = create(api, name, disk="1GiB", ssh_port="auto", ports="3")
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["step"] == "create" and "dir" in body["message"]
    assert incus_cli("info", name, check=False).returncode != 0
    assert api.get("/nat_rules").get_json()["rules"] == [] and forwarded_ports(app) == []
