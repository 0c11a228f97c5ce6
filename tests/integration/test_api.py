"""Every route of the seed's table through the Flask test client, against the real Incus daemon,
the real kernel NAT table and SQLite."""
import re
from pathlib import Path

from incus_api.exceptions import NatError
from tests.conftest import incus_cli, rule_comment, wait_for_ipv4
from tests.integration.conftest import free_port, kernel_nat_rules

INFO_KEYS = {
    "name", "status", "ip", "created_at", "architecture", "profiles", "config", "devices",
    "snapshots", "state", "description", "live_data_available", "message",
}


def test_create_starts_the_container_and_refuses_duplicates(api, container_name, busybox_image):
    name = container_name()
    response = api.post("/container/create", data={"name": name, "image": busybox_image})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "success" and body["container_status"] == "Running"
    assert incus_cli("list", name, "-f", "csv", "-c", "s").stdout.strip() == "RUNNING"
    assert len(body["password"]) >= 16  # neither password nor ssh_key: one was generated (busybox has chpasswd)

    again = api.post("/container/create", data={"name": name, "image": busybox_image})
    assert again.status_code == 409 and again.get_json()["status"] == "error"


def test_create_by_fingerprint(api, container_name, busybox_image):
    fingerprint = incus_cli("image", "list", busybox_image, "-f", "csv", "-c", "f").stdout.strip()
    name = container_name()
    response = api.post("/container/create", data={"name": name, "image": fingerprint})
    assert response.status_code == 200, response.get_json()


def test_create_with_unknown_images(api, container_name, app):
    unknown = api.post("/container/create", data={"name": container_name(), "image": "no-such-image"})
    assert unknown.status_code == 400 and "no-such-image" in unknown.get_json()["message"]

    unknown_remote = api.post("/container/create", data={"name": container_name(), "image": "nowhere:debian/12"})
    assert unknown_remote.status_code == 400 and "nowhere" in unknown_remote.get_json()["message"]


def test_create_from_an_unreachable_remote_reports_incus_reason(tmp_path, container_name):
    from incus_api import create_app
    from tests.conftest import API_HEADERS, API_SECRET

    # A remote on a dead loopback port: the daemon's pull fails at once, nothing leaves the host.
    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": API_SECRET,
                      "IMAGE_REMOTES": "dead=https://127.0.0.1:9"}, instance_path=tmp_path)
    name = container_name()
    response = app.test_client().post("/container/create", data={"name": name, "image": "dead:debian/12"},
                                      headers={**API_HEADERS, "Accept-Language": "en"})
    body = response.get_json()
    assert response.status_code == 500 and body["status"] == "error"
    assert name in body["message"] and "127.0.0.1:9" in body["message"]
    assert incus_cli("list", name, "-f", "csv").stdout.strip() == ""


def test_actions(api, make_container):
    name = make_container(wait_for_ip=False)

    def act(action):
        response = api.post(f"/container/{name}/action", data={"action": action})
        return response.status_code, response.get_json()

    code, body = act("stop")
    assert code == 200 and body["container_status"] == "Stopped", body
    code, body = act("stop")
    assert code == 200 and body["status"] == "success" and body["container_status"] == "Stopped"
    code, body = act("start")
    assert code == 200 and body["container_status"] == "Running"
    code, body = act("restart")
    assert code == 200 and body["container_status"] == "Running"
    code, body = act("explode")
    assert code == 400 and body["status"] == "error"


def test_actions_on_unknown_container_are_404(api, container_name):
    for action in ("start", "stop", "restart", "delete"):
        response = api.post(f"/container/{container_name()}/action", data={"action": action})
        assert response.status_code == 404, action
        assert response.get_json()["status"] == "NotFound"


