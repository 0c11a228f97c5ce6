"""The ZJMF (魔方财务) server module (billing/zjmf/incusapiweb/incusapiweb.php) under php-cli, each function
called with the parameters ZJMF passes (the server's fields, the product's config options, hostid, the host's
password; reinstall_os; CrackPassword's new password; ClientAreaOutput's key) against the live service over
HTTPS with its certificate pinned, its outcome checked in Incus and the API. The harness
(tests/billing/zjmf_harness.php) holds the stand-ins for what ZJMF provides: think\\Db (the host table) and
cmf_encrypt."""
import base64
import html
import json
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from incus_api.host.certificate import load, make_self_signed, public_key_pin
from tests.conftest import ROOT, incus_cli, unused_port

HARNESS = "zjmf_harness.php"
ZH = {"Accept-Language": "zh"}  # the module asks for the service's messages in Chinese, as ZJMF's users read them
TEMPLATE = ROOT / "billing" / "zjmf" / "incusapiweb" / "templates" / "info.html"


@pytest.fixture
def zjmf(service, php_call):
    """``zjmf(function, params, *args, get=None, db=None)`` -> (result, state): one module function run as
    ZJMF runs it; every call must leave no PHP warning, notice or error."""

    def call(function, params, *args, get=None, db=None, strict=None):
        state = {"args": list(args), "get": get or {}, "db": db or {"host": {}}}
        if strict:
            state["strict_columns"] = strict
        result, state, stderr = php_call(HARNESS, function, params, state, timeout=400)
        assert state["php_errors"] == [], state["php_errors"]
        assert "PHP " not in stderr, stderr
        return result, state

    return call


def server_fields(service, **overrides):
    """The server's fields as ZJMF passes them: IP, port, the X-API-Hash in the access hash and the public
    key pin in the username field."""
    fields = {"server_ip": "127.0.0.1", "server_host": "", "port": str(urlparse(service.base).port),
              "accesshash": service.api["X-API-Hash"], "server_username": public_key_pin(load(service.cert)),
              "server_password": "", "secure": "1"}
    fields.update(overrides)
    return fields


PLAN = {"image": "busybox", "cpu": "1", "memory": "256MiB", "swap": "false", "disk": "", "ingress": "",
        "egress": "", "processes": "300", "traffic_quota": "10GB", "traffic_direction": "both",
        "traffic_action": "suspend", "ports": "3", "ssh_port": "auto"}


def host_params(service, hostid, password="Zjmf-" + secrets.token_hex(4), **configoptions):
    return {**server_fields(service), "hostid": hostid, "domain": f"ser{hostid}", "username": "root",
            "password": password, "configoptions": {**PLAN, **configoptions}}


def incus_config(name):
    return json.loads(incus_cli("query", f"/1.0/instances/{name}").stdout)["config"]


def incus_state(name):
    return json.loads(incus_cli("query", f"/1.0/instances/{name}/state").stdout)["status"]


def render(vars_):
    """The template as ZJMF's engine fills it: each {$name} is the variable, escaped."""
    return re.sub(r"\{\$(\w+)\}", lambda match: html.escape(str(vars_.get(match.group(1), ""))), TEMPLATE.read_text())


def test_what_zjmf_reads_first(zjmf, service):
    meta, _ = zjmf("MetaData", {})
    assert meta["DisplayName"] and meta["APIVersion"]
    options, _ = zjmf("ConfigOptions", {})
    keys = [option["key"] for option in options]
    assert keys == ["image", "cpu", "memory", "disk", "swap", "ingress", "egress", "processes", "traffic_quota",
                    "traffic_direction", "traffic_action", "ports", "ssh_port"]
    for option in options:
        assert option["type"] in ("text", "dropdown") and option["name"] and "default" in option
        if option["type"] == "dropdown":
            assert option["default"] in option["options"]
    tabs, _ = zjmf("ClientArea", {"hostid": 1})
    assert list(tabs) == ["info"]
    link, _ = zjmf("TestLink", server_fields(service))
    assert link == {"status": 200, "data": {"server_status": 1, "msg": link["data"]["msg"]}}
    assert "0 container" in link["data"]["msg"] or "个容器" in link["data"]["msg"]
    url = server_fields(service, server_host=service.base, port="")  # a full address in the hostname field
    assert zjmf("TestLink", url)[0]["data"]["server_status"] == 1


