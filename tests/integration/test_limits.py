"""Plans and limits against the real daemon and kernel: what a plan sets is what the kernel
enforces (the container's cgroup, nproc inside, a btrfs quota, tc on the host's end of the NIC),
a change is applied live, and what cannot be enforced is refused with a reason."""
import json
import os
import secrets
import subprocess
import time

import pytest

from incus_api.exceptions import BadInput, Conflict
from incus_api.schemas.plan import CREATE_PLAN_PARAMS
from incus_api.service.plans import Plan
from incus_api.service.provisioning import StepFailed
from tests.conftest import incus_cli

ENGLISH = {"Accept-Language": "en"}
MIB = 1024 * 1024


def services(app):
    return app.extensions["incus_api"].services


def plan(**values):
    parsed = {param.name: param.parse(values[param.name]) for param in CREATE_PLAN_PARAMS if param.name in values}
    return Plan.from_values(**parsed)


def query(path):
    return json.loads(incus_cli("query", path).stdout)


def state(name):
    return query(f"/1.0/instances/{name}/state")


def in_container(name, *argv):
    return incus_cli("exec", name, "--", *argv).stdout.strip()


def cgroup_value(name, controller, v1_file, v2_file):
    """A limit where the kernel keeps it: cgroup v1 ``/sys/fs/cgroup/<controller>/lxc.payload.<name>``
    (a busybox container mounts no cgroup tree of its own), or the unified v2 tree."""
    for path in (f"/sys/fs/cgroup/{controller}/lxc.payload.{name}/{v1_file}",
                 f"/sys/fs/cgroup/lxc.payload.{name}/{v2_file}"):
        if os.path.exists(path):
            with open(path) as handle:
                return handle.read().strip()
    raise AssertionError(f"no {controller} cgroup for {name}")


def wait_for(check, seconds=10):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def exists(name):
    return incus_cli("info", name, check=False).returncode == 0


# -- cpu, memory, processes: at create and live ----------------------------------------------

