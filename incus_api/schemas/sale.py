"""The parameters and answer shapes of a sale (``POST /container/create``'s ports) and of the
routes a billing system polls."""
from .. import validation
from ..exceptions import BadInput
from ..i18n import N_
from . import Param

MAX_BLOCK = 1000  # ports=N and /ports/free?count=N: at most this many consecutive ports


def ssh_port(value):
    """``auto`` (a free port of PORT_POOL) or a host port 1-65535."""
    if value.strip().lower() == "auto":
        return "auto"
    if not value.isascii() or not value.isdigit():
        raise BadInput(N_("Invalid ssh_port '{value}': auto, or a host port from 1 to 65535"), value=value[:40])
    return validation.port(value, "ssh_port")


def block_size(field):
    return lambda value: validation.whole_number(value, field, 1, MAX_BLOCK)


SSH_PORT_PARAM = Param("ssh_port", ssh_port, {"type": "string", "pattern": "^(auto|[0-9]{1,5})$"}, description=(
    "`auto`: a free host port of PORT_POOL, forwarded to the container's 22/tcp; or a host port 1-65535 "
    "(409 when reserved, listened on by a host program or already forwarded)."))
PORTS_PARAM = Param("ports", block_size("ports"), {"type": "integer", "minimum": 1, "maximum": MAX_BLOCK}, description=(
    "N: N consecutive free host ports of PORT_POOL, each forwarded tcp and udp to the same port numbers in the "
    "container."))
COUNT_PARAM = Param("count", block_size("count"), {"type": "integer", "minimum": 1, "maximum": MAX_BLOCK},
                    where="query", default=1, description="How many consecutive ports (default 1).")

ENDPOINT = {"type": "object", "required": ["host", "port"], "properties": {
    "host": {"type": ["string", "null"], "description": "PUBLIC_HOST, else the host's default-route IPv4"},
    "port": {"type": "integer"}}}
