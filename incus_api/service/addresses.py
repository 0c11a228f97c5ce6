"""Reading a container's IPv4 address out of Incus's state."""


def container_ipv4(state):
    """The first global IPv4 address on a non-loopback interface, or None."""
    for interface, details in sorted(((state or {}).get("network") or {}).items()):
        if interface == "lo" or not isinstance(details, dict):
            continue
        for address in details.get("addresses") or []:
            if address.get("family") == "inet" and address.get("scope") == "global":
                return address.get("address")
    return None


def ipv4_by_hwaddr(leases):
    """``{MAC address: IPv4}`` from a managed network's DHCP leases."""
    return {
        lease["hwaddr"].lower(): lease["address"]
        for lease in leases or []
        if lease.get("hwaddr") and "." in lease.get("address", "")
    }


def running_ipv4_from_leases(instance, by_hwaddr):
    """The IPv4 the leases give a running instance's NIC (``volatile.<nic>.hwaddr``), or None.
    Leases outlive a stop, so a stopped instance has none."""
    if instance.get("status") != "Running":
        return None
    for key, hwaddr in (instance.get("config") or {}).items():
        if key.startswith("volatile.") and key.endswith(".hwaddr") and hwaddr.lower() in by_hwaddr:
            return by_hwaddr[hwaddr.lower()]
    return None
