"""A customer is root in their container: what they do there may not move a forward, capture the
host's traffic or reach a neighbour. Real Incus, real kernel, real traffic from a namespace."""
import ipaddress
import json
import secrets
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from incus_api.host import leases as dhcp_leases
from incus_api.service.addresses import BridgeNetwork
from tests.conftest import API_HEADERS, REAPER, free_addresses, incus_cli, wait_for_ipv4
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


def services(app):
    return app.extensions["incus_api"].services


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


def bridge_network(bridge="incusbr0"):
    return BridgeNetwork.from_incus(json.loads(incus_cli("query", f"/1.0/networks/{bridge}").stdout))


def lease_from_a_vanished_host(address, name, busybox_image):
    """Make dnsmasq lease ``address`` to a holder that then disappears without releasing it.

    Outside the bridge's dynamic range dnsmasq leases only the address pinned on the asking MAC,
    so the holder is a container pinned there (``name``, never started): a DHCP client in a
    namespace of our own on the bridge takes its MAC and the lease; the container then gets
    another MAC and is deleted, so the release Incus sends at delete names the other MAC (a
    crash or a lost release does the same). Incus's API does not list the lease, dnsmasq keeps
    it an hour."""
    incus_cli("create", busybox_image, name, "--device", f"eth0,ipv4.address={address}")
    mac = incus_cli("config", "get", name, "volatile.eth0.hwaddr").stdout.strip()
    token = secrets.token_hex(3)
    namespace, veth_bridge, veth_ns = f"t-lease-{token}", f"tlb{token}", f"tln{token}"
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)  # noqa: E731
    try:
        run("ip", "netns", "add", namespace)
        run("ip", "link", "add", veth_bridge, "type", "veth", "peer", "name", veth_ns)
        run("ip", "link", "set", veth_ns, "netns", namespace)
        run("ip", "link", "set", veth_bridge, "master", "incusbr0", "up")
        run("ip", "netns", "exec", namespace, "ip", "link", "set", veth_ns, "address", mac, "up")
        # -q: quit once leased, without a release; -s /bin/true: configure nothing.
        run("ip", "netns", "exec", namespace, "busybox", "udhcpc", "-i", veth_ns, "-r", address,
            "-n", "-q", "-t", "10", "-T", "1", "-s", "/bin/true")
    finally:
        subprocess.run(["ip", "link", "del", veth_bridge], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    incus_cli("config", "set", name, "volatile.eth0.hwaddr", "10:66:6a:" + ":".join(secrets.token_hex(1) for _ in range(3)))
    incus_cli("delete", name)
    assert (address, mac.lower()) in {(lease.address, lease.hwaddr) for lease in dhcp_leases.read(LEASE_FILE)}, \
        f"dnsmasq did not keep the lease of {address}"


def test_a_new_container_never_gets_an_address_dnsmasq_still_leases_to_a_vanished_host(api, container_name, busybox_image,
                                                                                       settled_bridge):
    leased = {lease.address for lease in dhcp_leases.read(LEASE_FILE)}  # a vanished host may hold some already
    stale = next(address for address in free_addresses() if address not in leased)
    lease_from_a_vanished_host(stale, container_name(), busybox_image)
    assert stale in free_addresses()  # Incus does not list it: only dnsmasq's own file does
    made = [container_name() for _ in range(3)]
    for name in made:
        create(api, name, busybox_image)
    pinned = [nic(name)["ipv4.address"] for name in made]
    assert stale not in pinned
    for name, address in zip(made, pinned):
        assert wait_for_ipv4(name) == address


# -- DHCP requests for made-up clients, sent from inside a container -----------------------------

FLOOD = 1000
# A DHCPDISCOVER with rapid commit (option 80) for each made-up client address: dnsmasq (run by
# Incus with --dhcp-rapid-commit) leases an address at once. A plain UDP socket, no privilege:
# run in the container's network namespace, what root in the container can send (its frames carry
# the NIC's own MAC and pinned address, so MAC and IPv4 filtering let them through).
DHCP_FLOOD = r"""
import socket, struct, sys, time
server, prefix = sys.argv[1], bytes.fromhex(sys.argv[2])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for sent, i in enumerate(int(word) for word in sys.stdin.read().split()):
        chaddr = prefix + i.to_bytes(2, "big")
        header = struct.pack("!BBBB4sHH16s16s64s128s", 1, 1, 6, 0, i.to_bytes(4, "big"), 0, 0x8000,
                             bytes(16), chaddr.ljust(16, b"\0"), b"", b"")
        sock.sendto(header + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 80, 0, 255]), (server, 67))
        if sent % 10 == 9:
            time.sleep(0.01)  # paced: a burst overflows dnsmasq's socket buffer, which drops most of it
"""


def dynamic_addresses_left(network, lease_file, bridge):
    """What dnsmasq could still hand a client of its choosing: the addresses of the dynamic range
    (the whole subnet without one) that no lease holds and no NIC has pinned."""
    held = {lease.address for lease in dhcp_leases.read(lease_file)}
    held |= {lease["address"] for lease in json.loads(incus_cli("query", f"/1.0/networks/{bridge}/leases").stdout)}
    return [str(h) for h in network.subnet.hosts() if h != network.gateway and network.in_dynamic_range(h) and str(h) not in held]


def made_up_leases(lease_file, prefix):
    return [lease for lease in dhcp_leases.read(lease_file) if lease.hwaddr.startswith(prefix)]


def made_up_prefix():
    """The first four bytes of the made-up client MACs: ``02:xx:xx:xx:`` (locally administered, random)."""
    return "02:" + ":".join(secrets.token_hex(1) for _ in range(3)) + ":"


def flood_from(name, network, lease_file, prefix, bridge="incusbr0", count=FLOOD, rounds=10):
    """DHCP requests for ``count`` made-up client MACs (``prefix`` + two bytes), sent to dnsmasq
    from inside ``name`` until it has no address left to hand out as it likes: the clients that got
    no lease ask again (as a DHCP client does), since a request dnsmasq's socket dropped under the
    burst goes unanswered."""
    prefix_hex = prefix.replace(":", "")
    pid = json.loads(incus_cli("query", f"/1.0/instances/{name}/state").stdout)["pid"]
    asking = list(range(count))
    for _ in range(rounds):
        subprocess.run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", DHCP_FLOOD, str(network.gateway), prefix_hex],
                       input=" ".join(map(str, asking)), text=True, check=True, capture_output=True, timeout=60)
        # Until dnsmasq is leased out, or its leases stop changing (it has answered what it got).
        seen, quiet_since = None, time.monotonic()
        while left := dynamic_addresses_left(network, lease_file, bridge):
            leases = made_up_leases(lease_file, prefix)
            if leases != seen:
                seen, quiet_since = leases, time.monotonic()
            elif time.monotonic() - quiet_since > 1:
                break
            time.sleep(0.1)
        else:
            return
        leased = {int(lease.hwaddr[len(prefix):].replace(":", ""), 16) for lease in seen}
        asking = [i for i in range(count) if i not in leased]
    raise AssertionError(f"dnsmasq still has {left[:5]}... to hand out after {rounds} rounds")


