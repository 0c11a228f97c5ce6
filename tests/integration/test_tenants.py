"""A customer is root in their container: what they do there may not move a forward, capture the
host's traffic or reach a neighbour. Real Incus, real kernel, real traffic from a namespace."""
import ipaddress
import json
import secrets
import shlex
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import API_HEADERS, free_addresses, incus_cli, wait_for_ipv4
from tests.integration.conftest import free_port, kernel_nat_rules


def create(api, name, busybox_image):
    response = api.post("/container/create", data={"name": name, "image": busybox_image})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def add_rule(api, name, host_port, container_port=80, protocol="tcp"):
    response = api.post(f"/container/{name}/add_nat_rule",
                        data={"host_port": str(host_port), "container_port": str(container_port), "protocol": protocol})
    return response


def in_container(name, *command, check=True):
    return incus_cli("exec", name, "--", *command, check=check)


def http_from(name, address, port=80):
    """GET / from inside the container with busybox nc (its wget crashes on this static build)."""
    result = in_container(name, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {address} {port}", check=False)
    return result.stdout.rpartition("\n\n")[2].strip() if "200 OK" in result.stdout else None


def nic(name):
    return json.loads(incus_cli("query", f"/1.0/instances/{name}").stdout)["expanded_devices"]["eth0"]


def gateway():
    return str(ipaddress.ip_interface(incus_cli("network", "get", "incusbr0", "ipv4.address").stdout.strip()).ip)


def rule_row(api, name):
    (rule,) = api.get(f"/container/{name}/nat_rules").get_json()["rules"]
    return rule


def test_create_pins_a_distinct_address_and_filters_the_nic_from_the_first_start(live_server, container_name, busybox_image):
    import requests

    names = [container_name() for _ in range(4)]

    def make(name):
        return requests.post(f"{live_server}/container/create", data={"name": name, "image": busybox_image},
                             headers=API_HEADERS, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(make, names))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    pinned = [nic(name).get("ipv4.address") for name in names]
    assert all(pinned) and len(set(pinned)) == 4, pinned
    for name, address in zip(names, pinned):
        device = nic(name)
        assert device["security.mac_filtering"] == device["security.ipv4_filtering"] == "true"
        assert device["security.port_isolation"] == "true"
        assert address != gateway()
        assert wait_for_ipv4(name) == address


LEASE_FILE = "/var/lib/incus/networks/incusbr0/dnsmasq.leases"


def lowest_free_address():
    """The address a create would pin if it looked only at what Incus lists."""
    return free_addresses()[0]


def lease_from_a_vanished_host(address):
    """Make dnsmasq lease ``address`` to a host that then disappears without releasing it: a DHCP
    client in a namespace of our own on the bridge, deleted afterwards. Incus releases the lease
    of a container it deletes, so this is how a lease outlives its holder (a crashed or
    hand-deleted NIC does the same); Incus's API does not list it, dnsmasq keeps it an hour."""
    token = secrets.token_hex(3)
    namespace, veth_bridge, veth_ns = f"t-lease-{token}", f"tlb{token}", f"tln{token}"
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)  # noqa: E731
    try:
        run("ip", "netns", "add", namespace)
        run("ip", "link", "add", veth_bridge, "type", "veth", "peer", "name", veth_ns)
        run("ip", "link", "set", veth_ns, "netns", namespace)
        run("ip", "link", "set", veth_bridge, "master", "incusbr0", "up")
        run("ip", "netns", "exec", namespace, "ip", "link", "set", veth_ns, "up")
        # -q: quit once leased, without a release; -s /bin/true: configure nothing.
        run("ip", "netns", "exec", namespace, "busybox", "udhcpc", "-i", veth_ns, "-r", address,
            "-n", "-q", "-t", "10", "-T", "1", "-s", "/bin/true")
    finally:
        subprocess.run(["ip", "link", "del", veth_bridge], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    with open(LEASE_FILE) as handle:
        assert f" {address} " in handle.read(), f"dnsmasq did not lease {address}"


def test_a_new_container_never_gets_an_address_dnsmasq_still_leases_to_a_vanished_host(api, container_name, busybox_image,
                                                                                       settled_bridge):
    stale = lowest_free_address()
    lease_from_a_vanished_host(stale)
    assert stale == lowest_free_address()  # Incus does not list it: only dnsmasq's own file does
    made = [container_name() for _ in range(3)]
    for name in made:
        create(api, name, busybox_image)
    pinned = [nic(name)["ipv4.address"] for name in made]
    assert stale not in pinned
    for name, address in zip(made, pinned):
        assert wait_for_ipv4(name) == address


def test_a_container_that_changes_its_address_moves_nothing(api, app, runner, container_name, busybox_image, test_host):
    name = container_name()
    create(api, name, busybox_image)
    address = wait_for_ipv4(name)
    port = free_port()
    assert add_rule(api, name, port).status_code == 200

    # Adding addresses (one outside the bridge, one a neighbour might hold) keeps the forward working.
    in_container(name, "ip", "addr", "add", "198.51.100.7/24", "dev", "eth0")
    assert runner.invoke(args=["nat", "sync"]).exit_code == 0
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    # Replacing its address with an outside one: the DB and the kernel stay on what Incus assigned.
    in_container(name, "ip", "addr", "flush", "dev", "eth0")
    in_container(name, "ip", "addr", "add", "198.51.100.7/24", "dev", "eth0")
    result = runner.invoke(args=["nat", "sync"])
    assert "re-addressed none" in result.output, result.output
    rule = rule_row(api, name)
    assert rule["container_ip"] == rule["ip_at_creation"] == address
    assert f"--to-destination {address}:80" in kernel_nat_rules()
    assert "198.51.100.7" not in kernel_nat_rules()
    info = api.get(f"/container/{name}/info").get_json()
    assert info["ip"] == address
    audit = api.get("/audit_log", query_string={"target": name}).get_json()["entries"]
    assert not [entry for entry in audit if entry["action"] == "nat_sync.readdress"]


def test_a_container_cannot_take_a_neighbours_address_or_traffic(api, container_name, busybox_image, test_host):
    attacker, victim = container_name(), container_name()
    create(api, attacker, busybox_image)
    create(api, victim, busybox_image)
    victim_address = wait_for_ipv4(victim)
    wait_for_ipv4(attacker)
    port = free_port()
    assert add_rule(api, victim, port).status_code == 200
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {victim}"  # the host knows the victim's MAC

    # The attacker claims the victim's address and announces it (gratuitous ARP), as root can:
    # without filtering the host's neighbour entry moves to the attacker's MAC and so does the forward.
    in_container(attacker, "ip", "addr", "add", f"{victim_address}/24", "dev", "eth0")
    in_container(attacker, "arping", "-U", "-c", "3", "-I", "eth0", victim_address, check=False)
    victim_mac = incus_cli("config", "get", victim, "volatile.eth0.hwaddr").stdout.strip().lower()
    neighbour = subprocess.run(["ip", "neigh", "show", victim_address, "dev", "incusbr0"], capture_output=True, text=True).stdout
    assert victim_mac in neighbour.lower(), neighbour
    for _ in range(3):
        assert test_host.http_get(test_host.host_ip, port) == f"hello from {victim}"
    assert nic(victim)["ipv4.address"] == victim_address


def test_containers_cannot_reach_each_other_over_the_bridge(api, container_name, busybox_image):
    first, second = container_name(), container_name()
    create(api, first, busybox_image)
    create(api, second, busybox_image)
    second_address = wait_for_ipv4(second)
    wait_for_ipv4(first)
    assert http_from(second, second_address) == f"hello from {second}"  # the probe works
    assert http_from(first, second_address) is None
    # The host's own services on the bridge stay reachable (dnsmasq answers DNS).
    dns = in_container(first, "nslookup", second, gateway(), check=False)
    assert gateway() in dns.stdout, dns.stdout + dns.stderr


def matched_packets(app, rule_id):
    """How many packets our DNAT rule ``rule_id`` has matched (its kernel counter)."""
    listing = subprocess.run(["iptables-legacy", "-t", "nat", "-L", "PREROUTING", "-v", "-x", "-n"],
                             capture_output=True, text=True, check=True).stdout
    tag = f'{app.config["NAT_TAG_PREFIX"]}{rule_id} '
    (line,) = [line for line in listing.splitlines() if tag in line + " "]
    return int(line.split()[0])


def test_a_forward_never_captures_what_containers_send_to_the_host(api, app, container_name, busybox_image, test_host):
    server, client = container_name(), container_name()
    create(api, server, busybox_image)
    create(api, client, busybox_image)
    wait_for_ipv4(server)
    wait_for_ipv4(client)
    port = free_port()
    rule_id = add_rule(api, server, port).get_json()["rule_id"]
    # From the bridge, the host's port is the host's: the rule does not even see the packets.
    assert http_from(client, gateway(), port) is None
    assert matched_packets(app, rule_id) == 0
    # From outside it forwards as ever.
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {server}"
    assert matched_packets(app, rule_id) == 1


@pytest.mark.parametrize("host_port,protocol", [(53, "udp"), (53, "tcp"), (67, "udp")])
def test_dns_and_dhcp_ports_are_always_reserved(api, make_container, host_port, protocol):
    name = make_container()
    refused = add_rule(api, name, host_port, 53, protocol)
    assert refused.status_code == 409 and str(host_port) in refused.get_json()["message"]
    assert api.get(f"/container/{name}/nat_rules").get_json()["rules"] == []


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_port_a_host_program_listens_on_is_refused(api, make_container, protocol):
    name = make_container()
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET6, kind) as listener:
        listener.bind(("::", 0))  # any address, both families
        if protocol == "tcp":
            listener.listen()
        port = listener.getsockname()[1]
        refused = add_rule(api, name, port, 80, protocol)
        message = refused.get_json()["message"]
        assert refused.status_code == 409 and f"{port}/{protocol}" in message and "python" in message, message
        in_range = add_rule(api, name, f"{port - 1}-{port + 1}", 80, protocol)
        assert in_range.status_code == 409 and f"{port}/{protocol}" in in_range.get_json()["message"]
    assert api.get(f"/container/{name}/nat_rules").get_json()["rules"] == []


