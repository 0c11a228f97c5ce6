"""Which host ports may be forwarded: never a reserved one, never one a host program listens on."""
from .. import host_sockets
from ..exceptions import Conflict
from ..i18n import N_

# DNS and DHCP: every container asks the host's dnsmasq on the bridge; a forward must never take them.
ALWAYS_RESERVED = (53, 67)


def parse_reserved_ports(spec):
    return {int(part) for part in str(spec).replace(" ", "").split(",") if part.isascii() and part.isdigit()}


class PortPolicy:
    def __init__(self, config):
        self.reserved = parse_reserved_ports(config.get("RESERVED_PORTS", "22")) | set(ALWAYS_RESERVED)

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