def test_exec(api, make_container):
    name = make_container(wait_for_ip=False)
    ok = api.post(f"/container/{name}/exec", data={"command": "echo hello world"}).get_json()
    assert ok["status"] == "success" and ok["output"] == "hello world\n" and ok["exit_code"] == 0

    quoted = api.post(f"/container/{name}/exec", data={"command": """sh -c 'echo "$0 out"; echo err >&2; exit 3' x"""})
    body = quoted.get_json()
    assert body["status"] == "error" and body["exit_code"] == 3
    assert body["stdout"] == "x out\n" and body["stderr"] == "err\n" and "x out" in body["output"]

    missing = api.post(f"/container/{name}/exec", data={"command": "no-such-command --flag"})
    assert missing.status_code == 400 and "no-such-command" in missing.get_json()["message"]

    incus_cli("stop", "--force", name)
    stopped = api.post(f"/container/{name}/exec", data={"command": "true"})
    assert stopped.status_code == 400 and stopped.get_json()["status"] == "error"

    unknown = api.post("/container/t-no-such-container/exec", data={"command": "true"})
    assert unknown.status_code == 404


def test_exec_leaves_no_output_logs_behind(api, make_container):
    """The output streams over websockets: Incus writes none of it to the host's disk."""
    name = make_container(wait_for_ip=False)
    assert api.post(f"/container/{name}/exec", data={"command": "echo x"}).get_json()["output"] == "x\n"
    assert not exec_output_files(name)


def exec_output_files(name):
    """What a recorded exec leaves on the host: <instance dir>/exec-output/exec_<id>.std{out,err}
    (the instance dir is a link into its storage pool), and anything named exec in its log dir."""
    found = list(Path(f"/var/lib/incus/containers/{name}/exec-output").glob("*"))
    return found + [path for path in Path(f"/var/log/incus/{name}").glob("**/*") if "exec_" in path.name]


