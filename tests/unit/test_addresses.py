"""The address to trust is the one Incus assigned, never one the container reports; a new
container's address is one no lease of a made-up client can hold."""
from incus_api.host.leases import Lease
from incus_api.service.addresses import (
    BridgeNetwork,
    allocation_view,
    assigned_ipv4,
    bridge_nic,
    choose_address,
    ipv4_by_hwaddr,
    parse_ranges,
    unpinned_hwaddrs,
    used_ipv4,
)

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


# -- a new container's address on a bridge with a dynamic range ---------------------------------

SPLIT = BridgeNetwork.from_incus({"name": "incusbr0", "config": {"ipv4.address": "10.88.0.1/24",
                                                                "ipv4.dhcp.ranges": "10.88.0.224-10.88.0.254"}})


def made_up_clients(network, count, start=0, client_id=""):
    """What dnsmasq's file holds after ``count`` DHCP requests under made-up MACs: a lease for each
    address dnsmasq may hand out as it likes, as long as there is one."""
    hosts = [h for h in network.subnet.hosts() if h != network.gateway and network.in_dynamic_range(h)]
    return [Lease(str(host), f"02:fa:4b:00:{i >> 8:02x}:{i & 255:02x}", 1800000000 + i, client_id)
            for i, host in zip(range(start, start + count), hosts)]


def test_the_dynamic_ranges_are_read_from_the_bridge():
    assert [(str(a), str(b)) for a, b in SPLIT.dynamic] == [("10.88.0.224", "10.88.0.254")]
    assert parse_ranges("10.0.0.10-10.0.0.20, junk,10.0.0.30-10.0.0.40") == parse_ranges("10.0.0.10-10.0.0.20,10.0.0.30-10.0.0.40")
    assert len(parse_ranges("10.0.0.10-10.0.0.20,10.0.0.30-10.0.0.40")) == 2
    assert parse_ranges("") == parse_ranges(None) == NETWORK.dynamic == ()


def test_sales_are_pinned_outside_the_dynamic_range_only():
    pinnable = list(SPLIT.pinnable())
    assert pinnable[0] == "10.88.0.2" and pinnable[-1] == "10.88.0.223" and len(pinnable) == 222
    assert SPLIT.in_dynamic_range("10.88.0.224") and not SPLIT.in_dynamic_range("10.88.0.223")
    assert SPLIT.first_free({str(h) for h in SPLIT.subnet.hosts()} - {"10.88.0.230"}) is None
    # A bridge without a range: every usable address may be pinned, and dnsmasq may lease any.
    assert len(list(NETWORK.pinnable())) == 253 and NETWORK.in_dynamic_range("10.88.0.2")


def test_the_suggested_range_is_the_top_eighth_of_the_subnet_at_most_256_addresses():
    def suggested(cidr):
        return BridgeNetwork.from_incus({"config": {"ipv4.address": cidr}}).suggested_range()

    assert suggested("10.88.0.1/24") == "10.88.0.224-10.88.0.254"
    assert suggested("172.16.0.1/22") == "172.16.3.128-172.16.3.254"
    assert suggested("10.0.0.1/16") == "10.0.255.0-10.0.255.254"
    assert suggested("10.1.2.3/29") is None


def test_a_thousand_made_up_clients_leave_every_pinnable_address_free():
    flood = made_up_clients(SPLIT, 1000)
    assert len(flood) == 31  # dnsmasq had no more to hand out
    taken, strangers = allocation_view(SPLIT, LEASES, flood)
    assert choose_address(SPLIT, taken, strangers) == ("10.88.0.2", None)


def test_with_a_range_every_lease_outside_it_counts_whoever_holds_it():
    """Outside the range dnsmasq leases only an address pinned on the asking NIC: a lease there
    whose holder is gone (a release that never arrived) still keeps the address from others."""
    static = {"hostname": "web2", "hwaddr": "00:16:3e:aa:00:03", "address": "10.88.0.2", "type": "static"}
    gone = Lease("10.88.0.3", "00:16:3e:aa:00:09", 1800000000, "")
    taken, strangers = allocation_view(SPLIT, [*LEASES, static], [gone, *made_up_clients(SPLIT, 40)])
    assert {"10.88.0.1", "10.88.0.2", "10.88.0.3", "10.88.0.5"} <= taken and strangers == {}
    assert choose_address(SPLIT, taken, strangers) == ("10.88.0.4", None)


# -- a bridge without a dynamic range: a lease counts by its MAC ---------------------------------

def nic_of(name, hwaddr, pinned=None, status="Running"):
    nic = {"type": "nic", "network": "incusbr0", "name": "eth0", **({"ipv4.address": pinned} if pinned else {})}
    return {"name": name, "status": status, "config": {"volatile.eth0.hwaddr": hwaddr},
            "expanded_devices": {"eth0": nic, "root": {"type": "disk"}}}


def test_the_unpinned_nics_macs_come_from_incus_config():
    instances = [nic_of("a", "00:16:3E:AA:00:01"), nic_of("b", "00:16:3e:aa:00:02", pinned="10.88.0.9"),
                 {"name": "c", "config": {}, "expanded_devices": {"eth0": {"type": "nic", "network": "incusbr0",
                                                                          "hwaddr": "00:16:3e:aa:00:03"}}},
                 {"name": "d", "config": {"volatile.eth1.hwaddr": "00:16:3e:aa:00:04"},
                  "expanded_devices": {"eth1": {"type": "nic", "network": "other"}}}]
    assert unpinned_hwaddrs(instances, "incusbr0") == {"00:16:3e:aa:00:01", "00:16:3e:aa:00:03"}


