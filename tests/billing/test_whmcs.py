"""The WHMCS module (billing/whmcs/modules/servers/incusapiweb) under PHP's CLI, each function
called with the parameters WHMCS passes (server fields, configoption1..N, service id, password,
custom fields), against the live service over HTTPS with its certificate pinned; the outcome is
checked in Incus and the API. The harness (whmcs_harness.php) stands in for logModuleCall,
localAPI and WHMCS\\Database\\Capsule, nothing else of WHMCS."""
import json
import re
import secrets
import subprocess
from urllib.parse import quote, quote_plus

import pytest

from incus_api.host.certificate import load, public_key_pin
from tests.conftest import ROOT, incus_cli, unused_port

HARNESS = "whmcs_harness.php"
MODULE = ROOT / "billing" / "whmcs" / "modules" / "servers" / "incusapiweb"
SERVER_ID = 7
PLAN = {"image": "busybox", "cpu": "1", "memory": "256MiB", "disk": "", "swap": "", "ingress": "", "egress": "",
        "processes": "200", "traffic_quota": "10GB", "traffic_direction": "both", "traffic_action": "suspend",
        "ports": "3", "ssh_port": "auto"}
OPTION_ORDER = list(PLAN)  # configoption1..N, as incusapiweb_ConfigOptions() declares them


def config_options(plan):
    return {f"configoption{i}": plan[key] for i, key in enumerate(OPTION_ORDER, start=1)}


def whmcs_params(service, serviceid, password, plan=PLAN, trust=None, hash_=None, port=None):
    """What WHMCS passes a server module: the service, its server's fields, the product's settings."""
    return {"serviceid": serviceid, "pid": 3, "serverid": SERVER_ID, "domain": f"vps{serviceid}.example.com",
            "username": "", "password": password, "producttype": "server", "moduletype": "incusapiweb",
            "serverhostname": "127.0.0.1", "serverip": "127.0.0.1", "serverport": port or int(service.base.rsplit(":", 1)[1]),
            "serversecure": True, "serverhttpprefix": "https",
            "serverusername": public_key_pin(load(service.cert)) if trust is None else trust, "serverpassword": "",
            "serveraccesshash": service.api["X-API-Hash"] if hash_ is None else hash_,
            "configoptions": {}, "customfields": {}, "clientsdetails": {"userid": 1}, **config_options(plan)}


def shadow_matches(name, password):
    """Whether root's hash in the container's /etc/shadow is that of ``password``."""
    line = incus_cli("exec", name, "--", "grep", "^root:", "/etc/shadow").stdout
    stored = line.split(":")[1]
    salt = stored.split("$")[2]
    made = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password, capture_output=True,
                          text=True, check=True).stdout.strip()
    return made == stored


def incus_config(name, key):
    return incus_cli("config", "get", name, key).stdout.strip()


def assert_logged_masked(states, *secret_values):
    """Every logModuleCall entry has the API hash and the passwords masked."""
    for state in states:
        assert state["log"], "the call was not logged"
        texts = [entry[field] for entry in state["log"] for field in ("request", "response", "processed")]
        for value in secret_values:
            for form in (value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]):
                assert not [text for text in texts if form in text], form


