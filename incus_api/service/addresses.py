"""The IPv4 address Incus gave a container's NIC, read from Incus, never from the container.

A container's root can put any address on its interfaces; what Incus reports as the instance's
state is what the container says. The address to trust is the one Incus assigned: the NIC's
pinned ``ipv4.address``, else the bridge's DHCP lease for the NIC's MAC address (dnsmasq runs on
the host), and only when it lies in the bridge's subnet and is not the gateway.

A new container's address is pinned outside the bridge's dynamic DHCP ranges
(``ipv4.dhcp.ranges``): dnsmasq leases addresses of its own choosing only inside them, to any
client that asks (root in a container can ask under as many made-up client addresses as it
likes), and outside them only the address pinned on the asking NIC (its ``dhcp-host`` entry).
"""
import ipaddress
from dataclasses import dataclass

# The dynamic range install_incus.sh gives a bridge: the top eighth of its subnet, at most this many
# addresses (dnsmasq keeps at most 1000 leases in all: the pinned addresses need theirs).
DYNAMIC_SHARE = 8
DYNAMIC_MAX = 256
DYNAMIC_MIN_SUBNET = 16  # a smaller subnet has no room for a range of its own


def parse_ranges(text):
    """``ipv4.dhcp.ranges`` (``"10.0.0.200-10.0.0.254,..."``) as ``((first, last), ...)``;
    a part that is not two IPv4 addresses is skipped."""
    ranges = []
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        try:
            ranges.append((ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())))
        except ValueError:
            continue
    return tuple(ranges)


@dataclass(frozen=True)
class BridgeNetwork:
    """The managed bridge's IPv4 subnet, as Incus configured it."""

    name: str
    gateway: ipaddress.IPv4Address
    subnet: ipaddress.IPv4Network
    dynamic: tuple = ()  # ((first, last), ...): where dnsmasq leases as it likes; (): anywhere (no ipv4.dhcp.ranges)

    @classmethod
    def from_incus(cls, network):
        """From ``GET /1.0/networks/<name>``; None when it has no IPv4 subnet of its own."""
        config = network.get("config") or {}
        try:
            interface = ipaddress.IPv4Interface(config.get("ipv4.address") or "")
        except ValueError:  # "none", "auto" not resolved, empty
            return None
        return cls(name=network.get("name", ""), gateway=interface.ip, subnet=interface.network,
                   dynamic=parse_ranges(config.get("ipv4.dhcp.ranges")))

    def usable(self, address):
        """Whether ``address`` can be a container's: in the subnet, not the gateway, network or broadcast."""
        try:
            ip = ipaddress.IPv4Address(address)
        except (ValueError, TypeError):
            return False
        return (ip in self.subnet and ip != self.gateway
                and ip not in (self.subnet.network_address, self.subnet.broadcast_address))

    def in_dynamic_range(self, address):
        """Whether dnsmasq may lease ``address`` to a client of its choosing: inside a dynamic
        range, or anywhere when the bridge has none."""
        if not self.dynamic:
            return True
        ip = ipaddress.IPv4Address(address)
        return any(first <= ip <= last for first, last in self.dynamic)

    def pinnable(self):
        """The addresses a new container may get pinned, lowest first: usable, and outside the
        dynamic ranges when the bridge has some."""
        for host in self.subnet.hosts():
            if host != self.gateway and not (self.dynamic and self.in_dynamic_range(host)):
                yield str(host)

    def first_free(self, used):
        """The lowest pinnable address not in ``used`` (strings), or None when there is none."""
        return next((address for address in self.pinnable() if address not in used), None)

    def suggested_range(self):
        """The dynamic range install_incus.sh sets (``"first-last"``): the top eighth of the
        subnet, at most DYNAMIC_MAX addresses; None for a subnet too small to split."""
        count = self.subnet.num_addresses
        if count < DYNAMIC_MIN_SUBNET:
            return None
        size = min(count // DYNAMIC_SHARE, DYNAMIC_MAX)
        broadcast = self.subnet.broadcast_address
        return f"{broadcast - size + 1}-{broadcast - 1}"


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


def unpinned_hwaddrs(instances, bridge):
    """The MAC addresses of the instances' NICs on ``bridge`` that have no pinned ``ipv4.address``,
    from Incus's config (the device's ``hwaddr``, else ``volatile.<nic>.hwaddr``), never from the
    container."""
    unpinned = set()
    for instance in instances or []:
        config = instance.get("config") or {}
        for device_name, device in (instance.get("expanded_devices") or {}).items():
            if device.get("type") != "nic" or bridge not in (device.get("network"), device.get("parent")):
                continue
            hwaddr = (device.get("hwaddr") or config.get(f"volatile.{device_name}.hwaddr") or "").lower()
            if hwaddr and not device.get("ipv4.address"):
                unpinned.add(hwaddr)
    return unpinned


@dataclass(frozen=True)
class _IncusLease:
    """A dynamic lease as Incus lists it (no expiry, no client id): the same fields as dnsmasq's."""

    address: str
    hwaddr: str
    expiry: int = 0
    client_id: str = ""


def allocation_view(network, incus_leases, file_leases, instances=None):
    """``(taken, strangers)`` for choosing a new container's address: ``taken`` may not be pinned;
    ``strangers`` (``{address: lease}``, a bridge without dynamic ranges only) are held by leases
    that count for nothing: their address may be pinned once that lease is released.

    ``incus_leases``: Incus's leases of the bridge (every pinned address, of stopped instances
    too, as "static"; the dynamic leases of existing instances); ``file_leases``: dnsmasq's own
    (``host.leases.Lease``), holders gone included; ``instances``: Incus's instances (read only
    for a bridge without dynamic ranges).

    With dynamic ranges, a lease outside them can only be a pinned address's (dnsmasq answers any
    other request there with a NAK): each counts, its holder gone or not, since dnsmasq hands the
    address to no other MAC while it lasts; leases inside never matter, nothing is pinned there.
    Without ranges, any client may lease any address, under made-up MACs or under its own with
    made-up client ids: a lease counts only as the one address of an instance's NIC that has no
    pinned address (its latest lease); every other is a stranger's.
    """
    taken = {str(network.gateway)}
    taken.update(lease["address"] for lease in incus_leases or []
                 if lease.get("type") == "static" and "." in lease.get("address", ""))
    if network.dynamic:
        taken.update(lease["address"] for lease in incus_leases or [] if "." in lease.get("address", ""))
        taken.update(lease.address for lease in file_leases)
        return taken, {}
    unpinned = unpinned_hwaddrs(instances, network.name)
    dynamic = [*file_leases, *(_IncusLease(lease["address"], (lease.get("hwaddr") or "").lower())
                               for lease in incus_leases or []
                               if lease.get("type") == "dynamic" and "." in lease.get("address", ""))]
    latest = {}
    for lease in dynamic:
        if lease.hwaddr in unpinned and (lease.hwaddr not in latest or lease.expiry > latest[lease.hwaddr].expiry):
            latest[lease.hwaddr] = lease
    taken.update(lease.address for lease in latest.values())
    strangers = {}
    for lease in dynamic:
        if lease.address not in taken:
            strangers.setdefault(lease.address, lease)
    return taken, strangers


def choose_address(network, taken, strangers):
    """``(address, lease)`` for a new container: the lowest pinnable address that neither ``taken``
    nor a stranger's lease holds, with lease None; else the lowest a stranger holds, with the
    lease to release first; ``(None, None)`` when every pinnable address is taken."""
    free = network.first_free(set(taken) | set(strangers))
    if free:
        return free, None
    held = network.first_free(taken)
    return (held, strangers.get(held)) if held else (None, None)