def release_all(network, lease_file, prefix, timeout=10):
    """Hand every made-up client's lease back to dnsmasq (the release the service sends), until
    its file holds none: dnsmasq would keep them an hour."""
    deadline = time.monotonic() + timeout
    while leases := made_up_leases(lease_file, prefix):
        for lease in leases:
            dhcp_leases.release(str(network.gateway), lease)
        assert time.monotonic() < deadline, f"{len(leases)} made-up leases not released"
        time.sleep(0.2)


def test_dhcp_requests_for_a_thousand_made_up_clients_cannot_stop_the_next_sale(api, app, container_name, busybox_image,
                                                                                  test_host, settled_bridge):
    network = bridge_network()
    assert network.dynamic, "incusbr0 has no ipv4.dhcp.ranges: run bash install_incus.sh"
    checks = {check.name: check for check in services(app).doctor.run_checks()}
    assert checks["dhcp_range"].ok, checks["dhcp_range"].render()
    tenant, customer = container_name(), container_name()
    create(api, tenant, busybox_image)
    wait_for_ipv4(tenant)
    prefix = made_up_prefix()
    try:
        flood_from(tenant, network, LEASE_FILE, prefix)
        made_up = made_up_leases(LEASE_FILE, prefix)
        # dnsmasq leased them what it leases as it likes, and nothing outside the dynamic range.
        assert made_up and all(network.in_dynamic_range(lease.address) for lease in made_up)

        create(api, customer, busybox_image)
        address = nic(customer)["ipv4.address"]
        assert not network.in_dynamic_range(address) and address not in {lease.address for lease in made_up}
        assert wait_for_ipv4(customer) == address  # dnsmasq handed it its pinned address
        port = free_port()
        assert add_rule(api, customer, port).status_code == 200
        assert test_host.http_get(test_host.host_ip, port) == f"hello from {customer}"
    finally:
        release_all(network, LEASE_FILE, prefix)


