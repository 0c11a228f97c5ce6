"""Which host ports may be forwarded: never a reserved one, never one a host program listens on;
and the pool (``PORT_POOL``) that a sale's ports come from."""
from dataclasses import dataclass

from ..exceptions import Conflict
from ..host import sockets as host_sockets
from ..i18n import N_
from ..parse.ports import PORT_MAX, PORT_MIN
from ..store import nat_rules as rules_table
from ..store import port_blocks as blocks_table

# DNS and DHCP: every container asks the host's dnsmasq on the bridge; a forward must never take them.
ALWAYS_RESERVED = (53, 67)


def parse_reserved_ports(spec):
    return {int(part) for part in str(spec).replace(" ", "").split(",") if part.isascii() and part.isdigit()}


class PortPolicy:
    def __init__(self, config):
        self.reserved = parse_reserved_ports(config.get("RESERVED_PORTS", "22")) | set(ALWAYS_RESERVED)

    def unavailable(self, host_port, host_port_end, protocol):
        """Every port of the range that is reserved or listened on by a host program (what
        ``check`` refuses, all of them, with one read of the host's sockets)."""
        listening = host_sockets.listeners(protocol)
        return {port for port in range(host_port, host_port_end + 1) if port in self.reserved or port in listening}

    def check(self, host_port, host_port_end, protocol):
        """Raise ``Conflict`` naming the first port of the range that is reserved or in use on the host."""
        reserved = sorted(p for p in self.reserved if host_port <= p <= host_port_end)
        if reserved:
            raise Conflict(N_("Host port {port} is reserved and cannot be forwarded"), port=reserved[0])
        listening = host_sockets.listeners(protocol)
        taken = next((port for port in range(host_port, host_port_end + 1) if port in listening), None)
        if taken is not None:
            program = host_sockets.program_of(listening[taken].inode)
            if program:
                raise Conflict(N_("Host port {port}/{protocol} is in use on the host by {program}: a forward would take its traffic"),
                               port=taken, protocol=protocol, program=program)
            raise Conflict(N_("Host port {port}/{protocol} is in use on the host: a forward would take its traffic"),
                           port=taken, protocol=protocol)


# -- the pool: host ports handed out by ssh_port=auto and ports=N ------------------------------

@dataclass(frozen=True)
class PortRequest:
    """Forwards wanted for a container: ``count`` host ports from ``host_port`` (None: the first
    free block of the pool) to the container's ``container_port``.. (None: the same numbers),
    one rule per protocol. ``block``: the ports are recorded as the container's port block (a
    sale's ``ports=N``), held by it whether or not a rule forwards them later."""

    host_port: int = None
    count: int = 1
    container_port: int = None
    protocols: tuple = ("tcp",)
    block: bool = False


def parse_port_pool(spec):
    """``PORT_POOL`` (``start-end``, ASCII digits, 1-65535) -> ``(start, end)``; a ``SettingError``
    (the service refuses to start) for anything else."""
    from ..config import SettingError

    text = str(spec).replace(" ", "")
    start_text, dash, end_text = text.partition("-")
    if not dash:
        start_text = end_text = text
    if not all(part.isascii() and part.isdigit() and len(part) <= 5 for part in (start_text, end_text)):
        raise SettingError(f"PORT_POOL={spec!r}: a range start-end of host ports is needed, e.g. 20000-59999")
    start, end = int(start_text), int(end_text)
    if not PORT_MIN <= start <= end <= PORT_MAX:
        raise SettingError(f"PORT_POOL={spec!r}: ports 1-65535 with start <= end are needed")
    return start, end


def first_free_block(pool_start, pool_end, count, taken_points, taken_ranges):
    """The first ``start`` with ``start..start+count-1`` inside the pool and clear of every taken
    port and range, or None. Pure: ``taken_points`` are ports, ``taken_ranges`` ``(first, last)``."""
    blocked = sorted([(port, port) for port in taken_points if pool_start <= port <= pool_end]
                     + [(max(first, pool_start), min(last, pool_end)) for first, last in taken_ranges
                        if first <= pool_end and last >= pool_start])
    candidate = pool_start
    for first, last in blocked:
        if first - candidate >= count:
            break
        candidate = max(candidate, last + 1)
    return candidate if candidate + count - 1 <= pool_end else None


class PortPool:
    """Consecutive host ports of ``PORT_POOL`` that nothing holds: not reserved, not in a NAT rule
    of the database (either protocol, ranges included), not in a container's port block (with
    or without rules), not listened on by a host program (tcp or udp). ``free_block`` only reads; the NAT rule service calls it inside the write
    transaction that inserts the rules, so two creates never get the same ports."""

    def __init__(self, config, policy):
        self.start, self.end = parse_port_pool(config.get("PORT_POOL", "20000-59999"))
        self.policy = policy

    @staticmethod
    def listening():
        """The host ports a host program listens on (tcp or udp): read once for several blocks."""
        return set(host_sockets.listeners("tcp")) | set(host_sockets.listeners("udp"))

    def free_block(self, db, count, listening=None):
        """``(start, end)`` of the first ``count`` consecutive free ports; ``Conflict`` when none.
        ``listening``: the ports of ``listening()`` when the caller has just read them."""
        taken = rules_table.taken_between(db, self.start, self.end) + blocks_table.taken_between(db, self.start, self.end)
        listening = self.listening() if listening is None else listening
        start = first_free_block(self.start, self.end, count, self.policy.reserved | listening,
                                 taken)
        if start is None:
            raise Conflict(N_("The port pool {pool} has no {count} consecutive free ports left"),
                           pool=f"{self.start}-{self.end}", count=count)
        return start, start + count - 1
