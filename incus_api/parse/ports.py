"""Ports: one, a range, a forward's two ranges, a protocol, ``ssh_port`` and a block's size."""
from ..exceptions import BadInput
from ..i18n import N_
from .numbers import whole_number

PORT_MIN, PORT_MAX = 1, 65535
PORT_DIGITS = len(str(PORT_MAX))
MAX_RANGE_SIZE = 1000  # host_port=start-end: at most this many ports
MAX_BLOCK = 1000  # ports=N and /ports/free?count=N: at most this many consecutive ports
PROTOCOLS = ("tcp", "udp")
SSH_PORT_AUTO = "auto"


def port(value, field):
    """A TCP/UDP port: plain decimal digits only (no sign, spaces, exponents or fractions)."""
    return whole_number(value, field, PORT_MIN, PORT_MAX)


def port_range(value, field):
    """A port or a range ``start-end`` (at most ``MAX_RANGE_SIZE`` ports): ``(start, end)``."""
    text = str(value)
    start_text, dash, end_text = text.partition("-")
    if not dash:
        start = port(text, field)
        return start, start
    start, end = port(start_text, field), port(end_text, field)
    if end < start or end - start + 1 > MAX_RANGE_SIZE:
        raise BadInput(
            N_("Invalid {field} range '{value}': start-end with start <= end, at most {limit} ports"),
            field=field, value=text[:40], limit=MAX_RANGE_SIZE,
        )
    return start, end


def forward_ports(host_range, container_range):
    """Parsed ``host_port`` and ``container_port`` ranges -> ``(host_start, host_end, container_start)``.

    A host range maps to the same-size container range; the container side may give just its start.
    """
    host_start, host_end = host_range
    container_start, container_end = container_range
    size = host_end - host_start
    if container_end != container_start and container_end - container_start != size:
        raise BadInput(N_("The host and container port ranges must have the same size"))
    if container_start + size > PORT_MAX:
        raise BadInput(N_("The container port range goes past 65535"))
    return host_start, host_end, container_start


def protocol(value):
    value = value.strip().lower()
    if value not in PROTOCOLS:
        raise BadInput(N_("Invalid protocol '{protocol}': use tcp or udp"), protocol=value[:40])
    return value


def ssh_port(value):
    """``auto`` (a free port of PORT_POOL) or a host port 1-65535."""
    if value.strip().lower() == SSH_PORT_AUTO:
        return SSH_PORT_AUTO
    if not value.isascii() or not value.isdigit():
        raise BadInput(N_("Invalid ssh_port '{value}': auto, or a host port from 1 to 65535"), value=value[:40])
    return port(value, "ssh_port")


def block_size(field):
    """A parser of ``field``: how many consecutive ports, 1 to ``MAX_BLOCK``."""
    return lambda value: whole_number(value, field, 1, MAX_BLOCK)
