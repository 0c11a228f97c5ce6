"""doctor's dynamic range check: a bridge without ipv4.dhcp.ranges is flagged, with the command
that gives it the range install_incus.sh gives (the real bridge: tests/integration/test_tenants.py)."""
from types import SimpleNamespace

from incus_api.service.doctor import _dynamic_range_check


def check(config):
    incus = SimpleNamespace(network=lambda bridge: {"name": bridge, "config": config})
    return _dynamic_range_check(incus, "incusbr0")


def test_a_bridge_with_a_dynamic_range_is_fine():
    result = check({"ipv4.address": "10.88.0.1/24", "ipv4.dhcp.ranges": "10.88.0.224-10.88.0.254"})
    assert result.ok and "10.88.0.224-10.88.0.254" in result.render()["detail"]


def test_a_bridge_without_one_is_flagged_with_the_command_to_run():
    result = check({"ipv4.address": "10.88.0.1/24"})
    assert not result.ok
    assert "incus network set incusbr0 ipv4.dhcp.ranges=10.88.0.224-10.88.0.254" in result.render()["hint"]
