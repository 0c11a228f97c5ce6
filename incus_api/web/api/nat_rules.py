"""The seed's NAT routes: add a forward, list a container's, delete one. Declared once, then the
service; errors are raised, never caught here."""
from flask import jsonify
from flask_babel import gettext as _

from ...parse import ports
from ...parse.numbers import ROUTE_ID_DIGITS, ROUTE_ID_MAX
from ...schemas import Param, route
from ...schemas.params import NAME, PORTS_SCHEMA, RULE
from . import bp, services, success


@route(bp, "POST", "/container/<name>/add_nat_rule", "Forward a host port (or range) to the container", [
    NAME,
    Param("host_port", lambda value: ports.port_range(value, "host_port"), PORTS_SCHEMA, required=True,
          description=f"A port {ports.PORT_MIN}-{ports.PORT_MAX}, or a range `start-end` "
                      f"(at most {ports.MAX_RANGE_SIZE} ports)."),
    Param("container_port", lambda value: ports.port_range(value, "container_port"), PORTS_SCHEMA,
          required=True, description="The container's port, or the start (or whole) of a same-size range."),
    Param("protocol", ports.protocol, {"type": "string", "enum": list(ports.PROTOCOLS)}, required=True),
], answer={"rule_id": {"type": "integer"}, "rule": RULE}, errors=(400, 401, 404, 409, 413, 500, 503), description=(
    "`status` is `warning` when exactly this rule existed. 409 for a port that is reserved (22, 53, 67, "
    "RESERVED_PORTS, the service's own), already forwarded, held by an orphaned rule, or listened on by a host "
    "program."))
def add_nat_rule(name, host_port, container_port, protocol):
    host_start, host_end, container_start = ports.forward_ports(host_port, container_port)
    rule, created = services().nat_rules.add(name, host_start, container_start, protocol, host_port_end=host_end)
    if not created:
        return jsonify({
            "status": "warning",
            "message": _("This NAT rule already exists (rule %(id)d)", id=rule["id"]),
            "rule_id": rule["id"],
            "rule": rule,
        })
    return success(
        _("Host port %(host_port)s/%(protocol)s now forwards to %(name)s (%(ip)s) port %(container_port)s",
          host_port=port_text(rule["host_port"], rule["host_port_end"]), protocol=protocol, name=name,
          ip=rule["container_ip"], container_port=port_text(rule["container_port"], rule["container_port_end"])),
        rule_id=rule["id"], rule=rule,
    )


def port_text(start, end):
    return str(start) if start == end else f"{start}-{end}"


@route(bp, "GET", "/container/<name>/nat_rules", "The container's NAT rules", [NAME],
       answer={"rules": {"type": "array", "items": RULE}}, errors=(400, 401), description=(
    "Not the orphaned rules of an earlier container of that name (`GET /nat_rules` lists those)."))
def list_nat_rules(name):
    rules = services().nat_rules.list_for(name)
    return success(_("%(count)d NAT rule(s)", count=len(rules)), rules=rules)


@route(bp, "DELETE", "/container/nat_rule/<int:rule_id>", "Delete a NAT rule", [
    Param("rule_id", int, {"type": "integer", "minimum": 1, "maximum": ROUTE_ID_MAX}, where="path",
          required=True, description=f"ASCII digits, at most {ROUTE_ID_DIGITS}; anything else matches no route (404)"),
], answer={"rule": RULE}, errors=(401, 404, 500),
    description="Orphaned rules too (their host ports are free again). `status` is `warning` when the kernel had "
                "already lost a rule that was not orphaned.")
def delete_nat_rule(rule_id):
    rule, kernel_had_it = services().nat_rules.delete(rule_id)
    if not kernel_had_it and not rule["orphaned"]:  # an orphaned rule is in no kernel
        return jsonify({
            "status": "warning",
            "message": _("NAT rule %(id)d deleted; it was already missing from iptables", id=rule_id),
            "rule": rule,
        })
    return success(_("NAT rule %(id)d deleted", id=rule_id), rule=rule)
