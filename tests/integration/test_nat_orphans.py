"""No port outlives its container: a container deleted behind the service's back (``incus delete
-f``) has its forwards out of the kernel after the NAT sync's next pass, kept as orphaned rules
(their host ports still taken), and never applied to the container that gets its address next,
nor to one made again under its name. Real Incus, real kernel, real traffic from a namespace, the
sync in the real scheduler."""
import threading
import time

import pytest

from incus_api.scheduler import Scheduler
from tests.conftest import incus_cli, rule_comment, wait_for_ipv4
from tests.integration.conftest import free_port, kernel_nat_rules
from tests.integration.test_nat_survival import add_rule

INTERVAL = 2  # seconds: the test's NAT_SYNC_INTERVAL


@pytest.fixture
def sync_passes(app):
    """The NAT sync every ``INTERVAL`` seconds in the scheduler the service runs it in;
    ``next_pass()`` waits for the end of the first pass that begins after the call."""
    services = app.extensions["incus_api"].services
    done = threading.Condition()
    started_at = []  # when each finished pass began

    def job():
        began = time.monotonic()
        services.nat_sync.sync()
        with done:
            started_at.append(began)
            done.notify_all()

    def next_pass():
        since = time.monotonic()
        with done:
            assert done.wait_for(lambda: any(began >= since for began in started_at), timeout=INTERVAL + 60), \
                "no NAT sync pass ran"
        return time.monotonic() - since

    loop = Scheduler()
    loop.every(INTERVAL, "nat-sync", job)
    loop.start()
    yield next_pass
    loop.stop()


def rule_of(api, rule_id):
    rules = api.get("/nat_rules").get_json()["rules"]
    return next((rule for rule in rules if rule["id"] == rule_id), None)


def launch_pinned(image, name, address):
    """A container outside the service (as an admin or another tool would make it) on ``address``."""
    incus_cli("launch", image, name, "--device", f"eth0,ipv4.address={address}")
    assert wait_for_ipv4(name) == address


def test_a_container_deleted_behind_the_service_leaves_no_working_port(api, app, make_container, container_name,
                                                                       busybox_image, test_host, sync_passes):
    first = make_container()
    port = free_port()
    rule_id = add_rule(api, first, port)["rule_id"]
    address = rule_of(api, rule_id)["container_ip"]
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {first}"

    incus_cli("delete", "--force", first)  # behind the service's back
    waited = sync_passes()  # the first pass that begins after the delete
    assert waited <= INTERVAL + 30
    assert rule_comment(app, rule_id) not in kernel_nat_rules()
    orphan = rule_of(api, rule_id)
    assert orphan["orphaned"] is True and orphan["orphaned_at"]
    assert (orphan["host_port"], orphan["container_ip"], orphan["container_name"]) == (port, address, first)
    assert api.get(f"/container/{first}/nat_rules").get_json()["rules"] == []
    audit = api.get("/audit_log", query_string={"target": first}).get_json()["entries"]
    (entry,) = [entry for entry in audit if entry["action"] == "nat_sync.orphan"]
    assert entry["actor"] == "system" and entry["details"]["rules"] == [rule_id]

    # The next container gets the address: the old port never reaches it, pass after pass.
    second = container_name()
    launch_pinned(busybox_image, second, address)
    new_port = free_port()
    held = api.post(f"/container/{second}/add_nat_rule",
                    data={"host_port": str(port), "container_port": "80", "protocol": "tcp"})
    assert held.status_code == 409 and f"{rule_id}" in held.get_json()["message"]  # still the orphan's port
    add_rule(api, second, new_port)
    assert test_host.http_get(test_host.host_ip, new_port) == f"hello from {second}"  # the path works
    sync_passes()
    assert test_host.http_get(test_host.host_ip, port) is None
    assert rule_comment(app, rule_id) not in kernel_nat_rules() and rule_of(api, rule_id)["orphaned"]

    # The seller deletes the orphan: its port is free again.
    deleted = api.delete(f"/container/nat_rule/{rule_id}")
    assert deleted.status_code == 200 and deleted.get_json()["status"] == "success", deleted.get_json()
    assert rule_of(api, rule_id) is None
    add_rule(api, second, port)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {second}"


def test_a_container_made_again_under_its_name_does_not_get_the_old_forward(api, app, make_container, busybox_image,
                                                                          test_host, sync_passes):
    name = make_container()
    port = free_port()
    rule_id = add_rule(api, name, port)["rule_id"]
    address = rule_of(api, rule_id)["container_ip"]

    incus_cli("delete", "--force", name)
    launch_pinned(busybox_image, name, address)  # same name, same address, another instance (another volatile.uuid)
    sync_passes()
    assert rule_of(api, rule_id)["orphaned"] is True
    assert rule_comment(app, rule_id) not in kernel_nat_rules()
    assert test_host.http_get(test_host.host_ip, port) is None
    assert api.get(f"/container/{name}/nat_rules").get_json()["rules"] == []
    audit = api.get("/audit_log", query_string={"target": name}).get_json()["entries"]
    assert [entry["details"]["reason"] for entry in audit if entry["action"] == "nat_sync.orphan"] == ["replaced"]

    # A restart through the service follows the container's own rules: it has none.
    assert api.post(f"/container/{name}/action", data={"action": "restart"}).status_code == 200
    wait_for_ipv4(name)
    assert test_host.http_get(test_host.host_ip, port) is None
