"""NAT rules that survive: reboot (flushed kernel), container restarts and new addresses, FORWARD
DROP, other people's rules, port ranges, and many concurrent clients. Real kernel, real Incus,
real traffic from a network namespace."""
import ipaddress
import random
import secrets
import subprocess
import threading

import pytest
import requests

from tests.conftest import API_HEADERS, free_addresses, incus_cli, rule_comment, wait_for_ipv4
from tests.integration.conftest import free_port, kernel_nat_rules


def add_rule(api, name, host_port, container_port=80, protocol="tcp"):
    response = api.post(f"/container/{name}/add_nat_rule",
                        data={"host_port": str(host_port), "container_port": str(container_port), "protocol": protocol})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def simulate_reboot(app):
    """What a reboot does to our rules: the kernel forgets them (the DB does not)."""
    nat = app.extensions["incus_api"].nat
    for rule_id in {rule_id for rule_id, _ in nat.tagged()}:
        nat.remove_tagged(rule_id)


def both_backends_nat():
    nft = subprocess.run(["iptables-nft", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return kernel_nat_rules() + nft


def test_rules_come_back_after_a_reboot(api, app, runner, make_container, test_host):
    name = make_container()
    port = free_port()
    add_rule(api, name, port)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    simulate_reboot(app)
    assert test_host.http_get(test_host.host_ip, port) is None

    result = runner.invoke(args=["nat", "sync"])
    assert result.exit_code == 0 and "added [1]" in result.output, result.output
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    again = runner.invoke(args=["nat", "sync"])
    assert "added none, removed none" in again.output


def test_first_rule_pins_the_address_and_a_new_address_is_followed(api, app, make_container, test_host):
    name = make_container()
    address = wait_for_ipv4(name)
    port = free_port()
    add_rule(api, name, port)
    assert incus_cli("config", "device", "get", name, "eth0", "ipv4.address").stdout.strip() == address

    # Force another address (as a rebuild or a DHCP change would), then restart through the API.
    subnet = ipaddress.ip_interface(incus_cli("network", "get", "incusbr0", "ipv4.address").stdout.strip()).network
    high = {str(host) for host in list(subnet.hosts())[200:250]}
    new_address = next(address for address in free_addresses() if address in high)
    incus_cli("config", "device", "set", name, "eth0", f"ipv4.address={new_address}")
    restarted = api.post(f"/container/{name}/action", data={"action": "restart"})
    assert restarted.status_code == 200
    wait_for_ipv4(name)
    assert incus_cli("list", name, "-f", "csv", "-c", "4").stdout.split(" ")[0] == new_address

    rules = api.get(f"/container/{name}/nat_rules").get_json()["rules"]
    assert rules[0]["container_ip"] == new_address
    assert f"--to-destination {new_address}:80" in kernel_nat_rules()
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"


def test_stop_and_start_keeps_forwarding(api, make_container, test_host):
    name = make_container()
    port = free_port()
    add_rule(api, name, port)
    for action in ("stop", "start"):
        assert api.post(f"/container/{name}/action", data={"action": action}).status_code == 200
    wait_for_ipv4(name)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"


@pytest.fixture
def forward_policy_drop(forward_policy_drop_later):
    """FORWARD policy DROP in both backends, as Docker sets it; restored afterwards."""
    forward_policy_drop_later("iptables-legacy")
    forward_policy_drop_later("iptables-nft")


def test_forwarding_passes_a_forward_policy_drop_in_both_backends(api, app, runner, make_container, test_host, forward_policy_drop):
    name = make_container()
    port = free_port()
    add_rule(api, name, port)
    runner.invoke(args=["nat", "sync"])
    assert f'{app.config["NAT_TAG_PREFIX"]}forward' in subprocess.run(["iptables-nft", "-S", "FORWARD"], capture_output=True, text=True).stdout
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"


def test_foreign_rules_are_never_touched(api, app, runner, make_container):
    name = make_container()
    port, foreign_port = free_port(), free_port()
    foreign = ["-p", "tcp", "--dport", str(foreign_port), "-m", "comment", "--comment", "someone-else",
               "-j", "DNAT", "--to-destination", "10.88.0.250:80"]
    subprocess.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *foreign], check=True)
    try:
        rule = add_rule(api, name, port)
        runner.invoke(args=["nat", "sync"])
        api.delete(f"/container/nat_rule/{rule['rule_id']}")
        api.post(f"/container/{name}/action", data={"action": "delete"})
        runner.invoke(args=["nat", "sync"])
        assert '--comment someone-else' in kernel_nat_rules()
    finally:
        subprocess.run(["iptables-legacy", "-t", "nat", "-D", "PREROUTING", *foreign], check=False)