def test_info(api, make_container):
    name = make_container()
    body = api.get(f"/container/{name}/info").get_json()
    assert INFO_KEYS <= set(body)
    assert body["name"] == name and body["status"] == "Running" and body["live_data_available"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", body["ip"])
    assert body["description"].startswith("BusyBox") and "memory" in body["state"]

    missing = api.get("/container/t-no-such-container/info")
    assert missing.status_code == 404 and missing.get_json()["status"] == "NotFound"


def test_nat_rule_lifecycle(api, app, make_container):
    name = make_container()
    port = free_port()
    form = {"host_port": str(port), "container_port": "80", "protocol": "tcp"}

    added = api.post(f"/container/{name}/add_nat_rule", data=form)
    body = added.get_json()
    assert added.status_code == 200 and body["status"] == "success", body
    rule_id = body["rule_id"]
    assert f'--dport {port} ' in kernel_nat_rules() and rule_comment(app, rule_id) in kernel_nat_rules()

    same = api.post(f"/container/{name}/add_nat_rule", data=form)
    assert same.status_code == 200 and same.get_json()["status"] == "warning"
    assert same.get_json()["rule_id"] == rule_id
    assert kernel_nat_rules().count(f"--dport {port} ") == 1

    clash = api.post(f"/container/{name}/add_nat_rule", data={**form, "container_port": "81"})
    assert clash.status_code == 409 and clash.get_json()["status"] == "error"

    udp = api.post(f"/container/{name}/add_nat_rule", data={**form, "protocol": "udp"})
    assert udp.status_code == 200

    rules = api.get(f"/container/{name}/nat_rules").get_json()
    assert rules["status"] == "success"
    assert {(r["host_port"], r["container_port"], r["protocol"]) for r in rules["rules"]} == {(port, 80, "tcp"), (port, 80, "udp")}
    assert all({"id", "container_ip", "created_at"} <= set(r) for r in rules["rules"])

    deleted = api.delete(f"/container/nat_rule/{rule_id}")
    assert deleted.status_code == 200 and deleted.get_json()["status"] == "success"
    assert rule_comment(app, rule_id) not in kernel_nat_rules()
    gone = api.delete(f"/container/nat_rule/{rule_id}")
    assert gone.status_code == 404 and gone.get_json()["status"] == "NotFound"


def test_nat_rule_on_another_container_with_the_same_port_is_409(api, make_container):
    first, second = make_container(), make_container()
    form = {"host_port": str(free_port()), "container_port": "80", "protocol": "tcp"}
    assert api.post(f"/container/{first}/add_nat_rule", data=form).status_code == 200
    clash = api.post(f"/container/{second}/add_nat_rule", data=form)
    assert clash.status_code == 409 and first in clash.get_json()["message"]


def test_nat_rule_needs_an_existing_running_container(api, make_container):
    form = {"host_port": str(free_port()), "container_port": "80", "protocol": "tcp"}
    missing = api.post("/container/t-no-such-container/add_nat_rule", data=form)
    assert missing.status_code == 404
    name = make_container(wait_for_ip=False)
    incus_cli("stop", "--force", name)
    stopped = api.post(f"/container/{name}/add_nat_rule", data=form)
    assert stopped.status_code == 400 and "running" in stopped.get_json()["message"].lower() or "运行" in stopped.get_json()["message"]
    assert api.get(f"/container/{name}/nat_rules").get_json()["rules"] == []


def test_failed_iptables_step_leaves_no_db_row(api, app, make_container, monkeypatch):
    name = make_container()
    nat = app.extensions["incus_api"].nat

    def refuse(forward):
        raise NatError("kernel said no")

    monkeypatch.setattr(nat, "add", refuse)
    response = api.post(f"/container/{name}/add_nat_rule", data={"host_port": str(free_port()), "container_port": "80", "protocol": "tcp"})
    assert response.status_code == 500 and response.get_json()["status"] == "error"
    assert api.get(f"/container/{name}/nat_rules").get_json()["rules"] == []


def test_delete_removes_container_and_its_nat_rules(api, app, make_container):
    name = make_container()
    ports = [free_port() for _ in range(2)]
    ids = [api.post(f"/container/{name}/add_nat_rule", data={"host_port": str(p), "container_port": "80", "protocol": "tcp"}).get_json()["rule_id"] for p in ports]

    response = api.post(f"/container/{name}/action", data={"action": "delete"})
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "success" and body["nat_rules_removed"] == 2
    assert incus_cli("list", name, "-f", "csv").stdout.strip() == ""
    rules = kernel_nat_rules()
    assert not any(rule_comment(app, rule_id) in rules for rule_id in ids)
    assert app.extensions["incus_api"].db.query("SELECT * FROM nat_rules") == []


def test_failed_container_delete_keeps_its_nat_rules(api, app, make_container, monkeypatch):
    from incus_api.exceptions import IncusError

    name = make_container()
    port = free_port()
    rule_id = api.post(f"/container/{name}/add_nat_rule", data={"host_port": str(port), "container_port": "80", "protocol": "tcp"}).get_json()["rule_id"]
    incus = app.extensions["incus_api"].incus

    def refuse(instance):
        raise IncusError("daemon said no")

    monkeypatch.setattr(incus, "delete", refuse)
    response = api.post(f"/container/{name}/action", data={"action": "delete"})
    assert response.status_code == 500
    assert rule_comment(app, rule_id) in kernel_nat_rules()
    assert len(api.get(f"/container/{name}/nat_rules").get_json()["rules"]) == 1


def test_dhcp_address_arrives_after_create(api, container_name, busybox_image):
    """Adding a rule right after create waits briefly for the container's DHCP address."""
    name = container_name()
    assert api.post("/container/create", data={"name": name, "image": busybox_image}).status_code == 200
    response = api.post(f"/container/{name}/add_nat_rule", data={"host_port": str(free_port()), "container_port": "80", "protocol": "tcp"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rule"]["container_ip"] == wait_for_ipv4(name)


def test_exec_timeout_is_a_clear_error(tmp_path, make_container):
    from incus_api import create_app
    from tests.conftest import API_HEADERS, API_SECRET

    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": API_SECRET, "EXEC_TIMEOUT": 1},
                     instance_path=tmp_path)
    name = make_container(wait_for_ip=False)
    response = app.test_client().post(f"/container/{name}/exec", data={"command": "sleep 5"},
                                      headers={**API_HEADERS, "Accept-Language": "en"})
    assert response.status_code == 504
    assert response.get_json() == {"status": "error", "message": "The command did not finish within 1 s"}