def test_module_files_lint(php):
    for path in [MODULE / "incusapiweb.php", ROOT / "tests" / "billing" / HARNESS]:
        done = subprocess.run([php, "-l", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (MODULE / "templates" / "clientarea.tpl").is_file() and (MODULE / "templates" / "console.tpl").is_file()


def test_metadata_options_and_buttons(php_call):
    meta, _, _ = php_call(HARNESS, "MetaData", {})
    assert meta["RequiresServer"] is True and meta["APIVersion"] == "1.1" and meta["DefaultSSLPort"] == "5000"
    options, _, _ = php_call(HARNESS, "ConfigOptions", {})
    labels = list(options)
    assert len(labels) == len(OPTION_ORDER)
    assert options["Image"]["Default"] == "debian12-ssh" and options["Memory"]["Default"] == "512MiB"
    assert options["SSH port"]["Default"] == "auto" and options["Swap"]["Type"] == "yesno"
    assert options["Traffic counted"]["Options"] == "both,out,in,max"
    buttons, _, _ = php_call(HARNESS, "ClientAreaCustomButtonArray", {})
    assert set(buttons.values()) == {"start", "stop", "restart", "reinstall", "console"}
    admin, _, _ = php_call(HARNESS, "AdminCustomButtonArray", {})
    assert set(admin.values()) == {"start", "stop", "restart", "reinstall", "console", "resettraffic"}


def test_a_sale_from_create_to_terminate(service, php_call, busybox_image):
    """One container through every function WHMCS calls, each checked in Incus and the API."""
    serviceid = 900000 + secrets.randbelow(99999)
    name, password = f"vps{serviceid}", "Wh-" + secrets.token_urlsafe(10)
    params = whmcs_params(service, serviceid, password)
    http = service.session()
    states = []

    def call(function, params=params, state=None, **kwargs):
        result, state, errors = php_call(HARNESS, function, params, state, **kwargs)
        assert errors == "", errors  # no PHP notice, warning or error
        states.append(state)
        return result, state

    def info():
        return http.get(f"{service.base}/container/{name}/info", headers=service.api, timeout=30).json()

    try:
        # CreateAccount: the plan in Incus, root's password WHMCS generated, the details stored.
        result, state = call("CreateAccount", timeout=330)
        assert result == "success"
        assert incus_config(name, "limits.cpu") == "1" and incus_config(name, "limits.memory") == "256MiB"
        assert incus_config(name, "limits.processes") == "200"
        assert shadow_matches(name, password)
        details = info()
        assert details["status"] == "Running"
        ssh, block = details["ssh"], details["port_block"]
        assert block["count"] == 3
        stored = state["tblhosting"][str(serviceid)]
        assert stored["dedicatedip"] == f"{ssh['host']}:{ssh['port']}" and stored["serviceusername"] == "root"
        assert stored["assignedips"] == f"ports {block['start']}-{block['end']} (tcp+udp)"
        assert "servicepassword" not in stored  # WHMCS's own password was used

        # The admin's tab and the client area show the live facts.
        fields, _ = call("AdminServicesTabFields")
        assert fields["Status"] == "Running" and fields["SSH"] == f"{ssh['host']}:{ssh['port']}"
        assert fields["Ports"] == f"{block['start']}-{block['end']} (tcp+udp)" and "10.00 GB" in fields["Traffic"]
        area, _ = call("ClientArea")
        assert area["tabOverviewReplacementTemplate"] == "templates/clientarea.tpl"
        variables = area["templateVariables"]
        assert variables["incus"]["ssh"] == f"{ssh['host']}:{ssh['port']}" and variables["incus_password"] == password
        assert variables["incus_sso_url"].endswith(f"id={serviceid}&dosinglesignon=1")
        assert variables["incus_console_url"].endswith("modop=custom&a=console")

        # UsageUpdate: one GET /traffic, written to this server's service rows only.
        rows = {str(serviceid): {"server": SERVER_ID, "bwusage": 5, "bwlimit": 1},
                str(serviceid + 1): {"server": SERVER_ID + 1, "bwusage": 5, "bwlimit": 1}}
        result, state = call("UsageUpdate", state={"tblhosting": rows})
        assert result == "success"
        mine = state["tblhosting"][str(serviceid)]
        assert mine["bwusage"] == 0 and mine["bwlimit"] == round(10 * 10**9 / 1048576) and mine["lastupdate"]
        assert state["tblhosting"][str(serviceid + 1)] == rows[str(serviceid + 1)]
        assert [u["where"] for u in state["updates"] if u["where"]["id"] == serviceid] == [{"id": serviceid, "server": SERVER_ID}]

        # SSO and console: links that open in a browser.
        sso, _ = call("ServiceSingleSignOn")
        assert sso["success"] is True and sso["redirectTo"].startswith(service.base + "/customer/")
        browser = service.session()
        opened = browser.get(sso["redirectTo"], allow_redirects=False, timeout=10)
        assert opened.status_code == 302 and opened.headers["Location"].endswith("/customer")
        assert browser.get(service.base + "/customer", timeout=10).status_code == 200
        console, _ = call("console")
        assert console["templatefile"] == "templates/console"
        url = console["vars"]["console_url"]
        assert url.startswith(service.base + "/console/")
        assert service.session().get(url, timeout=10).status_code == 200

        # ChangePassword, ChangePackage (live).
        password2 = "Wh2+/=&\"" + secrets.token_urlsafe(10)  # encoded in the form and in JSON: masked all the same
        result, _ = call("ChangePassword", {**params, "password": password2})
        assert result == "success" and shadow_matches(name, password2)
        bigger = {**PLAN, "cpu": "2", "memory": "512MiB", "processes": "300", "traffic_quota": "20GB"}
        params2 = whmcs_params(service, serviceid, password2, plan=bigger)
        result, _ = call("ChangePackage", params2)
        assert result == "success"
        assert incus_config(name, "limits.cpu") == "2" and incus_config(name, "limits.memory") == "512MiB"
        assert incus_config(name, "limits.processes") == "300"

        def traffic():
            return http.get(f"{service.base}/container/{name}/traffic", headers=service.api, timeout=30).json()

        assert traffic()["quota_bytes"] == 20 * 10**9
        # A traffic top-up: the configurable option "traffic_quota|Monthly traffic" upgraded (WHMCS
        # calls ChangePackage with it in configoptions), or the admin's "Reset traffic" button.
        result, _ = call("ChangePackage", {**params2, "configoptions": {"traffic_quota": "30GB"}})
        assert result == "success" and traffic()["quota_bytes"] == 30 * 10**9
        period = traffic()["period"]["start"]
        assert call("resettraffic", params2)[0] == "success"
        assert traffic()["period"]["start"] > period and traffic()["quota_bytes"] == 30 * 10**9  # the quota stays

        # Suspend, unsuspend; a start of a suspended container is the service's message.
        assert call("SuspendAccount", params2)[0] == "success"
        details = info()
        assert details["status"] == "Stopped"
        refused = call("start", params2)[0]
        assert "suspended" in refused and name in refused and info()["status"] == "Stopped"
        assert call("UnsuspendAccount", params2)[0] == "success" and info()["status"] == "Running"

        # The buttons: stop, start, restart, reinstall (root's password stays WHMCS's).
        assert call("stop", params2)[0] == "success" and info()["status"] == "Stopped"
        assert call("start", params2)[0] == "success" and info()["status"] == "Running"
        assert call("restart", params2)[0] == "success" and info()["status"] == "Running"
        assert call("reinstall", params2, timeout=330)[0] == "success"
        assert info()["status"] == "Running" and shadow_matches(name, password2)
        assert info()["port_block"] == block

        # A wrong pin: refused before anything is sent (the container is still there).
        wrong = whmcs_params(service, serviceid, password2, plan=bigger, trust="sha256//" + "A" * 43 + "=")
        result, _ = call("TerminateAccount", wrong)
        assert "not the pinned one" in result and "nothing was sent" in result
        assert incus_cli("info", name, check=False).returncode == 0

        # TerminateAccount: the container and its forwards gone; a second one is no error.
        assert call("TerminateAccount", params2)[0] == "success"
        assert incus_cli("info", name, check=False).returncode != 0
        rules = http.get(f"{service.base}/nat_rules", headers=service.api, timeout=30).json()["rules"]
        assert not [rule for rule in rules if rule["container_name"] == name]
        assert call("TerminateAccount", params2)[0] == "success"

        assert_logged_masked(states, service.api["X-API-Hash"], password, password2)
    finally:
        incus_cli("delete", "-f", name, check=False)


def test_failures_are_messages(service, php_call):
    """Wrong hash, a service that is down, a missing container, a bad plan value: the service's
    own message (or "cannot reach ..."), never a PHP error."""
    serviceid = 900000 + secrets.randbelow(99999)
    params = whmcs_params(service, serviceid, "pw-" + secrets.token_hex(6))

    result, state, errors = php_call(HARNESS, "SuspendAccount", {**params, "serveraccesshash": "0" * 64})
    assert result == "Invalid X-API-Hash" and errors == ""
    assert "0" * 64 not in json.dumps(state["log"])
    chinese, _, _ = php_call(HARNESS, "SuspendAccount", {**params, "serveraccesshash": "0" * 64}, {"language": "chinese"})
    assert "X-API-Hash" in chinese and chinese != result  # WHMCS's default language picks the service's
    connection, _, _ = php_call(HARNESS, "TestConnection", {**params, "serveraccesshash": "0" * 64})
    assert connection == {"success": False, "error": "Invalid X-API-Hash"}

    closed = unused_port()
    result, _, _ = php_call(HARNESS, "CreateAccount", {**params, "serverport": closed})
    assert result.startswith(f"cannot reach incus-api-web at 127.0.0.1:{closed}: ")
    sso, _, _ = php_call(HARNESS, "ServiceSingleSignOn", {**params, "serverport": closed})
    assert sso["success"] is False and sso["errorMsg"].startswith("cannot reach incus-api-web")
    fields, _, _ = php_call(HARNESS, "AdminServicesTabFields", {**params, "serverport": closed})
    assert fields["incus-api-web"].startswith("cannot reach incus-api-web")

    result, _, _ = php_call(HARNESS, "SuspendAccount", params)
    assert re.search(rf"vps{serviceid}.*(not found|does not exist)|(not found|does not exist).*vps{serviceid}", result, re.I), result
    assert php_call(HARNESS, "ChangePassword", params)[0] != "success"

    bad = whmcs_params(service, serviceid, "pw-" + secrets.token_hex(6), plan={**PLAN, "memory": "abc"})
    result, _, _ = php_call(HARNESS, "CreateAccount", bad)
    assert "memory" in result and result != "success"
    assert incus_cli("info", f"vps{serviceid}", check=False).returncode != 0


def test_certificate_trust_modes(service, php_call):
    """The server's Username field: the key pin, a CA file, the system store, or insecure."""
    params = whmcs_params(service, 1, "")
    ok = {"success": True, "error": ""}
    assert php_call(HARNESS, "TestConnection", params)[0] == ok
    assert php_call(HARNESS, "TestConnection", {**params, "serverusername": service.cert})[0] == ok
    assert php_call(HARNESS, "TestConnection", {**params, "serverusername": "insecure"})[0] == ok
    system = php_call(HARNESS, "TestConnection", {**params, "serverusername": ""})[0]
    assert system["success"] is False and system["error"].startswith("cannot reach incus-api-web at 127.0.0.1:")
    assert "key pin sha256//... in the server's Username field" in system["error"]
    pinned = php_call(HARNESS, "TestConnection", {**params, "serverusername": "sha256//" + "B" * 43 + "="})[0]
    assert pinned["success"] is False and "not the pinned one" in pinned["error"]
    junk = php_call(HARNESS, "TestConnection", {**params, "serverusername": "admin"})[0]
    assert junk["success"] is False and "Username field" in junk["error"]


@pytest.mark.parametrize("hostname, port, expected", [
    ("panel.example.com", "", "https://panel.example.com:5000"),
    ("panel.example.com:8443", "5000", "https://panel.example.com:8443"),
    ("https://panel.example.com/", "443", "https://panel.example.com:443"),
    ("[2001:db8::1]:8443", "", "https://[2001:db8::1]:8443"),
    ("2001:db8::1", "5001", "https://[2001:db8::1]:5001"),
])
def test_server_address_from_whmcs_fields(php_call, hostname, port, expected):
    """The SSO link is built on the server's address as WHMCS's fields give it (no service
    needed: the admin link is made from the fields alone)."""
    params = {"serverhostname": hostname, "serverip": "", "serverport": port, "serversecure": False,
              "serverhttpprefix": "http"}  # HTTPS all the same: the hash never travels in clear
    link, _, _ = php_call(HARNESS, "AdminLink", params)
    assert f'href="{expected}/login"' in link


def test_create_without_a_password_stores_the_generated_one(service, php_call, busybox_image):
    """WHMCS gave no password: the one the service generated becomes the service's (UpdateClientProduct),
    and the module log never shows it."""
    serviceid = 900000 + secrets.randbelow(99999)
    name = f"vps{serviceid}"
    plan = {**PLAN, "ports": "0", "ssh_port": "", "traffic_quota": ""}
    try:
        result, state, errors = php_call(HARNESS, "CreateAccount", whmcs_params(service, serviceid, "", plan=plan), timeout=330)
        assert result == "success" and errors == ""
        stored = state["tblhosting"][str(serviceid)]
        generated = stored["servicepassword"]
        assert shadow_matches(name, generated)
        assert "assignedips" not in stored and stored["dedicatedip"]  # no port block; the container's address
        assert_logged_masked([state], service.api["X-API-Hash"], generated)
        assert php_call(HARNESS, "TerminateAccount", whmcs_params(service, serviceid, generated, plan=plan))[0] == "success"
    finally:
        incus_cli("delete", "-f", name, check=False)
