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
