"""Backups against the real daemon: a 50 MB random file survives backup + delete + restore
byte for byte with the plan, the address, the forwards (carrying traffic), the port block, the
traffic plan and this period's use, and a suspension; a restore under a new name is a copy; taken
ports are listed (409) or moved (ports=auto); a damaged file is refused and changes nothing; a
restore on a host whose database is empty (the CLI) brings everything back; BACKUP_KEEP prunes."""
import hashlib
import json
import os
import secrets
from pathlib import Path

import pytest

from incus_api import backup_file
from incus_api.exceptions import BadInput

from ..conftest import incus_cli, wait_for_ipv4
from .test_snapshots import create, in_container, own

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def app_overrides(pool, tmp_path):
    return {"PORT_POOL": f"{pool[0]}-{pool[1]}", "PUBLIC_HOST": "203.0.113.7", "BACKUP_DIR": str(tmp_path / "backups"),
            "BACKUP_KEEP": 2}


def backup(app, api, name):
    """A written backup of ``name``: started over the API (202, its id at once), waited for."""
    response = api.post(f"/container/{name}/backup", headers=ENGLISH)
    assert response.status_code == 202, response.get_json()
    backup_id = response.get_json()["backup_id"]
    assert response.get_json()["backup"]["state"] in ("running", "ok")
    done = app.extensions["incus_api"].services.backups.wait(backup_id, timeout=300)
    assert done["state"] == "ok", done
    return done


def delete(api, name):
    response = api.post(f"/container/{name}/action", data={"action": "delete"})
    assert response.status_code == 200, response.get_json()
    assert incus_cli("info", name, check=False).returncode != 0


def uuid_of(name):
    return json.loads(incus_cli("query", f"/1.0/instances/{name}").stdout)["config"]["volatile.uuid"]


def forwards(api, name):
    return sorted((r["host_port"], r["host_port_end"], r["container_port"], r["protocol"])
                  for r in api.get(f"/container/{name}/nat_rules").get_json()["rules"])


