"""Snapshots against the real daemon: a file survives a snapshot and a restore byte for byte, a
restore brings back files and never the plan (limits, the pinned NIC and its filters, the snapshot
schedule, the forwards carrying traffic, the traffic plan), the plan's ``snapshots`` bounds what is
kept by hand, and a suspended container's snapshots are not changed."""
import json
import secrets

import pytest

from ..conftest import incus_cli, wait_for_ipv4
from .test_limits import cgroup_value

ENGLISH = {"Accept-Language": "en"}
MIB = 1024 * 1024


@pytest.fixture
def app_overrides(pool):
    return {"PORT_POOL": f"{pool[0]}-{pool[1]}", "PUBLIC_HOST": "203.0.113.7"}


def create(api, name, **fields):
    response = api.post("/container/create", data={"name": name, "image": "busybox", "password": "secret-pw", **fields},
                        headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def in_container(name, command):
    return incus_cli("exec", name, "--", "sh", "-c", command).stdout.strip()


def own(name):
    """The instance's own config (without volatile keys), devices and profiles."""
    instance = json.loads(incus_cli("query", f"/1.0/instances/{name}").stdout)
    config = {key: value for key, value in instance["config"].items() if not key.startswith("volatile.")}
    return config, instance["devices"], instance["profiles"], instance["status"]


def test_a_random_file_survives_a_snapshot_and_a_restore(api, container_name, busybox_image):
    name = container_name()
    create(api, name, snapshots="1")
    in_container(name, "dd if=/dev/urandom of=/root/data bs=1M count=50 2>/dev/null")
    digest = in_container(name, "sha256sum /root/data").split()[0]

    response = api.post(f"/container/{name}/snapshots", data={"snapshot": "before-mistake"}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["snapshot"]["name"] == "before-mistake"
    listed = api.get(f"/container/{name}/snapshots").get_json()
    assert [s["name"] for s in listed["snapshots"]] == ["before-mistake"]
    assert listed["snapshots"][0]["created_at"] and listed["snapshots"][0]["expires_at"] is None
    assert listed["plan"] == {"snapshots": 1, "snapshot_schedule": None, "snapshot_keep": None}
    # the plan keeps one by hand: a second is refused, naming the count
    refused = api.post(f"/container/{name}/snapshots", headers=ENGLISH)
    assert refused.status_code == 409 and "1" in refused.get_json()["message"]

    in_container(name, "dd if=/dev/zero of=/root/data bs=1M count=1 2>/dev/null; rm -f /bin/vi")
    assert in_container(name, "sha256sum /root/data").split()[0] != digest

    response = api.post(f"/container/{name}/snapshots/before-mistake/restore", headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["container_status"] == "Running"
    assert in_container(name, "sha256sum /root/data").split()[0] == digest
    assert api.post(f"/container/{name}/snapshots/nope/restore").status_code == 404

    assert api.delete(f"/container/{name}/snapshots/before-mistake").status_code == 200
    assert api.get(f"/container/{name}/snapshots").get_json()["snapshots"] == []
    # room again for one by hand, under a generated name
    taken = api.post(f"/container/{name}/snapshots").get_json()["snapshot"]
    assert taken["name"].startswith("snap-") and not taken["scheduled"]


def test_a_restore_brings_back_files_not_the_plan(api, app, container_name, busybox_image, test_host):
    name = container_name()
    sale = create(api, name, memory="256MiB", snapshots="2", ports="1", traffic_quota="10GiB",
                  traffic_action="suspend")
    port = sale["ports"]["start"]
    in_container(name, "echo old > /root/mark")
    assert api.post(f"/container/{name}/snapshots", data={"snapshot": "small"}).status_code == 200

    # the plan changes after the snapshot: more memory, a schedule, another traffic quota
    response = api.post(f"/container/{name}/limits", data={"memory": "512MiB", "snapshot_schedule": "@daily",
                                                            "snapshot_keep": "7d", "traffic_quota": "20GiB"})
    assert response.status_code == 200, response.get_json()
    in_container(name, "echo new > /root/mark")
    config, devices, profiles, _ = own(name)
    traffic = api.get(f"/container/{name}/traffic").get_json()

    response = api.post(f"/container/{name}/snapshots/small/restore", headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert in_container(name, "cat /root/mark") == "old"  # the files of the snapshot
    after_config, after_devices, after_profiles, status = own(name)
    assert status == "Running"
    assert after_config == config and after_devices == devices and after_profiles == profiles
    assert after_config["limits.memory"] == "512MiB" and after_config["snapshots.schedule"] == "@daily"
    nic = next(device for device in after_devices.values() if device.get("type") == "nic")
    assert nic["ipv4.address"] == sale["ip"]
    assert nic["security.mac_filtering"] == "true" and nic["security.ipv4_filtering"] == "true"
    limits = api.get(f"/container/{name}/info").get_json()["limits"]
    assert limits["memory"] == "512MiB"
    assert cgroup_value(name, "memory", "memory.limit_in_bytes", "memory.max") == str(512 * MIB)
    after_traffic = api.get(f"/container/{name}/traffic").get_json()
    plan_fields = ("quota_bytes", "period", "direction", "action")
    assert {key: after_traffic.get(key) for key in plan_fields} == {key: traffic.get(key) for key in plan_fields}
    assert after_traffic["quota_bytes"] == 20 * 1024**3

    # the forward still carries traffic to the restored container
    assert wait_for_ipv4(name) == sale["ip"]
    in_container(name, f"mkdir -p /w && echo restored-{port} > /w/index.html && httpd -p {port} -h /w")
    assert test_host.http_get(test_host.host_ip, port) == f"restored-{port}"


def test_a_suspended_containers_snapshots_are_not_changed(api, container_name, busybox_image):
    name = container_name()
    create(api, name, snapshots="2")
    assert api.post(f"/container/{name}/snapshots", data={"snapshot": "one"}).status_code == 200
    assert api.post(f"/container/{name}/action", data={"action": "suspend"}).status_code == 200
    for response in (api.post(f"/container/{name}/snapshots", headers=ENGLISH),
                     api.post(f"/container/{name}/snapshots/one/restore", headers=ENGLISH),
                     api.delete(f"/container/{name}/snapshots/one", headers=ENGLISH)):
        assert response.status_code == 409, response.get_json()
        assert "suspended" in response.get_json()["message"]
    assert [s["name"] for s in api.get(f"/container/{name}/snapshots").get_json()["snapshots"]] == ["one"]
    assert own(name)[3] == "Stopped"


def test_bad_names_and_unknown_containers(api, container_name, busybox_image):
    name = container_name()
    create(api, name, snapshots="1")
    for bad in ("auto1", "-x", "a b", "x" * 64):
        response = api.post(f"/container/{name}/snapshots", data={"snapshot": bad}, headers=ENGLISH)
        assert response.status_code == 400, bad
    missing = f"t-missing-{secrets.token_hex(3)}"
    assert api.get(f"/container/{missing}/snapshots").status_code == 404


# -- the customer's panel and the admin's page --------------------------------------------------

def test_the_customer_takes_restores_and_deletes_snapshots_within_the_plan(app, api, container_name, busybox_image):
    from .test_customer_access import csrf_of, link_for, signed_in

    name = container_name()
    create(api, name, snapshots="1")
    browser, _ = signed_in(app, link_for(api, name))
    page = browser.get("/customer", headers=ENGLISH).get_data(as_text=True)
    assert "data-snapshots" in page and "/customer/snapshots/__SNAPSHOT__/restore" in page
    headers = {**ENGLISH, "X-CSRFToken": csrf_of(browser)}

    listed = browser.get("/customer/snapshots").get_json()
    assert listed["snapshots"] == [] and listed["plan"]["snapshots"] == 1
    assert browser.post("/customer/snapshots", data={"snapshot": "mine"}).status_code == 400  # no CSRF token
    in_container(name, "echo first > /root/mark")
    taken = browser.post("/customer/snapshots", data={"snapshot": "mine", "name": "other-ct"}, headers=headers)
    assert taken.status_code == 200, taken.get_json()
    refused = browser.post("/customer/snapshots", headers=headers)
    assert refused.status_code == 409 and "at most 1 snapshot" in refused.get_json()["message"]

    in_container(name, "echo second > /root/mark")
    restored = browser.post("/customer/snapshots/mine/restore", headers=headers)
    assert restored.status_code == 200, restored.get_json()
    assert in_container(name, "cat /root/mark") == "first"
    assert browser.delete("/customer/snapshots/mine", headers=headers).status_code == 200
    assert browser.get("/customer/snapshots").get_json()["snapshots"] == []
    audited = {(row["action"], row["details"].get("snapshot")) for row in
               api.get("/audit_log", query_string={"target": name}).get_json()["entries"]
               if row["actor"] == f"customer:{name}"}
    assert {("customer.take_snapshot", "mine"), ("customer.restore_snapshot", "mine"),
            ("customer.delete_snapshot", "mine")} <= audited

    # a plan without snapshots: the customer is told so
    api.post(f"/container/{name}/limits", data={"snapshots": "0"})
    refused = browser.post("/customer/snapshots", headers=headers)
    assert refused.status_code == 409 and "no snapshots" in refused.get_json()["message"]


def test_the_admins_container_page_has_the_snapshots_card(app, client, container_name, busybox_image, api):
    import re

    name = container_name()
    create(api, name, snapshots="1")
    app.extensions["incus_api"].services.accounts.save_user("admin", "test-admin-password")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": "test-admin-password", "csrf_token": token})
    page = client.get(f"/containers/{name}", headers=ENGLISH).get_data(as_text=True)
    assert "data-snapshots" in page and f"/container/{name}/snapshots/__SNAPSHOT__/restore" in page
    csrf = re.search(r'data-csrf="([^"]+)"', page).group(1)
    taken = client.post(f"/container/{name}/snapshots", headers={"X-CSRFToken": csrf})
    assert taken.status_code == 200, taken.get_json()
    entries = api.get("/audit_log", query_string={"target": name}).get_json()["entries"]
    assert any(row["action"] == "api.create_snapshot" and row["actor"] == "admin:admin" for row in entries)


def test_incus_takes_every_schedule_and_keep_the_parser_takes(api, container_name, busybox_image):
    name = container_name()
    create(api, name)
    for schedule, keep in (("0 3 * * *", "7d"), ("*/15 * * * *", "12H"), ("0 0-6/2 1,15 1-12 0", "2w"),
                           ("59 23 31 12 6", "1M"), ("@hourly", "1y"), ("@weekly", "0"), ("off", "0")):
        response = api.post(f"/container/{name}/limits", data={"snapshot_schedule": schedule, "snapshot_keep": keep})
        assert response.status_code == 200, (schedule, response.get_json())
    assert own(name)[0].get("snapshots.schedule", "") == ""


def test_a_reinstall_of_a_container_with_snapshots_is_refused_before_anything_stops(api, container_name, busybox_image):
    name = container_name()
    create(api, name, snapshots="1")
    assert api.post(f"/container/{name}/snapshots", data={"snapshot": "keep-me"}).status_code == 200
    response = api.post(f"/container/{name}/action", data={"action": "reinstall", "image": "busybox"}, headers=ENGLISH)
    assert response.status_code == 409 and "1 snapshot" in response.get_json()["message"]
    assert own(name)[3] == "Running"
    assert api.delete(f"/container/{name}/snapshots/keep-me").status_code == 200
    response = api.post(f"/container/{name}/action", data={"action": "reinstall", "image": "busybox",
                                                           "password": "secret-pw2"}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