def test_plan_at_create_is_enforced_and_changed_live(api, app, container_name, busybox_image):
    name = container_name()
    info = services(app).provisioning.create(
        name, busybox_image, password="secret-pw", plan=plan(cpu="1", memory="128MiB", processes="50", swap="false")).info
    assert info["limits"] == {"cpu": 1, "memory": "128MiB", "swap": False, "disk": None, "ingress": None,
                              "egress": None, "processes": 50}
    assert os.cpu_count() > 1, "this test needs a host with more than one core"
    assert in_container(name, "nproc") == "1"
    assert cgroup_value(name, "memory", "memory.limit_in_bytes", "memory.max") == str(128 * MIB)
    assert cgroup_value(name, "pids", "pids.max", "pids.max") == "50"
    if os.path.exists(f"/sys/fs/cgroup/memory/lxc.payload.{name}/memory.memsw.limit_in_bytes"):
        assert cgroup_value(name, "memory", "memory.memsw.limit_in_bytes", "memory.swap.max") == str(128 * MIB)
    # the NIC Incus created is still the pinned, filtered one
    nic = query(f"/1.0/instances/{name}")["devices"]["eth0"]
    assert nic["ipv4.address"] and nic["security.mac_filtering"] == "true"

    pid, started = state(name)["pid"], in_container(name, "cat", "/proc/1/stat").split()[21]
    response = api.post(f"/container/{name}/limits", data={"cpu": "2", "memory": "256MiB", "processes": "80"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["limits"] == {"cpu": 2, "memory": "256MiB", "swap": False, "disk": None,
                                             "ingress": None, "egress": None, "processes": 80}
    assert wait_for(lambda: in_container(name, "nproc") == "2")  # Incus rebalances the CPU sets in the background
    assert cgroup_value(name, "memory", "memory.limit_in_bytes", "memory.max") == str(256 * MIB)
    assert cgroup_value(name, "pids", "pids.max", "pids.max") == "80"
    # live: the same init, started at the same time
    assert state(name)["pid"] == pid and state(name)["status"] == "Running"
    assert in_container(name, "cat", "/proc/1/stat").split()[21] == started

    info = api.get(f"/container/{name}/info").get_json()
    assert info["limits"]["memory"] == "256MiB" and info["limits"]["processes"] == 80


def test_the_process_limit_holds_inside(app, container_name, busybox_image):
    name = container_name()
    services(app).provisioning.create(name, busybox_image, password="secret-pw", plan=plan(processes="20"))
    # 40 sleeps in the background: the forks past the limit are refused by the kernel
    incus_cli("exec", name, "--", "sh", "-c", "for i in $(seq 40); do sleep 60 & done", check=False)
    current = int(cgroup_value(name, "pids", "pids.current", "pids.current"))
    refused = cgroup_value(name, "pids", "pids.events", "pids.events")
    assert current <= 20, current
    assert int(refused.split()[-1]) > 0, refused


def test_without_a_plan_create_sets_no_limits(app, container_name, busybox_image):
    name = container_name()
    info = services(app).provisioning.create(name, busybox_image, password="secret-pw").info
    assert set(info["limits"].values()) == {None}
    assert not any(key.startswith("limits.") for key in query(f"/1.0/instances/{name}")["config"])


# -- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["cpu", "memory", "swap", "disk", "ingress", "egress", "processes"])
def test_bad_values_are_400_naming_the_field(api, make_container, field):
    name = make_container(wait_for_ip=False)
    before = query(f"/1.0/instances/{name}")
    for bad in ("1e3", "-1", "²", "10XB", "9" * 30, "0x10", " 5"):
        response = api.post(f"/container/{name}/limits", data={field: bad}, headers=ENGLISH)
        body = response.get_json()
        assert response.status_code == 400 and body["status"] == "error", (bad, body)
        assert field in body["message"], (bad, body)
    after = query(f"/1.0/instances/{name}")
    assert after["config"] == before["config"] and after["devices"] == before["devices"]


def test_no_field_is_400_and_unknown_container_404(api, container_name):
    response = api.post(f"/container/{container_name()}/limits", data={}, headers=ENGLISH)
    assert response.status_code == 400 and "cpu" in response.get_json()["message"]
    response = api.post(f"/container/{container_name()}/limits", data={"cpu": "1"}, headers=ENGLISH)
    assert response.status_code == 404, response.get_json()


# -- disk ----------------------------------------------------------------------------------------

def test_disk_on_a_dir_pool_is_refused_naming_pool_and_driver(api, app, make_container, container_name, busybox_image):
    driver = query("/1.0/storage-pools/default")["driver"]
    if driver != "dir":
        pytest.skip(f"the pool 'default' uses {driver}, not dir")
    name = make_container(wait_for_ip=False)
    response = api.post(f"/container/{name}/limits", data={"disk": "1GiB", "cpu": "1"}, headers=ENGLISH)
    body = response.get_json()
    assert response.status_code == 400, body
    assert "'default'" in body["message"] and "'dir'" in body["message"], body
    config = query(f"/1.0/instances/{name}")
    assert "limits.cpu" not in config["config"] and "root" not in config["devices"]  # nothing half done

    other = container_name()
    with pytest.raises(StepFailed) as caught:
        services(app).provisioning.create(other, busybox_image, password="secret-pw", plan=plan(disk="1GiB"))
    assert isinstance(caught.value.cause, BadInput) and "dir" in caught.value.message
    assert not exists(other)


@pytest.fixture
def btrfs_pool():
    """A btrfs pool on a 1 GiB loop file of its own, deleted after the test (after its containers)."""
    pool = f"t-btrfs-{secrets.token_hex(3)}"
    result = incus_cli("storage", "create", pool, "btrfs", "size=1GiB", check=False)
    assert result.returncode == 0, f"cannot make a btrfs pool (is btrfs-progs installed?): {result.stderr}"
    yield pool
    for used in query(f"/1.0/storage-pools/{pool}").get("used_by") or []:
        if used.startswith("/1.0/instances/t-"):
            incus_cli("delete", "--force", used.rsplit("/", 1)[-1].split("?")[0], check=False)
    incus_cli("storage", "delete", pool, check=False)


def test_disk_quota_on_btrfs_grows_live_and_never_shrinks(btrfs_pool, api, app, container_name, busybox_image):
    name = container_name()
    info = services(app).provisioning.create(name, busybox_image, password="secret-pw",
                                              plan=plan(storage_pool=btrfs_pool, disk="100MiB")).info
    root = query(f"/1.0/instances/{name}")["devices"]["root"]
    assert (root["pool"], root["size"]) == (btrfs_pool, "100MiB") and info["limits"]["disk"] == "100MiB"
    # the quota holds: writing 150 MiB stops short with an error
    result = incus_cli("exec", name, "--", "dd", "if=/dev/zero", "of=/fill", "bs=1M", "count=150", check=False)
    assert result.returncode != 0, result.stderr
    assert "quota" in result.stderr.lower() or "space" in result.stderr.lower(), result.stderr
    in_container(name, "rm", "-f", "/fill")

    pid = state(name)["pid"]
    response = api.post(f"/container/{name}/limits", data={"disk": "300MiB"}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["limits"]["disk"] == "300MiB"
    result = incus_cli("exec", name, "--", "dd", "if=/dev/zero", "of=/fill", "bs=1M", "count=150", check=False)
    assert result.returncode == 0, result.stderr  # now it fits, without a restart
    assert state(name)["pid"] == pid

    response = api.post(f"/container/{name}/limits", data={"disk": "200MiB"}, headers=ENGLISH)
    body = response.get_json()
    assert response.status_code == 400 and "only grow" in body["message"], body
    assert query(f"/1.0/instances/{name}")["devices"]["root"]["size"] == "300MiB"


# -- NIC rates -----------------------------------------------------------------------------------

def kernel_can(action):
    """Whether tc can set up ``ingress`` (htb + u32) or ``egress`` (ingress qdisc + u32 + police) on
    a veth of a namespace of our own: the oracle the service's module check is held to."""
    ns = f"t-tc-{secrets.token_hex(3)}"
    steps = {
        "ingress": [["tc", "qdisc", "add", "dev", "v0", "root", "handle", "1:0", "htb", "default", "10"],
                    ["tc", "filter", "add", "dev", "v0", "parent", "1:0", "protocol", "all", "u32",
                     "match", "u32", "0", "0", "flowid", "1:1"]],
        "egress": [["tc", "qdisc", "add", "dev", "v0", "ingress"],
                   ["tc", "filter", "add", "dev", "v0", "parent", "ffff:0", "protocol", "all", "u32",
                    "match", "u32", "0", "0", "police", "rate", "1mbit", "burst", "100k", "drop"]],
    }[action]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        run = lambda argv: subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True)  # noqa: E731
        run(["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        run(["ip", "link", "set", "v0", "up"])
        return all(run(argv).returncode == 0 for argv in steps)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def host_veth(name):
    return state(name)["network"]["eth0"]["host_name"]


@pytest.mark.parametrize("direction, modules", [("ingress", ["sch_htb", "cls_u32"]),
                                                ("egress", ["sch_ingress", "cls_u32", "act_police"])])
def test_nic_rate_limits(direction, modules, api, app, container_name, busybox_image):
    name = container_name()
    services(app).provisioning.create(name, busybox_image, password="secret-pw", plan=plan(cpu="1"))
    response = api.post(f"/container/{name}/limits", data={direction: "10Mbit"}, headers=ENGLISH)
    body = response.get_json()
    if not kernel_can(direction):
        assert response.status_code == 409, body
        assert any(module in body["message"] for module in modules) and direction in body["message"], body
        assert f"limits.{direction}" not in query(f"/1.0/instances/{name}")["expanded_devices"]["eth0"]
        other = container_name()
        with pytest.raises(StepFailed) as caught:
            services(app).provisioning.create(other, busybox_image, password="secret-pw", plan=plan(**{direction: "1Mbit"}))
        assert isinstance(caught.value.cause, Conflict)
        assert not exists(other)
        pytest.skip(f"this kernel cannot police or shape a NIC for {direction} (it needs {', '.join(modules)}): "
                    "the refusal was checked")
    assert response.status_code == 200, body
    assert body["limits"][direction] == "10Mbit"
    nic = query(f"/1.0/instances/{name}")["devices"]["eth0"]
    assert nic[f"limits.{direction}"] == "10Mbit" and nic["ipv4.address"] and nic["security.ipv4_filtering"] == "true"
    veth = host_veth(name)
    if direction == "ingress":
        shown = subprocess.run(["tc", "class", "show", "dev", veth], capture_output=True, text=True).stdout
        assert "rate 10Mbit" in shown, shown
    else:
        shown = subprocess.run(["tc", "filter", "show", "dev", veth, "ingress"], capture_output=True, text=True).stdout
        assert "police" in shown and "10Mbit" in shown, shown


def test_nic_limit_at_create_keeps_the_pinned_nic(app, container_name, busybox_image):
    if not kernel_can("ingress"):
        pytest.skip("this kernel cannot shape a NIC (sch_htb, cls_u32)")
    name = container_name()
    info = services(app).provisioning.create(name, busybox_image, password="secret-pw", plan=plan(ingress="20Mbit")).info
    nic = query(f"/1.0/instances/{name}")["devices"]["eth0"]
    assert nic["limits.ingress"] == "20Mbit" and nic["ipv4.address"] == info["ip"]
    assert nic["security.mac_filtering"] == "true" and nic["security.ipv4_filtering"] == "true"
    shown = subprocess.run(["tc", "class", "show", "dev", host_veth(name)], capture_output=True, text=True).stdout
    assert "rate 20Mbit" in shown, shown
