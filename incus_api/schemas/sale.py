"""The parameters and answer shapes of a sale (``POST /container/create``'s ports) and of the
routes a billing system polls."""
from ..parse.ports import MAX_BLOCK, PORT_DIGITS, PORT_MAX, PORT_MIN, SSH_PORT_AUTO, block_size, ssh_port
from . import Param

SSH_PORT_PARAM = Param("ssh_port", ssh_port, {"type": "string", "pattern": f"^({SSH_PORT_AUTO}|[0-9]{{1,{PORT_DIGITS}}})$"},
                       description=(
    f"`{SSH_PORT_AUTO}`: a free host port of PORT_POOL, forwarded to the container's 22/tcp; or a host port "
    f"{PORT_MIN}-{PORT_MAX} (409 when reserved, listened on by a host program or already forwarded)."))
PORTS_PARAM = Param("ports", block_size("ports"), {"type": "integer", "minimum": 1, "maximum": MAX_BLOCK}, description=(
    "N: N consecutive free host ports of PORT_POOL, each forwarded tcp and udp to the same port numbers in the "
    "container. They are recorded as the container's port block: its own while it lives (its customer may point "
    "them elsewhere from their panel), never sold again before it is deleted."))
COUNT_PARAM = Param("count", block_size("count"), {"type": "integer", "minimum": 1, "maximum": MAX_BLOCK},
                    where="query", default=1, description="How many consecutive ports (default 1).")

ENDPOINT = {"type": "object", "required": ["host", "port"], "properties": {
    "host": {"type": ["string", "null"], "description": "PUBLIC_HOST, else the host's default-route IPv4"},
    "port": {"type": "integer"}}}
PORT_BLOCK = {"type": "object", "required": ["start", "end", "count"], "properties": {
    "start": {"type": "integer"}, "end": {"type": "integer"}, "count": {"type": "integer"}}}
