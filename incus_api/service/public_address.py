"""The public address customers connect to: ``PUBLIC_HOST``, else the host's default-route IPv4.

The default-route address is the source address the kernel picks for the default route: a UDP
socket "connected" to the default gateway (nothing is sent) tells it. It is looked up at most
every ``CACHE_SECONDS`` and shared by the API's answers and the dashboard.
"""
import ipaddress
import threading
import time

from ..host.route import default_route_address

CACHE_SECONDS = 30

_lock = threading.Lock()
_cached = {"at": -CACHE_SECONDS, "address": None}


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