def test_a_rule_deleted_through_the_api_leaves_nothing_in_either_backend(api, make_container):
    name = make_container()
    port = free_port()
    rule = add_rule(api, name, port)
    assert f"--dport {port} " in kernel_nat_rules()
    api.delete(f"/container/nat_rule/{rule['rule_id']}")
    assert f"--dport {port} " not in both_backends_nat()

    other = add_rule(api, name, port)
    assert other["status"] == "success"
    api.post(f"/container/{name}/action", data={"action": "delete"})
    assert f"--dport {port} " not in both_backends_nat()


def test_a_rule_edited_away_by_hand_is_repaired(api, app, runner, make_container):
    name = make_container()
    port = free_port()
    rule = add_rule(api, name, port)
    subprocess.run(["iptables-legacy", "-t", "nat", "-D", "PREROUTING", *kernel_rule_args(app, rule["rule_id"])], check=True)
    stray = ["-p", "udp", "--dport", "9", "-m", "comment", "--comment", f'{app.config["NAT_TAG_PREFIX"]}999999', "-j", "DNAT", "--to-destination", "10.88.0.251:9"]
    subprocess.run(["iptables-legacy", "-t", "nat", "-A", "PREROUTING", *stray], check=True)
    result = runner.invoke(args=["nat", "sync"])
    assert f"added [{rule['rule_id']}]" in result.output and "removed [999999]" in result.output
    assert rule_comment(app, 999999) not in kernel_nat_rules()


def kernel_rule_args(app, rule_id):
    line = next(l for l in kernel_nat_rules().splitlines() if rule_comment(app, rule_id) in l)
    return [part.strip('"') for part in line.split()[2:]]


def test_port_range_carries_traffic_on_first_and_last_port(api, make_container, test_host):
    name = make_container()
    api.post(f"/container/{name}/exec", data={"command": "httpd -p 81 -h /www"})
    first = free_port()
    body = add_rule(api, name, f"{first}-{first + 1}", "80-81")
    assert body["rule"]["host_port_end"] == first + 1 and body["rule"]["container_port_end"] == 81
    assert f"--dport {first}:{first + 1} " in kernel_nat_rules()
    assert test_host.http_get(test_host.host_ip, first) == f"hello from {name}"
    assert test_host.http_get(test_host.host_ip, first + 1) == f"hello from {name}"

    overlap = api.post(f"/container/{name}/add_nat_rule", data={"host_port": str(first + 1), "container_port": "22", "protocol": "tcp"})
    assert overlap.status_code == 409
    bad = api.post(f"/container/{name}/add_nat_rule", data={"host_port": f"{first}-{first + 3}", "container_port": "80-81", "protocol": "tcp"})
    assert bad.status_code == 400

    api.delete(f"/container/nat_rule/{body['rule_id']}")
    assert test_host.http_get(test_host.host_ip, first + 1) is None


def test_reserved_ports_are_refused(api, make_container, app):
    name = make_container()
    for host_port in ("22", str(app.config["PORT"]), "20-30"):
        response = api.post(f"/container/{name}/add_nat_rule", data={"host_port": host_port, "container_port": "22", "protocol": "tcp"})
        assert response.status_code == 409, host_port
        assert response.get_json()["status"] == "error"


def test_doctor_explains_where_the_rules_live(runner, api, make_container):
    name = make_container()
    add_rule(api, name, free_port())
    result = runner.invoke(args=["doctor"])
    assert "iptables-legacy -t nat -S PREROUTING" in result.output
    assert "[ok] nat_rules: 1 NAT rule(s) in the database, 1 in the kernel" in result.output, result.output


def test_db_and_kernel_agree_after_200_random_operations_from_concurrent_clients(live_server, app, make_container):
    containers = [make_container(), make_container()]
    ports = [free_port() for _ in range(12)]
    errors = []

    def client(seed):
        rng = random.Random(seed)
        http = requests.Session()
        http.trust_env = False
        http.headers.update(API_HEADERS)
        for _ in range(25):
            if rng.random() < 0.6:
                response = http.post(f"{live_server}/container/{rng.choice(containers)}/add_nat_rule",
                                     data={"host_port": rng.choice(ports), "container_port": rng.choice([80, 81]),
                                           "protocol": rng.choice(["tcp", "udp"])})
            else:
                rules = http.get(f"{live_server}/container/{rng.choice(containers)}/nat_rules").json()["rules"]
                if not rules:
                    continue
                response = http.delete(f"{live_server}/container/nat_rule/{rng.choice(rules)['id']}")
            if response.status_code not in (200, 404, 409):
                errors.append((response.status_code, response.text))

    threads = [threading.Thread(target=client, args=(secrets.randbits(32),)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    db_rules = app.extensions["incus_api"].services.nat_rules.list_all()
    kernel = [forward for _, forward in app.extensions["incus_api"].nat.tagged()]
    assert sorted((r["id"], r["protocol"], r["host_port"], r["container_ip"], r["container_port"]) for r in db_rules) == \
        sorted((f.rule_id, f.protocol, f.host_port, f.container_ip, f.container_port) for f in kernel)
    used = [(r["protocol"], r["host_port"]) for r in db_rules]
    assert len(used) == len(set(used))
