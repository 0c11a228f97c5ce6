"""dnsmasq's lease file, read on the host: every IPv4 lease counts, also a deleted container's."""
from incus_api.host.leases import lease_file, leased_addresses


def test_every_ipv4_lease_is_read_and_nothing_else(tmp_path):
    path = tmp_path / "dnsmasq.leases"
    path.write_text(
        "1795735873 10:66:6a:ae:9f:95 10.88.0.24 gone-container 01:10:66:6a:ae:9f:95\n"
        "1795735726 10:66:6a:25:30:b2 10.88.0.4 * *\n"
        "duid 00:01:00:01\n"
        "1795735726 10:66:6a:25:30:b3 fd42::5 v6 *\n"
        "1795735726 10:66:6a:25:30:b4 10.88.0.9")  # a torn last line still names its address
    assert leased_addresses(path) == {"10.88.0.24", "10.88.0.4", "10.88.0.9"}
    assert leased_addresses(tmp_path / "missing") == set()


def test_the_file_lives_beside_the_incus_socket():
    assert lease_file("/var/lib/incus/unix.socket", "incusbr0") == "/var/lib/incus/networks/incusbr0/dnsmasq.leases"
