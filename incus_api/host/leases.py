"""A managed bridge's dnsmasq leases, read on the host from the file dnsmasq writes, and a lease
handed back to dnsmasq (a DHCPRELEASE, as Incus sends one for a container it deletes). No Flask,
no Incus API.

Incus's leases API lists only the leases of instances that exist. Incus releases the lease of a
container it deletes, but a lease whose holder vanished otherwise (a NIC or namespace plugged into
the bridge by hand, a release that never arrived), or one that a container's root asked for under
a made-up client address, stays in dnsmasq until it expires (an hour). An address pinned on a new
container while dnsmasq still leases it to another MAC is not handed out ("not using configured
address ... because it is leased to ..."), and the new container, filtered to its pinned address,
is cut off. So address allocation also reads the file dnsmasq itself writes.
"""
import ipaddress
import os
import secrets
import socket
import struct
from typing import NamedTuple

MAX_BYTES = 4 * 1024 * 1024  # a lease line is under 200 bytes: room for a /16 and more
DHCP_SERVER_PORT = 67
ETHERNET = 1


class Lease(NamedTuple):
    address: str
    hwaddr: str  # as dnsmasq writes it: "aa:bb:..." (Ethernet), "<type>-aa:bb:..." (another type)
    expiry: int  # dnsmasq's end of the lease (seconds since the epoch; 0: never)
    client_id: str  # "01:aa:bb:..." or "" when the client sent none


def lease_file(incus_socket, bridge):
    """Incus keeps its state beside its socket: ``<dir>/networks/<bridge>/dnsmasq.leases``."""
    return os.path.join(os.path.dirname(incus_socket), "networks", bridge, "dnsmasq.leases")


def read(path):
    """Every IPv4 lease in the file (none when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_BYTES).decode("ascii", errors="replace")
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        fields = line.split()  # expiry, MAC, address, hostname, client id
        if len(fields) < 3:
            continue
        try:
            address = str(ipaddress.IPv4Address(fields[2]))
            expiry = int(fields[0])
        except ValueError:  # IPv6 leases, the "duid" line, a torn line
            continue
        client_id = fields[4] if len(fields) > 4 and fields[4] != "*" else ""
        found.append(Lease(address, fields[1].lower(), expiry, client_id))
    return found


def _hex_bytes(text):
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def release_packet(server, lease, xid=None):
    """The DHCPRELEASE that makes dnsmasq (whose address is ``server``) drop ``lease``: dnsmasq
    finds the lease by its client id, else by its hardware address, and drops it when its address
    is ``ciaddr``. ValueError when the lease's hardware address cannot be written in one."""
    hwtype, _, hwaddr = lease.hwaddr.rpartition("-") if "-" in lease.hwaddr else ("", "", lease.hwaddr)
    chaddr = _hex_bytes(hwaddr)
    if not 0 < len(chaddr) <= 16:
        raise ValueError(f"hardware address {lease.hwaddr!r}")
    options = bytes([53, 1, 7, 54, 4]) + socket.inet_aton(server)  # DHCPRELEASE, server identifier
    client_id = _hex_bytes(lease.client_id) if lease.client_id else b""
    if client_id:
        options += bytes([61, len(client_id[:255])]) + client_id[:255]
    header = struct.pack("!BBBB4sHH4s4s4s4s16s64s128s", 1, int(hwtype, 16) if hwtype else ETHERNET, len(chaddr), 0,
                         xid or secrets.token_bytes(4), 0, 0, socket.inet_aton(lease.address),
                         bytes(4), bytes(4), bytes(4), chaddr, b"", b"")
    return header + b"\x63\x82\x53\x63" + options + b"\xff"


def release(server, lease):
    """Send dnsmasq (listening on ``server``, the bridge's address) the release of ``lease``, from
    the host. Nothing answers a release: dnsmasq rewrites its lease file at once."""
    packet = release_packet(server, lease)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, (server, DHCP_SERVER_PORT))
