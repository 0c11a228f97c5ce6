from incus_api.service.addresses import container_ipv4, ipv4_by_hwaddr, running_ipv4_from_leases

LEASES = [
    {"hostname": "web1", "hwaddr": "00:16:3E:AA:00:01", "address": "10.88.0.5", "type": "dynamic"},
    {"hostname": "web1", "hwaddr": "00:16:3e:aa:00:01", "address": "fd42::5", "type": "dynamic"},
    {"hostname": "gw", "hwaddr": "", "address": "10.88.0.1", "type": "gateway"},
]


def test_leases_map_mac_addresses_to_ipv4_only():
    assert ipv4_by_hwaddr(LEASES) == {"00:16:3e:aa:00:01": "10.88.0.5"}
    assert ipv4_by_hwaddr(None) == {}


def test_running_instances_get_their_nics_lease():
    by_hwaddr = ipv4_by_hwaddr(LEASES)
    instance = {"status": "Running", "config": {"image.os": "x", "volatile.eth0.hwaddr": "00:16:3e:AA:00:01"}}
    assert running_ipv4_from_leases(instance, by_hwaddr) == "10.88.0.5"
    assert running_ipv4_from_leases({**instance, "status": "Stopped"}, by_hwaddr) is None
    assert running_ipv4_from_leases({"status": "Running", "config": {}}, by_hwaddr) is None


def test_container_ipv4_skips_loopback_and_link_scope():
    state = {"network": {
        "lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "scope": "local"}]},
        "eth0": {"addresses": [{"family": "inet6", "address": "fe80::1", "scope": "link"},
                               {"family": "inet", "address": "10.88.0.7", "scope": "global"}]},
    }}
    assert container_ipv4(state) == "10.88.0.7"
    assert container_ipv4({}) is None and container_ipv4(None) is None