def test_a_container_comes_back_whole_after_backup_delete_restore(app, api, container_name, busybox_image, test_host):
    name = container_name()
    sale = create(api, name, memory="256MiB", ports="2", ssh_port="auto", traffic_quota="10GiB", traffic_action="suspend")
    in_container(name, "dd if=/dev/urandom of=/root/data bs=1M count=50 2>/dev/null")
    digest = in_container(name, "sha256sum /root/data").split()[0]
    config, devices, profiles, _ = own(name)
    rules = forwards(api, name)
    traffic = api.get(f"/container/{name}/traffic").get_json()

    done = backup(app, api, name)
    path = os.path.join(app.config["BACKUP_DIR"], done["file"])
    assert oct(os.stat(app.config["BACKUP_DIR"]).st_mode & 0o777) == "0o700"
    assert done["size"] == os.path.getsize(path) and done["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert done["stored"] == ["local"] and done["container"] == name and done["error"] is None
    record = backup_file.verify(path).record
    assert record["container"] == name and record["address"] == sale["ip"]
    listed = api.get("/backups", query_string={"name": name}).get_json()
    assert [b["id"] for b in listed["backups"]] == [done["id"]]

    delete(api, name)
    assert api.get(f"/container/{name}/nat_rules").status_code in (200, 404)
    response = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    restored = response.get_json()["container"]
    assert restored["name"] == name and not restored["copy"] and restored["status"] == "Running"
    assert restored["ip"] == sale["ip"]
    assert in_container(name, "sha256sum /root/data").split()[0] == digest
    after_config, after_devices, after_profiles, status = own(name)
    assert (after_config, after_devices, after_profiles, status) == (config, devices, profiles, "Running")
    assert forwards(api, name) == rules
    info = api.get(f"/container/{name}/info").get_json()
    assert info["limits"]["memory"] == "256MiB"
    after_traffic = api.get(f"/container/{name}/traffic").get_json()
    for key in ("quota_bytes", "period", "direction", "action", "reset_day"):
        assert after_traffic.get(key) == traffic.get(key), key

    # the block's forward carries traffic into the restored container
    port = sale["ports"]["start"]
    assert wait_for_ipv4(name) == sale["ip"]
    in_container(name, f"mkdir -p /w && echo restored-{port} > /w/index.html && httpd -p {port} -h /w")
    assert test_host.http_get(test_host.host_ip, port) == f"restored-{port}"
    entries = {row["action"] for target in (name, str(done["id"]))
               for row in api.get("/audit_log", query_string={"target": target}).get_json()["entries"]}
    assert {"api.create_backup", "backup.written", "api.restore_backup", "backup.restored"} <= entries

    # the container exists now: a second restore under its name is refused, nothing changes
    again = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
    assert again.status_code == 409 and "exists" in again.get_json()["message"]


def test_a_restore_under_a_new_name_is_a_copy(app, api, container_name, busybox_image, test_host):
    name, copy, moved = container_name(), container_name(), container_name()
    sale = create(api, name, ports="1")
    in_container(name, "echo original > /root/mark")
    done = backup(app, api, name)

    response = api.post(f"/backups/{done['id']}/restore", data={"name": copy}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    restored = response.get_json()["container"]
    assert restored["copy"] and restored["nat_rules"] == [] and restored["ip"] != sale["ip"]
    assert uuid_of(copy) != uuid_of(name)
    assert wait_for_ipv4(copy) == restored["ip"]
    assert in_container(copy, "cat /root/mark") == "original"
    assert forwards(api, copy) == [] and forwards(api, name) != []

    # ports=auto: the copy's forwards take free pool ports and carry traffic
    response = api.post(f"/backups/{done['id']}/restore", data={"name": moved, "ports": "auto"}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    new_rules = response.get_json()["container"]["nat_rules"]
    old_port = sale["ports"]["start"]
    assert new_rules and all(rule["host_port"] != old_port for rule in new_rules)
    port = new_rules[0]["host_port"]
    assert new_rules[0]["container_port"] == port  # a block forwards to its own numbers
    wait_for_ipv4(moved)
    in_container(moved, f"mkdir -p /w && echo moved-{port} > /w/index.html && httpd -p {port} -h /w")
    assert test_host.http_get(test_host.host_ip, port) == f"moved-{port}"


def test_taken_ports_are_listed_and_nothing_is_made(app, api, container_name, busybox_image):
    name, other = container_name(), container_name()
    sale = create(api, name, ports="1")
    done = backup(app, api, name)
    delete(api, name)
    port = sale["ports"]["start"]
    create(api, other)
    taken = api.post(f"/container/{other}/add_nat_rule", data={"host_port": port, "container_port": 80,
                                                                "protocol": "tcp"})
    assert taken.status_code == 200, taken.get_json()

    refused = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
    assert refused.status_code == 409, refused.get_json()
    assert port in refused.get_json()["ports"] and "ports=auto" in refused.get_json()["message"]
    assert incus_cli("info", name, check=False).returncode != 0  # nothing made
    assert forwards(api, other) == [(port, port, 80, "tcp")]

    response = api.post(f"/backups/{done['id']}/restore", data={"ports": "auto"}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert all(rule["host_port"] != port for rule in response.get_json()["container"]["nat_rules"])


def test_a_suspended_container_comes_back_suspended(app, api, container_name, busybox_image):
    name = container_name()
    create(api, name)
    assert api.post(f"/container/{name}/action", data={"action": "suspend"}).status_code == 200
    done = backup(app, api, name)
    delete(api, name)
    response = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["container"]["suspended"] and own(name)[3] == "Stopped"
    started = api.post(f"/container/{name}/action", data={"action": "start"}, headers=ENGLISH)
    assert started.status_code == 409 and "suspended" in started.get_json()["message"]


def test_a_damaged_backup_is_refused_and_changes_nothing(app, api, container_name, busybox_image, tmp_path):
    name = container_name()
    create(api, name)
    done = backup(app, api, name)
    delete(api, name)
    path = os.path.join(app.config["BACKUP_DIR"], done["file"])
    _, offset, size = backup_file.read(path)
    with open(path, "r+b") as damaged:  # one byte of the export flipped
        damaged.seek(offset + size // 2)
        byte = damaged.read(1)
        damaged.seek(offset + size // 2)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    refused = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
    assert refused.status_code == 400, refused.get_json()
    assert "damaged" in refused.get_json()["message"] and "nothing was changed" in refused.get_json()["message"]
    assert incus_cli("info", name, check=False).returncode != 0

    junk = tmp_path / "junk.tar"
    junk.write_bytes(secrets.token_bytes(4096))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["restore", str(junk)])
    assert result.exit_code != 0 and "not a backup file" in result.output
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(open(path, "rb").read()[: offset + 1000])
    result = runner.invoke(args=["restore", str(truncated)])
    assert result.exit_code != 0 and ("not a backup file" in result.output or "damaged" in result.output)
    assert incus_cli("info", name, check=False).returncode != 0


def test_a_restore_on_a_host_with_an_empty_database(app, api, container_name, busybox_image, tmp_path, pool):
    from incus_api import create_app

    name = container_name()
    sale = create(api, name, ports="1", traffic_quota="5GiB", traffic_action="suspend")
    in_container(name, "echo moved > /root/mark")
    done = backup(app, api, name)
    rules = forwards(api, name)
    delete(api, name)

    other = create_app({**{key: app.config[key] for key in ("API_SECRET_KEY", "SECRET_KEY", "INCUS_SOCKET",
                                                           "NAT_TAG_PREFIX", "PORT_POOL", "PUBLIC_HOST")},
                        "TESTING": True, "DATABASE": str(tmp_path / "other.sqlite3"),
                        "BACKUP_DIR": str(tmp_path / "other-backups")}, instance_path=tmp_path / "other")
    try:
        result = other.test_cli_runner().invoke(args=["restore", os.path.join(app.config["BACKUP_DIR"], done["file"])])
        assert result.exit_code == 0, result.output
        assert f"restored {name} as {name}: Running, address {sale['ip']}" in result.output
        services = other.extensions["incus_api"].services
        assert sorted((r["host_port"], r["host_port_end"], r["container_port"], r["protocol"])
                      for r in services.nat_rules.list_for(name)) == rules
        assert services.traffic.usage(name)["quota_bytes"] == 5 * 1024**3
        assert services.provisioning.port_block_of(name)["start"] == sale["ports"]["start"]
        assert in_container(name, "cat /root/mark") == "moved"
    finally:
        from ..conftest import remove_test_nat_rules

        remove_test_nat_rules(other)


def test_backup_keep_prunes_the_oldest(app, api, container_name, busybox_image):
    name = container_name()
    create(api, name)
    first = backup(app, api, name)
    second = backup(app, api, name)
    third = backup(app, api, name)
    ids = [b["id"] for b in api.get("/backups", query_string={"name": name}).get_json()["backups"]]
    assert ids == [third["id"], second["id"]]  # BACKUP_KEEP=2
    assert not os.path.exists(os.path.join(app.config["BACKUP_DIR"], first["file"]))
    assert api.get(f"/backups/{first['id']}").status_code == 404
    assert api.delete(f"/backups/{second['id']}").status_code == 200
    assert not os.path.exists(os.path.join(app.config["BACKUP_DIR"], second["file"]))
    assert api.delete(f"/backups/{second['id']}").status_code == 404
    assert api.post(f"/container/t-missing-{secrets.token_hex(3)}/backup").status_code == 404


def test_the_schedule_backs_up_every_container_once_per_due_time(app, api, container_name, busybox_image):
    from datetime import datetime, timedelta

    from incus_api.parse.schedule import parse_schedule

    name = container_name()
    create(api, name)
    backups = app.extensions["incus_api"].services.backups
    backups.schedule = parse_schedule("daily 03:00")
    now = [datetime(2026, 12, 7, 10, 0).astimezone()]
    backups.clock = lambda: now[0]
    assert backups.run_schedule() == []  # the first look only notes the due time
    now[0] += timedelta(hours=12)  # 22:00: still the same due time
    assert backups.run_schedule() == []
    now[0] += timedelta(hours=6)  # 04:00 the next day: due again, once
    queued = backups.run_schedule()
    assert backups.run_schedule() == []
    mine = [b for b in (backups.get(backup_id) for backup_id in queued) if b["container"] == name]
    assert len(mine) == 1 and mine[0]["trigger"] == "schedule"
    assert backups.wait(mine[0]["id"], timeout=300)["state"] == "ok"
    for backup_id in queued:
        backups.wait(backup_id, timeout=300)  # others' containers (another test's) may have gone: failed, not hung
    assert name not in backups.schedule_state()["failed"]


def test_an_s3_round_trip(app, api, container_name, busybox_image, s3_server, tmp_path):
    """With S3_*: the backup is uploaded once written (its SHA-256 in the object's metadata), a
    restore reads it back when the local file is gone, the CLI of a host with an empty database
    restores it by its key, and a delete removes the S3 copy too."""
    from incus_api import create_app
    from incus_api.offsite import S3Store

    from ..conftest import remove_test_nat_rules

    name, copy, other_copy = container_name(), container_name(), container_name()
    create(api, name)
    in_container(name, "echo offsite > /root/mark")
    shared = {key: app.config[key] for key in ("API_SECRET_KEY", "SECRET_KEY", "INCUS_SOCKET", "NAT_TAG_PREFIX",
                                               "PORT_POOL", "PUBLIC_HOST")}
    with_s3 = create_app({**shared, **s3_server, "TESTING": True, "DATABASE": str(tmp_path / "s3.sqlite3"),
                          "BACKUP_DIR": str(tmp_path / "s3-backups")}, instance_path=tmp_path / "s3")
    empty = create_app({**shared, **s3_server, "TESTING": True, "DATABASE": str(tmp_path / "empty.sqlite3"),
                        "BACKUP_DIR": str(tmp_path / "empty-backups")}, instance_path=tmp_path / "empty")
    try:
        backups = with_s3.extensions["incus_api"].services.backups
        done = backups.wait(backups.create(name)["id"], timeout=300)
        assert done["state"] == "ok" and done["s3_state"] == "ok" and done["stored"] == ["local", "s3"], done
        store = S3Store.from_config(s3_server)
        assert store.head(done["s3_key"])["sha256"] == done["sha256"]

        os.unlink(backups.directory / done["file"])
        restored = backups.restore(done["id"], name=copy)
        assert restored["copy"] and in_container(copy, "cat /root/mark") == "offsite"
        assert backups.get(done["id"])["stored"] == ["local", "s3"]  # fetched back into BACKUP_DIR

        result = empty.test_cli_runner().invoke(args=["restore", done["s3_key"], "--name", other_copy])
        assert result.exit_code == 0, result.output
        assert in_container(other_copy, "cat /root/mark") == "offsite"

        # A damaged S3 copy (one byte of the export flipped, its metadata the original's SHA-256): the
        # restore and the CLI refuse it, keep no file of it and make nothing.
        local = backups.directory / done["file"]
        _, offset, size = backup_file.read(str(local))
        damaged = tmp_path / "damaged.tar"
        data = bytearray(local.read_bytes())
        data[offset + size // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))
        store.put(str(damaged), done["s3_key"], done["sha256"])
        os.unlink(local)
        broken = container_name()
        with pytest.raises(BadInput, match="does not match its SHA-256"):
            backups.restore(done["id"], name=broken)
        assert not local.exists()
        os.unlink(empty.extensions["incus_api"].services.backups.directory / done["file"])
        result = empty.test_cli_runner().invoke(args=["restore", done["s3_key"], "--name", broken])
        assert result.exit_code != 0 and "does not match its SHA-256" in result.output, result.output
        assert not (empty.extensions["incus_api"].services.backups.directory / done["file"]).exists()
        assert incus_cli("info", broken, check=False).returncode != 0

        backups.delete(done["id"])
        assert store.head(done["s3_key"]) is None
        assert not (backups.directory / done["file"]).exists()
    finally:
        remove_test_nat_rules(with_s3)
        remove_test_nat_rules(empty)


def test_a_pool_this_host_lacks_is_replaced_by_the_default_profiles(app, api, container_name, busybox_image):
    """Another host may name its storage pool otherwise: the root disk goes to this host's default
    profile's pool, the files come along."""
    pool = f"t-pool-{secrets.token_hex(3)}"
    assert incus_cli("storage", "create", pool, "dir", check=False).returncode == 0
    name = container_name()
    try:
        create(api, name, storage_pool=pool)
        in_container(name, "echo on-another-pool > /root/mark")
        done = backup(app, api, name)
        assert backup_file.verify(os.path.join(app.config["BACKUP_DIR"], done["file"]))[0]["pool"] == pool
        delete(api, name)
        assert incus_cli("storage", "delete", pool, check=False).returncode == 0
        response = api.post(f"/backups/{done['id']}/restore", headers=ENGLISH)
        assert response.status_code == 200, response.get_json()
        default_pool = json.loads(incus_cli("query", "/1.0/profiles/default").stdout)["devices"]["root"]["pool"]
        root = json.loads(incus_cli("query", f"/1.0/instances/{name}").stdout)["expanded_devices"]["root"]
        assert root["pool"] == default_pool
        assert in_container(name, "cat /root/mark") == "on-another-pool"
    finally:
        incus_cli("delete", "--force", name, check=False)
        incus_cli("storage", "delete", pool, check=False)
