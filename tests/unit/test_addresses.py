"""The address to trust is the one Incus assigned, never one the container reports."""
from incus_api.service.addresses import BridgeNetwork, assigned_ipv4, bridge_nic, ipv4_by_hwaddr, used_ipv4

LEASES = [
    {"hostname": "web1", "hwaddr": "00:16:3E:AA:00:01", "address": "10.88.0.5", "type": "dynamic"},
    {"hostname": "web1", "hwaddr": "00:16:3e:aa:00:01", "address": "fd42::5", "type": "dynamic"},
    {"hostname": "evil", "hwaddr": "00:16:3e:aa:00:02", "address": "198.51.100.7", "type": "dynamic"},
    {"hostname": "gw", "hwaddr": "", "address": "10.88.0.1", "type": "gateway"},
]
NETWORK = BridgeNetwork.from_incus({"name": "incusbr0", "config": {"ipv4.address": "10.88.0.1/24"}})


def instance(status="Running", hwaddr="00:16:3e:AA:00:01", **nic):
    return {"name": "web1", "status": status, "config": {"volatile.eth0.hwaddr": hwaddr},
            "expanded_devices": {"root": {"type": "disk"},
                                 "eth0": {"type": "nic", "network": "incusbr0", "name": "eth0", **nic}}}


def test_leases_map_mac_addresses_to_ipv4_only():
    assert ipv4_by_hwaddr(LEASES)["00:16:3e:aa:00:01"] == "10.88.0.5"
    assert ipv4_by_hwaddr(None) == {}


def test_the_pinned_address_wins_running_or_not():
    by_hwaddr = ipv4_by_hwaddr(LEASES)
    assert assigned_ipv4(instance(**{"ipv4.address": "10.88.0.9"}), NETWORK, by_hwaddr) == "10.88.0.9"
    assert assigned_ipv4(instance("Stopped", **{"ipv4.address": "10.88.0.9"}), NETWORK, by_hwaddr) == "10.88.0.9"


def test_an_unpinned_running_nic_gets_its_lease_and_a_stopped_one_none():
    by_hwaddr = ipv4_by_hwaddr(LEASES)
    assert assigned_ipv4(instance(), NETWORK, by_hwaddr) == "10.88.0.5"
    assert assigned_ipv4(instance("Stopped"), NETWORK, by_hwaddr) is None
    assert assigned_ipv4(instance(hwaddr="00:16:3e:00:00:99"), NETWORK, by_hwaddr) is None


def test_addresses_outside_the_subnet_or_the_gateway_are_never_trusted():
    by_hwaddr = ipv4_by_hwaddr(LEASES)
    assert assigned_ipv4(instance(hwaddr="00:16:3e:aa:00:02"), NETWORK, by_hwaddr) is None
    for bad in ("10.88.0.1", "10.88.0.255", "10.88.0.0", "198.51.100.7", "not an address"):
        assert assigned_ipv4(instance(**{"ipv4.address": bad}), NETWORK, by_hwaddr) is None


def test_only_the_nic_on_the_managed_bridge_counts():
    other = {"name": "x", "expanded_devices": {"eth1": {"type": "nic", "nictype": "macvlan", "parent": "eno1"}}}
    assert bridge_nic(other, "incusbr0") == (None, None)
    assert assigned_ipv4(other, NETWORK, {}) is None


def test_a_new_container_gets_the_lowest_address_nobody_holds():
    static = {"hostname": "web2", "hwaddr": "00:16:3e:aa:00:03", "address": "10.88.0.2", "type": "static"}
    taken = used_ipv4(NETWORK, [*LEASES, static])
    assert {"10.88.0.1", "10.88.0.2", "10.88.0.5"} <= taken
    assert NETWORK.first_free(taken | {"10.88.0.3"}) == "10.88.0.4"
    full = BridgeNetwork.from_incus({"name": "b", "config": {"ipv4.address": "10.9.0.1/30"}})
    assert full.first_free({"10.9.0.1", "10.9.0.2"}) is None


def test_a_bridge_without_ipv4_has_no_network():
    assert BridgeNetwork.from_incus({"name": "b", "config": {"ipv4.address": "none"}}) is None
