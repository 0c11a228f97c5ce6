"""What a pass may bill as received: no more than the container's veth delivered (pure; the real
veths, floods and restarts are in tests/integration/test_traffic.py)."""
import struct

from incus_api.host import links
from incus_api.parse.quantities import incus_rate
from incus_api.service.traffic.quotas import same_rate
from incus_api.service.traffic.sampler import UNKNOWN, delivered, host_veth

NIC = {"eth0": {"type": "nic", "network": "incusbr0"}}


def row(veth, seen):
    return {"veth": veth, "veth_tx_seen": seen}


def test_the_same_veth_delivered_its_growth():
    assert delivered(row("b/7", 1000), links.Link("b/7", 5000), {}.get) == 4000
    assert delivered(row("b/7", 9000), links.Link("b/7", 5000), {}.get) == 5000  # went down: another interface


def test_no_veth_delivered_nothing():
    assert delivered(None, None, {}.get) == 0
    assert delivered(row(None, None), None, {}.get) == 0


def test_a_new_veth_delivered_all_it_sent_and_the_old_one_what_it_sent_before_it_went():
    assert delivered(None, links.Link("b/9", 300), {}.get) == 300  # first seen
    assert delivered(row(None, None), links.Link("b/9", 300), {}.get) == 300  # started since
    assert delivered(row("b/7", 1000), links.Link("b/9", 300), {"b/7": 1500}.get) == 800  # restarted
    assert delivered(row("b/7", 1000), None, {"b/7": 1500}.get) == 500  # stopped
    assert delivered(row("b/7", 1000), None, {}.get) == 0  # its deletion was not seen: nothing


def test_the_veth_is_the_one_incus_recorded_and_none_when_stopped():
    running = {"status": "Running", "expanded_devices": NIC, "config": {"volatile.eth0.host_name": "veth1234"}}
    assert host_veth(running, "incusbr0") == "veth1234"
    assert host_veth({**running, "config": {}}, "incusbr0") is UNKNOWN
    assert host_veth({"status": "Stopped", "expanded_devices": NIC, "config": {}}, "incusbr0") is None
    assert host_veth({**running, "status": "Stopped"}, "incusbr0") is None  # a name left from before a crash
    assert host_veth({**running, "expanded_devices": {}}, "incusbr0") is None  # no NIC on the bridge


def test_an_interface_name_never_leaves_sys_class_net(tmp_path):
    interface = tmp_path / "veth1" / "statistics"
    interface.mkdir(parents=True)
    (tmp_path / "veth1" / "ifindex").write_text("42\n")
    (interface / "tx_bytes").write_text("1234\n")
    assert links.read("veth1", root=str(tmp_path)) == links.Link(links.key_of(42), 1234)
    for name in ("..", "../veth1", "veth1/..", "", None, "a" * 16):
        assert links.read(name, root=str(tmp_path)) is None


def test_a_deletion_notice_gives_the_interfaces_last_counters():
    name = b"veth1234\0"
    stats = struct.pack("=23Q", 1, 2, 3, 4567, *range(19))
    attributes = b"".join(struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)
                          for kind, payload in ((links.IFLA_IFNAME, name), (links.IFLA_STATS64, stats)))
    body = struct.pack("=BBHiII", 0, 0, 1, 77, 0, 0) + attributes
    message = struct.pack("=IHHII", 16 + len(body), links.RTM_DELLINK, 0, 0, 0) + body
    other = struct.pack("=IHHII", 16 + len(body), 16, 0, 0, 0) + body  # RTM_NEWLINK: not a departure
    assert links.parse_departures(other + message) == [(77, "veth1234", 4567)]
    assert links.parse_departures(message[:40]) == []


def test_rates_compare_by_value():
    assert incus_rate("10Mbit") == 10_000_000 and incus_rate("1000kbit") == 1_000_000 and incus_rate("x") is None
    assert same_rate("1Mbit", "1000kbit") and not same_rate("1Mbit", "2Mbit")
    assert not same_rate(None, "1Mbit") and same_rate(None, None)
