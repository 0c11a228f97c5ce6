"""The public address: PUBLIC_HOST, else the default route's gateway read from /proc/net/route."""
from incus_api.host.route import default_gateway
from incus_api.service import public_address
from incus_api.service.public_address import host_port, public_host

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def table(tmp_path, *rows):
    path = tmp_path / "route"
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return str(path)


def test_default_gateway_lowest_metric_of_the_up_default_routes(tmp_path):
    path = table(
        tmp_path,
        "incusbr0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
        "eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0",
        "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0",
        "eth2\t00000000\t01010101\t0002\t0\t0\t1\t00000000\t0\t0\t0",  # not up
    )
    assert default_gateway(path) == "192.0.2.1"


def test_no_default_route_no_address(tmp_path):
    assert default_gateway(table(tmp_path, "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0")) is None
    assert default_gateway(str(tmp_path / "missing")) is None


def test_public_host_setting_wins(monkeypatch):
    monkeypatch.setattr(public_address, "default_route_address", lambda: "198.51.100.7")
    monkeypatch.setitem(public_address._cached, "at", -1e9)
    assert public_host({"PUBLIC_HOST": " vps.example.com "}) == "vps.example.com"
    assert public_host({"PUBLIC_HOST": ""}) == "198.51.100.7"


def test_host_port_brackets_ipv6():
    assert host_port("203.0.113.5", 22) == "203.0.113.5:22"
    assert host_port("2001:db8::1", 22) == "[2001:db8::1]:22"
    assert host_port("vps.example.com", "20000-20002") == "vps.example.com:20000-20002"
    assert host_port(None, 22) is None