def test_a_host_through_its_life(zjmf, service, busybox_image):
    """One container, made by the module itself, through every function ZJMF calls."""
    hostid = secrets.randbelow(10**8) + 10**8
    name = f"vps{hostid}"
    params = host_params(service, hostid)
    http = service.session()
    try:
        # CreateAccount: the plan in Incus, SSH and the port block in the host record.
        result, state = zjmf("CreateAccount", params)
        assert result["status"] == "success", result
        config = incus_config(name)
        assert (config["limits.cpu"], config["limits.memory"], config["limits.processes"]) == ("1", "256MiB", "300")
        info = http.get(f"{service.base}/container/{name}/info", headers=service.api, timeout=10).json()
        assert info["status"] == "Running" and info["port_block"]["count"] == 3
        assert info["traffic"]["quota_bytes"] == 10 * 10**9
        row = state["db"]["host"][str(hostid)]
        assert row["username"] == "root" and row["port"] == info["ssh"]["port"]
        assert row["dedicatedip"] == info["ssh"]["host"]
        assert row["password"] == "enc:" + base64.b64encode(params["password"].encode()).decode()
        block = info["port_block"]
        assert row["assignedips"] == f"{info['ssh']['host']}:{block['start']}-{block['end']}"

        # Status, Off, On, Reboot.
        assert zjmf("Status", params)[0] == {"status": "success", "data": {"status": "on", "des": "运行中 Running"}}
        assert zjmf("Off", params)[0]["status"] == "success"
        assert incus_state(name) == "Stopped"
        assert zjmf("Status", params)[0]["data"]["status"] == "off"
        assert zjmf("On", params)[0]["status"] == "success"
        assert zjmf("Reboot", params)[0]["status"] == "success"
        assert incus_state(name) == "Running"

        # CrackPassword: chpasswd in the container, the new password in the host record.
        new = "New-" + secrets.token_hex(4)
        result, state = zjmf("CrackPassword", params, new)
        if result["status"] == "success":
            assert state["db"]["host"][str(hostid)]["password"] == "enc:" + base64.b64encode(new.encode()).decode()
            shadow = incus_cli("exec", name, "--", "cat", "/etc/shadow").stdout
            assert re.search(r"^root:\$", shadow, re.M)
        else:  # the image has no chpasswd: the service's own words
            assert "chpasswd" in result["msg"], result
            assert state["updates"] == []

        # ChangePackage: only what changed, live.
        changed = {**params, "configoptions": {**PLAN, "cpu": "2", "memory": "512MiB", "traffic_quota": "20GB"},
                   "old_configoptions": dict(PLAN)}
        result, _ = zjmf("ChangePackage", changed)
        assert result["status"] == "success", result
        config = incus_config(name)
        assert (config["limits.cpu"], config["limits.memory"]) == ("2", "512MiB")
        assert incus_state(name) == "Running"
        traffic = http.get(f"{service.base}/container/{name}/traffic", headers=service.api, timeout=10).json()
        assert traffic["quota_bytes"] == 20 * 10**9

        # Vnc: a console link that opens in a browser.
        result, _ = zjmf("Vnc", params)
        assert result["status"] == "success" and result["url"].startswith(service.base + "/console/")
        page = http.get(result["url"], timeout=10)
        assert page.status_code == 200 and name in page.text

        # The client area: the facts, and its buttons (the control panel, the console).
        result, _ = zjmf("ClientAreaOutput", params, "info")
        assert result["template"] == "templates/info.html"
        facts = result["vars"]
        assert facts["error"] == "" and facts["status"] == "运行中 Running"
        assert facts["ssh"] == f"{info['ssh']['host']}:{info['ssh']['port']}"
        assert facts["ports"].startswith(f"{block['start']}-{block['end']} (3")
        assert facts["password"] == params["password"] and "20 GB" in facts["traffic"]
        shown = render(facts)
        assert facts["ssh"] in shown and 'data-incusapiweb="panel"' in shown and 'data-incusapiweb="console"' in shown
        _, state = zjmf("ClientAreaOutput", params, "info", get={"action": "panel"})
        assert state["exited"]
        link = re.search(r'url=(https://[^"]+/customer/[^"]+)"', state["output"]).group(1)
        opened = http.get(link, allow_redirects=False, timeout=10)
        assert opened.status_code == 302 and opened.headers["Location"].endswith("/customer")
        _, state = zjmf("ClientAreaOutput", params, "info", get={"action": "console"})
        assert re.search(r'url=https://[^"]+/console/', state["output"]), state["output"]

        # SuspendAccount / UnsuspendAccount: Status says suspend; a start is refused in the service's words.
        assert zjmf("SuspendAccount", params)[0]["status"] == "success"
        assert zjmf("Status", params)[0]["data"]["status"] == "suspend"
        assert incus_state(name) == "Stopped"
        refused, _ = zjmf("On", params)
        assert refused["status"] == "error" and refused["msg"], refused
        assert zjmf("UnsuspendAccount", params)[0]["status"] == "success"
        assert zjmf("Status", params)[0]["data"]["status"] == "on"

        # Reinstall: reinstall_os is the image; name, limits and forwards stay.
        result, _ = zjmf("Reinstall", {**params, "reinstall_os": busybox_image})
        assert result["status"] == "success", result
        assert incus_config(name)["limits.cpu"] == "2" and incus_state(name) == "Running"

        # TerminateAccount: the container and its forwards are gone.
        assert zjmf("TerminateAccount", params)[0]["status"] == "success"
        assert incus_cli("info", name, check=False).returncode != 0
        rules = http.get(f"{service.base}/nat_rules", headers=service.api, timeout=10).json()["rules"]
        assert not [rule for rule in rules if rule["container_name"] == name]
        missing, _ = zjmf("Status", params)
        assert missing["status"] == "error" and name in missing["msg"]
    finally:
        incus_cli("delete", "-f", name, check=False)


