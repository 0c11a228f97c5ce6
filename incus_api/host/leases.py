"""Every address in a managed bridge's dnsmasq lease file, read on the host. No Flask, no Incus API.

Incus's leases API lists only the leases of instances that exist. Incus releases the lease of a
container it deletes, but a lease whose holder vanished otherwise (a NIC or namespace plugged into
the bridge by hand, a release that never arrived) stays in dnsmasq until it expires (an hour). An
address pinned on a new container while dnsmasq still leases it to that old MAC is not handed out,
and the new container, filtered to its pinned address, is cut off. So address allocation also reads
the file dnsmasq itself writes.
"""
import ipaddress
import os

MAX_BYTES = 4 * 1024 * 1024  # a lease line is under 200 bytes: room for a /16 and more


def lease_file(incus_socket, bridge):
    """Incus keeps its state beside its socket: ``<dir>/networks/<bridge>/dnsmasq.leases``."""
    return os.path.join(os.path.dirname(incus_socket), "networks", bridge, "dnsmasq.leases")


def leased_addresses(path):
    """The IPv4 addresses of every lease in the file (none when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_BYTES).decode("ascii", errors="replace")
    except OSError:
        return set()
    found = set()
    for line in text.splitlines():
        fields = line.split()  # expiry, MAC, address, hostname, client id
        if len(fields) >= 3:
            try:
                found.add(str(ipaddress.IPv4Address(fields[2])))
            except ValueError:  # IPv6 leases, a torn last line
                continue
    return found
