"""dnsmasq's lease file, read on the host: every IPv4 lease, also a deleted container's; and the
release that hands one back to dnsmasq (checked against dnsmasq itself in
tests/integration/test_tenants.py)."""
import socket
import struct

import pytest

from incus_api.host.leases import Lease, lease_file, read, release_packet


def test_every_ipv4_lease_is_read_and_nothing_else(tmp_path):
    path = tmp_path / "dnsmasq.leases"
    path.write_text(
        "1795735873 10:66:6A:ae:9f:95 10.88.0.24 gone-container 01:10:66:6a:ae:9f:95\n"
        "1795735726 10:66:6a:25:30:b2 10.88.0.4 * *\n"
        "duid 00:01:00:01\n"
        "1795735726 10:66:6a:25:30:b3 fd42::5 v6 *\n"
        "1795735726 10:66:6a:25:30:b4 10.88.0.9")  # a torn last line still names its address
    assert read(path) == [
        Lease("10.88.0.24", "10:66:6a:ae:9f:95", 1795735873, "01:10:66:6a:ae:9f:95"),
        Lease("10.88.0.4", "10:66:6a:25:30:b2", 1795735726, ""),
        Lease("10.88.0.9", "10:66:6a:25:30:b4", 1795735726, ""),
    ]
    assert read(tmp_path / "missing") == []


def test_the_file_lives_beside_the_incus_socket():
    assert lease_file("/var/lib/incus/unix.socket", "incusbr0") == "/var/lib/incus/networks/incusbr0/dnsmasq.leases"


def fields(packet):
    op, htype, hlen, _, xid, _, flags, ciaddr = struct.unpack("!BBBB4sHH4s", packet[:16])
    chaddr = packet[28:28 + hlen]
    assert packet[236:240] == b"\x63\x82\x53\x63"
    options, rest = {}, packet[240:]
    while rest[0] != 255:
        options[rest[0]] = rest[2:2 + rest[1]]
        rest = rest[2 + rest[1]:]
    return {"op": op, "htype": htype, "xid": xid, "flags": flags, "ciaddr": socket.inet_ntoa(ciaddr),
            "chaddr": chaddr.hex(":"), "options": options}


def test_a_release_names_the_lease_its_client_and_the_server():
    packet = fields(release_packet("10.88.0.1", Lease("10.88.0.240", "02:fa:4b:00:00:01", 0, "01:09:09"), xid=b"abcd"))
    assert packet["op"] == 1 and packet["htype"] == 1 and packet["xid"] == b"abcd"
    assert packet["ciaddr"] == "10.88.0.240" and packet["chaddr"] == "02:fa:4b:00:00:01"
    assert packet["options"] == {53: b"\x07", 54: socket.inet_aton("10.88.0.1"), 61: b"\x01\x09\x09"}
    without_client_id = fields(release_packet("10.88.0.1", Lease("10.88.0.240", "02:fa:4b:00:00:01", 0, "")))
    assert 61 not in without_client_id["options"]


def test_a_lease_of_another_hardware_type_is_released_under_that_type():
    packet = fields(release_packet("10.88.0.1", Lease("10.88.0.7", "20-01:02:03:04:05:06:07:08", 0, "")))
    assert packet["htype"] == 0x20 and packet["chaddr"] == "01:02:03:04:05:06:07:08"
    for bad in ("", "zz:zz", "01:" * 17):
        with pytest.raises(ValueError):
            release_packet("10.88.0.1", Lease("10.88.0.7", bad.strip(":"), 0, ""))