def test_failures_are_messages(zjmf, service, tmp_path):
    """Wrong hash, service down, container missing, bad config option, wrong pin, a fingerprint where the
    pin goes, no pin: a message a person understands, never a PHP error or a blank page."""
    http = service.session()
    hostid = secrets.randbelow(10**8) + 2 * 10**8
    params = host_params(service, hostid)

    wrong = {**params, "accesshash": "0" * 64}
    said = http.get(f"{service.base}/traffic", headers={"X-API-Hash": "0" * 64, **ZH}, timeout=10)
    assert said.status_code == 401
    link, _ = zjmf("TestLink", wrong)
    assert link["data"]["server_status"] == 0 and said.json()["message"] in link["data"]["msg"]
    result, _ = zjmf("On", wrong)
    assert result == {"status": "error", "msg": said.json()["message"]}

    down = {**params, "port": str(unused_port())}
    result, _ = zjmf("CreateAccount", down)
    assert result["status"] == "error" and "无法连接" in result["msg"] and "cannot reach" in result["msg"]
    link, _ = zjmf("TestLink", down)
    assert link["data"]["server_status"] == 0 and "cannot reach" in link["data"]["msg"]
    page, _ = zjmf("ClientAreaOutput", down, "info")  # the page still renders, every variable defined
    assert "cannot reach" in page["vars"]["error"]
    assert set(re.findall(r"\{\$(\w+)\}", TEMPLATE.read_text())) <= set(page["vars"])
    _, state = zjmf("ClientAreaOutput", down, "info", get={"action": "panel"})
    assert state["exited"] and "cannot reach" in state["output"] and "/customer/" not in state["output"]

    said = http.post(f"{service.base}/container/vps{hostid}/action", data={"action": "start"}, headers={**service.api, **ZH},
                     timeout=10).json()
    for function in ("On", "Off", "Status", "Vnc", "TerminateAccount"):
        result, _ = zjmf(function, params)
        assert result == {"status": "error", "msg": said["message"]}, (function, result)
    result, _ = zjmf("CrackPassword", params, "Another-1")
    assert result["status"] == "error" and f"vps{hostid}" in result["msg"]

    result, state = zjmf("CreateAccount", host_params(service, hostid, memory="lots"))
    assert result["status"] == "error" and "memory" in result["msg"], result
    assert state["updates"] == [] and incus_cli("info", f"vps{hostid}", check=False).returncode != 0

    other = tmp_path / "other"
    make_self_signed(str(other / "cert.pem"), str(other / "key.pem"), ["127.0.0.1"])
    pinned = {**params, "server_username": public_key_pin(load(str(other / "cert.pem")))}
    result, _ = zjmf("On", pinned)
    assert result["status"] == "error" and "pin" in result["msg"] and "不符" in result["msg"], result
    fingerprint = {**params, "server_username": "AA:BB:CC"}
    result, _ = zjmf("On", fingerprint)
    assert result["status"] == "error" and "sha256//" in result["msg"]
    unpinned = {**params, "server_username": ""}  # the system's CAs: a self-signed certificate is refused
    link, _ = zjmf("TestLink", unpinned)
    assert link["data"]["server_status"] == 0 and "certificate" in link["data"]["msg"].lower()
    ca_file = {**params, "server_username": str(Path(service.cert))}  # the service's certificate as the CA
    assert zjmf("TestLink", ca_file)[0]["data"]["server_status"] == 1
    clear = {**params, "server_host": f"http://127.0.0.1:{urlparse(service.base).port}"}  # never in clear
    link, _ = zjmf("TestLink", clear)
    assert link["data"]["server_status"] == 0 and "HTTPS only" in link["data"]["msg"]
    assert "HTTPS only" in zjmf("On", clear)[0]["msg"]
    said_insecure = {**params, "server_username": "insecure"}  # only when the seller writes it
    assert zjmf("TestLink", said_insecure)[0]["data"]["server_status"] == 1


def test_a_host_record_without_some_columns(zjmf, service, busybox_image):
    """A ZJMF whose host table lacks a column the module writes (ThinkPHP's strict fields throw): the sale
    stands, the core fields are written and the message says what was not."""
    hostid = secrets.randbelow(10**8) + 3 * 10**8
    name = f"vps{hostid}"
    params = host_params(service, hostid, ports="0", traffic_quota="0")
    try:
        result, state = zjmf("CreateAccount", params, strict={"host": ["dedicatedip", "username", "password"]})
        assert result["status"] == "success" and "主机记录" in result["msg"] and "[port]" in result["msg"], result
        row = state["db"]["host"][str(hostid)]
        assert row["username"] == "root" and row["dedicatedip"] and row["password"].startswith("enc:")
        assert "port" not in row and incus_state(name) == "Running"
    finally:
        subprocess.run(["incus", "delete", "-f", name], capture_output=True)