def test_forward_drop_set_later_in_either_backend_leaves_traffic_flowing_at_once(api, app, make_container, test_host, forward_policy_drop_later):
    name = make_container()
    port = free_port()
    assert add_rule(api, name, port).status_code == 200
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"
    for backend in ("iptables-legacy", "iptables-nft"):
        forward_policy_drop_later(backend)
        assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}", backend


def test_a_flushed_forward_chain_is_repaired_by_the_next_sync(api, app, runner, make_container):
    name = make_container()
    assert add_rule(api, name, free_port()).status_code == 200
    tag = f'{app.config["NAT_TAG_PREFIX"]}forward'
    for command in ("iptables-legacy", "iptables-nft"):
        listing = subprocess.run([command, "-S", "FORWARD"], capture_output=True, text=True).stdout
        assert listing.count(tag) == 2, (command, listing)
        for line in listing.splitlines():
            if tag in line:
                subprocess.run([command, "-D", *shlex.split(line)[1:]], check=True)
    result = runner.invoke(args=["nat", "sync"])
    assert "FORWARD accept written in ['legacy', 'nft']" in result.output, result.output


def test_doctor_lists_containers_whose_nic_is_not_guarded(runner, make_container):
    name = make_container()  # made by hand with `incus launch`: no pinned address, no filters
    result = runner.invoke(args=["doctor"])
    assert "[FAIL] nic_guard" in result.output and name in result.output, result.output


def test_forwarding_to_a_container_made_by_hand_guards_it_and_isolates_it_at_the_next_start(api, make_container, test_host):
    name = make_container()
    address = wait_for_ipv4(name)
    port = free_port()
    assert add_rule(api, name, port).status_code == 200
    device = nic(name)
    assert device["ipv4.address"] == address
    assert device["security.mac_filtering"] == device["security.ipv4_filtering"] == "true"
    assert "security.port_isolation" not in device  # would unplug the running NIC
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"
    for action in ("stop", "start"):
        assert api.post(f"/container/{name}/action", data={"action": action}).status_code == 200
    assert nic(name)["security.port_isolation"] == "true"
    assert wait_for_ipv4(name) == address
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"
