"""The IPv4 address Incus gave a container's NIC, read from Incus, never from the container.

A container's root can put any address on its interfaces; what Incus reports as the instance's
state is what the container says. The address to trust is the one Incus assigned: the NIC's
pinned ``ipv4.address``, else the bridge's DHCP lease for the NIC's MAC address (dnsmasq runs on
the host), and only when it lies in the bridge's subnet and is not the gateway.
"""
import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class BridgeNetwork:
    """The managed bridge's IPv4 subnet, as Incus configured it."""

    name: str
    gateway: ipaddress.IPv4Address
    subnet: ipaddress.IPv4Network

    @classmethod
    def from_incus(cls, network):
        """From ``GET /1.0/networks/<name>``; None when it has no IPv4 subnet of its own."""
        address = (network.get("config") or {}).get("ipv4.address") or ""
        try:
            interface = ipaddress.IPv4Interface(address)
        except ValueError:  # "none", "auto" not resolved, empty
            return None
        return cls(name=network.get("name", ""), gateway=interface.ip, subnet=interface.network)

    def usable(self, address):
        """Whether ``address`` can be a container's: in the subnet, not the gateway, network or broadcast."""
        try:
            ip = ipaddress.IPv4Address(address)
        except (ValueError, TypeError):
            return False
        return (ip in self.subnet and ip != self.gateway
                and ip not in (self.subnet.network_address, self.subnet.broadcast_address))

    def first_free(self, used):
        """The lowest usable address not in ``used`` (strings), or None when the subnet is full."""
        for host in self.subnet.hosts():
            if host != self.gateway and str(host) not in used:
                return str(host)
        return None


def bridge_nic(instance, bridge):
    """``(device name, device)`` of the instance's NIC on the managed ``bridge``, or ``(None, None)``."""
    for device_name, device in sorted((instance.get("expanded_devices") or {}).items()):
        if device.get("type") == "nic" and device.get("network") == bridge:
            return device_name, device
    return None, None


def ipv4_by_hwaddr(leases):
    """``{MAC address: IPv4}`` from a managed network's DHCP leases."""
    return {
        lease["hwaddr"].lower(): lease["address"]
        for lease in leases or []
        if lease.get("hwaddr") and "." in lease.get("address", "")
    }


def assigned_ipv4(instance, network, by_hwaddr):
    """The IPv4 Incus assigned to the instance's NIC on ``network`` (a ``BridgeNetwork``), or None.

    The pinned ``ipv4.address`` first; else the lease of the NIC's MAC address, for a running
    instance only (leases outlive a stop). Anything outside the subnet, or the gateway, is None.
    """
    device_name, device = bridge_nic(instance, network.name)
    if device is None:
        return None
    pinned = device.get("ipv4.address")
    if pinned:
        return pinned if network.usable(pinned) else None
    if instance.get("status") != "Running":
        return None
    hwaddr = (device.get("hwaddr") or (instance.get("config") or {}).get(f"volatile.{device_name}.hwaddr") or "").lower()
    leased = by_hwaddr.get(hwaddr)
    return leased if leased and network.usable(leased) else None


def used_ipv4(network, leases):
    """Every address of the subnet that is taken: the gateway, and each address in Incus's leases of
    the network, which list every pinned ``ipv4.address`` (type "static", stopped instances' too)
    beside the dynamic leases of existing instances."""
    used = {str(network.gateway)}
    used.update(lease["address"] for lease in leases or [] if "." in lease.get("address", ""))
    return used
