"""The host's default route, from ``/proc/net/route``, and the source address the kernel picks
for it: a UDP socket "connected" to the default gateway (nothing is sent) tells it."""
import socket
import struct

ROUTE_TABLE = "/proc/net/route"
# Documentation address (RFC 5737): only used to ask the kernel which source address its route
# would take when the default route has no gateway (a point-to-point link). Nothing is sent.
ROUTE_PROBE = "192.0.2.1"


def default_gateway(route_table=ROUTE_TABLE):
    """The IPv4 gateway of the default route with the lowest metric; ``None`` without one,
    ``"0.0.0.0"`` for a default route without a gateway."""
    best = None
    try:
        with open(route_table, encoding="ascii") as table:
            lines = table.read(1 << 20).splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 7 or fields[1] != "00000000":
            continue
        try:
            flags, metric = int(fields[3], 16), int(fields[6])
            gateway = socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
        except (ValueError, struct.error):
            continue
        if flags & 1 and (best is None or metric < best[0]):  # RTF_UP
            best = (metric, gateway)
    return best[1] if best else None


def default_route_address(route_table=ROUTE_TABLE):
    """The host's IPv4 address on its default route, or ``None`` when it has no default route."""
    gateway = default_gateway(route_table)
    if gateway is None:
        return None
    probe = ROUTE_PROBE if gateway == "0.0.0.0" else gateway
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address == "0.0.0.0" else address
