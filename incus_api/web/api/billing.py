"""What a billing system polls: every container, every NAT rule, the free host ports. Each route
is declared once; the service answers, this only shapes the JSON."""
from flask import jsonify
from flask_babel import gettext as _

from ...parse.listing import NAME_PART, name_part, status_filter
from ...schemas import Param, anchored, route
from ...schemas.params import RULE
from ...schemas.sale import COUNT_PARAM
from ...schemas.traffic import SUMMARY
from ...service.provisioning import Provisioner
from . import bp, services, success

CONTAINER_ROW = {"type": "object", "required": ["name", "status", "ipv4", "image", "nat_rules", "created_at"],
                 "properties": {
                     "name": {"type": "string"}, "status": {"type": ["string", "null"]},
                     "suspended": {"type": "boolean", "description": "Suspended by action=suspend"},
                     "ipv4": {"type": ["string", "null"], "description": "The address Incus assigned"},
                     "image": {"type": ["string", "null"]}, "limits": {"type": "object"},
                     "nat_rules": {"type": "integer", "description": "How many NAT rules it has"},
                     "created_at": {"type": ["string", "null"]}, "traffic": SUMMARY}}


@route(bp, "GET", "/containers", "Every container on the host", [
    Param("status", lambda value: status_filter(value, Provisioner.STATUSES),
          {"type": "string", "enum": list(Provisioner.STATUSES)}, where="query",
          description="Only containers in this state (case-insensitive)."),
    Param("q", name_part, {"type": "string", "pattern": anchored(NAME_PART)}, where="query",
          description="Only containers whose name holds this text (case-insensitive)."),
], answer={"containers": {"type": "array", "items": CONTAINER_ROW}, "count": {"type": "integer"},
           "live_data_available": {"type": "boolean"}},
    errors=(400, 401), description=(
    "Ordered by name. Live from Incus (one instance list and the bridge's leases, whatever the number of "
    "containers); when Incus is unreachable, the last known state (`live_data_available: false`)."))
def list_containers(status, q):
    rows, live = services().provisioning.list_containers(status=status, q=q)
    return success(_("%(count)d container(s)", count=len(rows)), containers=rows, count=len(rows),
                   live_data_available=live)


@route(bp, "GET", "/nat_rules", "Every NAT rule on the host", [],
       answer={"rules": {"type": "array", "items": RULE}, "count": {"type": "integer"}}, errors=(401,),
       description=(
    "From the database, the source of truth the kernel's rules follow; oldest first. Orphaned rules too "
    "(`orphaned: true`): within one NAT_SYNC_INTERVAL of a container vanishing outside this service (`incus "
    "delete`, or deleted and made again under its name) its rules leave the kernel and are kept here, their "
    "host ports still taken, until deleted (`DELETE /container/nat_rule/{rule_id}`)."))
def list_all_nat_rules():
    rules = services().provisioning.all_rules()
    return success(_("%(count)d NAT rule(s)", count=len(rules)), rules=rules, count=len(rules))


@route(bp, "GET", "/ports/free", "The next free block of host ports in PORT_POOL", [COUNT_PARAM],
       answer_schema={"type": "object", "required": ["start", "end"], "properties": {
           "start": {"type": "integer"}, "end": {"type": "integer"}}},
       errors=(400, 401, 409), description=(
    "The first `count` consecutive ports of PORT_POOL that are not reserved, not in a NAT rule (tcp or udp, "
    "ranges included) and not listened on by a host program (tcp or udp). Nothing is held: a create with "
    "`ssh_port=auto` or `ports` allocates again inside its own transaction. 409 when the pool has no such block."))
def free_ports(count):
    start, end = services().provisioning.free_ports(count)
    return jsonify({"start": start, "end": end})
