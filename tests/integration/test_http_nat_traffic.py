"""The service behind a real HTTP server, driven like an outside client would, and real TCP
traffic from a network namespace through the host port into httpd inside a container."""
import requests

from tests.conftest import API_HEADERS, rule_comment, wait_for_ipv4
from tests.integration.conftest import free_port, kernel_nat_rules


def session():
    http = requests.Session()
    http.trust_env = False  # never through a proxy: everything here is on this machine
    http.headers.update(API_HEADERS)
    return http


def test_full_flow_over_http_with_real_traffic(app, live_server, container_name, busybox_image, test_host):
    http = session()
    name = container_name()
    port = free_port()

    created = http.post(f"{live_server}/container/create", data={"name": name, "image": busybox_image})
    assert created.status_code == 200, created.text
    assert created.headers["Content-Type"].startswith("application/json")
    container_ip = wait_for_ipv4(name)

    info = http.get(f"{live_server}/container/{name}/info").json()
    assert info["status"] == "Running" and info["ip"] == container_ip

    hostname = http.post(f"{live_server}/container/{name}/exec", data={"command": "hostname"}).json()
    assert hostname["status"] == "success" and hostname["output"].strip() == name

    assert test_host.http_get(test_host.host_ip, port) is None  # nothing forwarded yet

    added = http.post(f"{live_server}/container/{name}/add_nat_rule",
                      data={"host_port": port, "container_port": 80, "protocol": "tcp"}).json()
    assert added["status"] == "success", added
    assert added["rule"]["container_ip"] == container_ip

    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    listed = http.get(f"{live_server}/container/{name}/nat_rules").json()
    assert [r["id"] for r in listed["rules"]] == [added["rule_id"]]

    deleted = http.delete(f"{live_server}/container/nat_rule/{added['rule_id']}").json()
    assert deleted["status"] == "success"
    assert test_host.http_get(test_host.host_ip, port) is None

    again = http.post(f"{live_server}/container/{name}/add_nat_rule",
                      data={"host_port": port, "container_port": 80, "protocol": "tcp"}).json()
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    gone = http.post(f"{live_server}/container/{name}/action", data={"action": "delete"}).json()
    assert gone["status"] == "success" and gone["nat_rules_removed"] == 1
    assert rule_comment(app, again["rule_id"]) not in kernel_nat_rules()
    assert test_host.http_get(test_host.host_ip, port) is None
    assert http.get(f"{live_server}/container/{name}/info").status_code == 404


def test_http_errors_are_json_without_tracebacks(live_server):
    http = requests.Session()
    http.trust_env = False
    unauthenticated = http.post(f"{live_server}/container/create", data={"name": "x", "image": "y"})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["status"] == "error"
    http.headers.update(API_HEADERS)
    for response in (
        http.post(f"{live_server}/container/create", data={"name": "../etc", "image": "busybox"}),
        http.post(f"{live_server}/container/t-x/add_nat_rule", data={"host_port": "1e3", "container_port": "80", "protocol": "tcp"}),
        http.post(f"{live_server}/container/t-x/exec", data={"command": "x" * (2 * 1024 * 1024)}),
        http.get(f"{live_server}/container/nat_rule/abc"),
    ):
        assert 400 <= response.status_code < 500, response.status_code
        body = response.json()
        assert body["status"] in ("error", "NotFound") and body["message"]
        assert "Traceback" not in response.text and "/work/" not in response.text