NO_RANGE_BRIDGE = f"tnr{secrets.token_hex(3)}"


@pytest.fixture
def bridge_without_range():
    """A bridge of the test's own whose dnsmasq may lease any address of the subnet (no
    ipv4.dhcp.ranges): the flood fills all of it, and incusbr0's users never notice. Deleted
    with its containers and leases afterwards."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    subnet = next(f"10.233.{n}." for n in secrets.SystemRandom().sample(range(256), 256) if f"10.233.{n}." not in routes)
    for _attempt in range(3):  # Incus sometimes trips over a veth that vanishes while it makes a bridge
        made = incus_cli("network", "create", NO_RANGE_BRIDGE, f"ipv4.address={subnet}1/24", "ipv4.nat=true",
                         "ipv6.address=none", check=False)
        if made.returncode == 0 or "does not exist" not in made.stderr:
            break
    assert made.returncode == 0, made.stderr
    try:
        yield NO_RANGE_BRIDGE
    finally:
        REAPER.drain()  # the test's containers, handed over at its end, are deleted now
        used_by = json.loads(incus_cli("query", f"/1.0/networks/{NO_RANGE_BRIDGE}").stdout).get("used_by") or []
        names = [path.rsplit("/", 1)[-1].split("?")[0] for path in used_by if path.startswith("/1.0/instances/")]
        if names:
            incus_cli("delete", "--force", *names, check=False)
        incus_cli("network", "delete", NO_RANGE_BRIDGE)


@pytest.mark.parametrize("app_overrides", [{"INCUS_BRIDGE": NO_RANGE_BRIDGE}])
def test_without_a_dynamic_range_a_made_up_clients_lease_is_released_for_the_next_sale(bridge_without_range, api, app,
                                                                                        container_name, busybox_image,
                                                                                        test_host):
    network = bridge_network(bridge_without_range)
    lease_file = dhcp_leases.lease_file(app.config["INCUS_SOCKET"], bridge_without_range)
    checks = {check.name: check for check in services(app).doctor.run_checks()}
    assert not checks["dhcp_range"].ok and network.suggested_range() in checks["dhcp_range"].render()["hint"]
    tenant, customer = container_name(), container_name()
    create(api, tenant, busybox_image)
    wait_for_ipv4(tenant)
    prefix = made_up_prefix()
    flood_from(tenant, network, lease_file, prefix, bridge_without_range)
    assert len(made_up_leases(lease_file, prefix)) == len(list(network.pinnable())) - 1  # all but the tenant's

    create(api, customer, busybox_image)
    address = nic(customer)["ipv4.address"]
    assert wait_for_ipv4(customer) == address  # the made-up client's lease on it was released first
    assert address not in {lease.address for lease in made_up_leases(lease_file, prefix)}
    port = free_port()
    assert add_rule(api, customer, port).status_code == 200
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {customer}"


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
    assert nic(victim)["ipv4.address"] == victim_address  # dnsmasq handed it its pinned address
    assert add_rule(api, victim, port).status_code == 200
    # the host knows the victim's MAC (the neighbour entry and our rule shown if not)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {victim}", (
        subprocess.run(["ip", "neigh", "show", victim_address, "dev", "incusbr0"], capture_output=True, text=True).stdout,
        [rule for rule in kernel_nat_rules().splitlines() if f"--dport {port} " in rule + " "])

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