def test_without_a_range_made_up_clients_count_for_nothing():
    flood = made_up_clients(NETWORK, 1000)
    assert len(flood) == 253  # every address of the bridge leased
    pinned = {"hostname": "web2", "hwaddr": "00:16:3e:aa:00:03", "address": flood[1].address, "type": "static"}
    instances = [nic_of("web2", "00:16:3e:aa:00:03", pinned=flood[1].address)]
    taken, strangers = allocation_view(NETWORK, [pinned], flood, instances)
    assert taken == {"10.88.0.1", flood[1].address}
    address, lease = choose_address(NETWORK, taken, strangers)
    assert address == flood[0].address == "10.88.0.2" and lease == flood[0]  # released before it is pinned
    # An address no lease holds goes first: nothing to release.
    taken, strangers = allocation_view(NETWORK, [pinned], flood[3:], instances)
    assert choose_address(NETWORK, taken, strangers) == ("10.88.0.2", None)


def test_without_a_range_an_instance_counts_for_one_address_whatever_its_client_ids():
    """Root in a container may ask under its own MAC with made-up client ids: dnsmasq gives each
    id a lease. An unpinned NIC holds its latest lease; a pinned one only its pinned address."""
    mine = "00:16:3e:aa:00:01"
    under_my_mac = [Lease(f"10.88.0.{i}", mine, 1800000000 + i, f"ff:{i:02x}") for i in range(2, 200)]
    unpinned = [nic_of("web1", mine)]
    taken, strangers = allocation_view(NETWORK, [], under_my_mac, unpinned)
    assert taken == {"10.88.0.1", "10.88.0.199"} and len(strangers) == 197
    assert choose_address(NETWORK, taken, strangers) == ("10.88.0.200", None)
    pinned_nic = [nic_of("web1", mine, pinned="10.88.0.50")]
    static = [{"hostname": "web1", "hwaddr": mine, "address": "10.88.0.50", "type": "static"}]
    taken, strangers = allocation_view(NETWORK, static, under_my_mac, pinned_nic)
    assert taken == {"10.88.0.1", "10.88.0.50"} and "10.88.0.199" in strangers
    # Incus lists the dynamic leases of an instance's MAC too: they count no more than dnsmasq's.
    listed = [{"hostname": "web1", "hwaddr": mine, "address": lease.address, "type": "dynamic"} for lease in under_my_mac]
    assert allocation_view(NETWORK, [*static, *listed], under_my_mac, pinned_nic)[0] == taken


def test_without_a_range_a_full_bridge_is_still_full():
    everyone = [nic_of(f"c{i}", f"00:16:3e:00:00:{i:02x}", pinned=f"10.9.0.{i}") for i in (2,)]
    tiny = BridgeNetwork.from_incus({"name": "incusbr0", "config": {"ipv4.address": "10.9.0.1/30"}})
    static = [{"hwaddr": "00:16:3e:00:00:02", "address": "10.9.0.2", "type": "static"}]
    taken, strangers = allocation_view(tiny, static, [], everyone)
    assert choose_address(tiny, taken, strangers) == (None, None)


# -- the sale's reservation, over a fake Incus and a lease file ---------------------------------

def bridge_addresses(tmp_path, ranges=None, flood=1000):
    from incus_api.service.bridge import BridgeAddresses
    from tests.unit.fake_incus import BRIDGE, FakeIncus

    incus = FakeIncus()
    if ranges:
        incus.networks[BRIDGE]["config"]["ipv4.dhcp.ranges"] = ranges
    network = BridgeNetwork.from_incus(incus.network(BRIDGE))
    lease_path = tmp_path / "dnsmasq.leases"
    flood = made_up_clients(network, flood)
    assert len(flood) == (31 if ranges else 253)
    lease_path.write_text("".join(f"{lease.expiry} {lease.hwaddr} {lease.address} * *\n" for lease in flood))
    return incus, BridgeAddresses(incus, BRIDGE, lease_file=str(lease_path))


def test_a_sale_beside_a_flooded_dynamic_range_reads_no_instance_and_releases_nothing(tmp_path, monkeypatch):
    from incus_api.service import bridge

    released = []
    monkeypatch.setattr(bridge.dhcp_leases, "release", lambda server, lease: released.append(lease))
    incus, addresses = bridge_addresses(tmp_path, ranges="10.10.10.224-10.10.10.254")
    with addresses.reserved() as address:
        assert address == "10.10.10.2"
    assert released == [] and ("instances", None) not in incus.reads


def test_a_sale_on_a_bridge_leased_out_to_made_up_clients_releases_the_lease_on_its_address(tmp_path, monkeypatch):
    from incus_api.service import bridge

    released = []
    monkeypatch.setattr(bridge.dhcp_leases, "release", lambda server, lease: released.append((server, lease)))
    incus, addresses = bridge_addresses(tmp_path)
    with addresses.reserved() as first, addresses.reserved() as second:
        assert first != second
    assert [(server, lease.address) for server, lease in released] == [("10.10.10.1", "10.10.10.2"), ("10.10.10.1", "10.10.10.3")]
    assert (first, second) == ("10.10.10.2", "10.10.10.3")
