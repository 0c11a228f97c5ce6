"""The public address customers connect to: ``PUBLIC_HOST``, else the host's default-route IPv4.

The default-route address is the source address the kernel picks for the default route: a UDP
socket "connected" to the default gateway (nothing is sent) tells it. It is looked up at most
every ``CACHE_SECONDS`` and shared by the API's answers and the dashboard.
"""
import ipaddress
import socket
import struct
import threading
import time

ROUTE_TABLE = "/proc/net/route"
CACHE_SECONDS = 30
# Documentation address (RFC 5737): only used to ask the kernel which source address its route
# would take when the default route has no gateway (a point-to-point link). Nothing is sent.
ROUTE_PROBE = "192.0.2.1"

_lock = threading.Lock()
_cached = {"at": -CACHE_SECONDS, "address": None}


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


def public_host(config):
    """``PUBLIC_HOST`` when set, else the default-route IPv4 (cached), else ``None``."""
    configured = (config.get("PUBLIC_HOST") or "").strip()
    if configured:
        return configured
    now = time.monotonic()
    with _lock:
        if now - _cached["at"] >= CACHE_SECONDS:
            _cached["address"] = default_route_address()
            _cached["at"] = now
        return _cached["address"]


def host_port(host, port):
    """``host:port`` as a customer types it (``[2001:db8::1]:22`` for an IPv6 address)."""
    if host is None:
        return None
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"
