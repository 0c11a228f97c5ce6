"""doctor's traffic check: the decision over what the kernel table and the bridge say (pure; the
real table and bridge are checked in tests/integration/test_traffic.py)."""
from types import SimpleNamespace

from incus_api.service.doctor import Doctor
from incus_api.traffic.nft_counters import Snapshot


def doctor(ipv6, intact=True):
    incus = SimpleNamespace(network=lambda bridge: {"config": {"ipv4.address": "10.88.0.1/24", "ipv6.address": ipv6}})
    counters = SimpleNamespace(read=lambda: Snapshot("boot/1", {"web1": (0, 0)}, {"web1": "10.88.0.5"}, intact))
    return Doctor(incus, nat_rules=None, nic_guard=SimpleNamespace(bridge="incusbr0"),
                  traffic=SimpleNamespace(counters=counters, enabled=True))


def test_counters_in_the_kernel_and_no_ipv6_is_fine():
    check = doctor("none")._traffic_check()
    assert check.ok and check.params["count"] == 1


def test_a_bridge_with_ipv6_is_flagged_since_only_ipv4_is_counted():
    check = doctor("fd42::1/64")._traffic_check()
    assert not check.ok and "IPv6" in check.render()["detail"] and "ipv6.address none" in check.render()["hint"]


def test_a_missing_table_is_flagged():
    assert not doctor("none", intact=False)._traffic_check().ok
