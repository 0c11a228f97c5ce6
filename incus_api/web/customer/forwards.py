"""The customer's forwards (issue 19): the rules of their port block and their SSH port, and
pointing a port of the block at a port of the container.

- ``GET /customer/forwards``: the rules, each with its public ``host:port``, and the block.
- ``POST /customer/forwards`` (``host_port``, ``container_port``, ``protocol``): a new rule.
- ``DELETE /customer/forwards/<rule_id>``: a rule of the block.

Every change needs the CSRF token (Flask-WTF, before anything here) and is in the audit log as
``customer:<container>``. The container is the session's (``g.customer``): no route takes a name,
and a ``name`` field sent along is never read. The scope (the block, the SSH rule, 404 for any
other rule) is ``service.customer_forwards``; the rules are written by the admin's NAT service.
Each route is declared once through ``schemas.route`` (``/openapi.json``).
"""
from flask import current_app, g, jsonify
from flask_babel import gettext as _

from ...parse import ports
from ...parse.numbers import ROUTE_ID_MAX
from ...schemas import Param, route
from . import bp
from .views import CHANGE, READ

HOST_PORT = Param("host_port", lambda value: ports.port(value, "host_port"),
                  {"type": "integer", "minimum": ports.PORT_MIN, "maximum": ports.PORT_MAX}, required=True,
                  description="A host port of the customer's port block (not the SSH port).")
CONTAINER_PORT = Param("container_port", lambda value: ports.port(value, "container_port"),
                       {"type": "integer", "minimum": ports.PORT_MIN, "maximum": ports.PORT_MAX}, required=True,
                       description="The port inside the container it forwards to.")
PROTOCOL = Param("protocol", ports.protocol, {"type": "string", "enum": list(ports.PROTOCOLS)}, required=True)
RULE_ID = Param("rule_id", int, {"type": "integer", "minimum": 1, "maximum": ROUTE_ID_MAX}, where="path",
                required=True, description="A rule of the customer's port block (`id` in the listing).")

FORWARD = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "kind": {"type": "string", "enum": ["block", "ssh", "provider"], "description": (
        "block: a rule of the port block (the customer's to change); ssh: the SSH port's; provider: the seller's")},
    "editable": {"type": "boolean"}, "protocol": {"type": "string", "enum": list(ports.PROTOCOLS)},
    "host_port": {"type": "integer"}, "host_port_end": {"type": "integer"},
    "container_port": {"type": "integer"}, "container_port_end": {"type": "integer"},
    "public": {"type": ["string", "null"], "description": "`host:port` (PUBLIC_HOST); null when it is unknown"},
    "created_at": {"type": "string"},
}}
BLOCK = {"type": ["object", "null"], "description": "The port block, or null (its forwards are the seller's)",
         "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}, "count": {"type": "integer"},
                        "free": {"type": "object", "description": "Per protocol, the block's ports no rule forwards",
                                 "additionalProperties": {"type": "array", "items": {"type": "integer"}}}}}


def forwards_service():
    return current_app.extensions["incus_api"].services.customer_forwards


def shown(rule):
    return rule["public"] or str(rule["host_port"])


@route(bp, "GET", "/forwards", "The customer's forwards", answer={
    "public_host": {"type": ["string", "null"]}, "port_block": BLOCK, "forwards": {"type": "array", "items": FORWARD},
}, errors=(401,), security=READ, description=(
    "The rules of the container's port block and of its SSH port, and the seller's other rules of it, each with its "
    "public `host:port`."))
def list_forwards():
    listed = forwards_service().forwards(g.customer)
    return jsonify({"status": "success", "message": _("%(count)d NAT rule(s)", count=len(listed["forwards"])),
                    **listed})


@route(bp, "POST", "/forwards", "Point a port of the customer's block at a port of the container",
       [HOST_PORT, CONTAINER_PORT, PROTOCOL], answer={"rule": FORWARD},
       errors=(400, 401, 403, 404, 409, 413, 500, 503), security=CHANGE, description=(
           "A host port outside the block, the SSH port, or no block: 403. That port and protocol already forwarded, "
           "every port of the block already forwarding that protocol, or the container suspended: 409. Nothing "
           "changes when it is refused."))
def add_forward(host_port, container_port, protocol):
    rule = forwards_service().add(g.customer, host_port, container_port, protocol)
    return jsonify({"status": "success", "rule": rule, "message": _(
        "%(public)s/%(protocol)s now forwards to port %(container_port)d of your container",
        public=shown(rule), protocol=rule["protocol"], container_port=rule["container_port"])})


@route(bp, "DELETE", "/forwards/<int:rule_id>", "Delete a forward of the customer's block", [RULE_ID],
       answer={"rule": FORWARD}, errors=(400, 401, 403, 404, 409, 500), security=CHANGE, description=(
           "The SSH port's rule or the seller's: 403; another container's rule and an unknown id: the same 404; the "
           "container suspended: 409."))
def delete_forward(rule_id):
    rule = forwards_service().delete(g.customer, rule_id)
    return jsonify({"status": "success", "rule": rule, "message": _(
        "%(public)s/%(protocol)s no longer forwards to your container", public=shown(rule), protocol=rule["protocol"])})
