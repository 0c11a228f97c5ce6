"""The customer's forwards (issue 19): the rules of their port block and their SSH port, and
pointing a port of the block at a port of the container.

- ``GET /customer/forwards``: the rules, each with its public ``host:port``, and the block.
- ``POST /customer/forwards`` (``host_port``, ``container_port``, ``protocol``): a new rule.
- ``DELETE /customer/forwards/<rule_id>``: a rule of the block.

Every change needs the CSRF token (Flask-WTF, before anything here) and is in the audit log as
``customer:<container>``. The container is the session's (``g.customer``): no route takes a name,
and a ``name`` field sent along is never read. The scope (the block, the SSH rule, 404 for any
other rule) is ``service.customer_forwards``; the rules are written by the admin's NAT service.
"""
from flask import current_app, g, jsonify
from flask_babel import gettext as _

from ...parse import ports
from ...schemas import Param, parse_params
from . import bp

HOST_PORT = Param("host_port", lambda value: ports.port(value, "host_port"),
                  {"type": "integer", "minimum": ports.PORT_MIN, "maximum": ports.PORT_MAX}, required=True)
CONTAINER_PORT = Param("container_port", lambda value: ports.port(value, "container_port"),
                       {"type": "integer", "minimum": ports.PORT_MIN, "maximum": ports.PORT_MAX}, required=True)
PROTOCOL = Param("protocol", ports.protocol, {"type": "string", "enum": list(ports.PROTOCOLS)}, required=True)


def forwards_service():
    return current_app.extensions["incus_api"].services.customer_forwards


def shown(rule):
    return rule["public"] or str(rule["host_port"])


@bp.get("/forwards")
def list_forwards():
    listed = forwards_service().forwards(g.customer)
    return jsonify({"status": "success", "message": _("%(count)d NAT rule(s)", count=len(listed["forwards"])),
                    **listed})


@bp.post("/forwards")
def add_forward():
    values = parse_params((HOST_PORT, CONTAINER_PORT, PROTOCOL), {})
    rule = forwards_service().add(g.customer, values["host_port"], values["container_port"], values["protocol"])
    return jsonify({"status": "success", "rule": rule, "message": _(
        "%(public)s/%(protocol)s now forwards to port %(container_port)d of your container",
        public=shown(rule), protocol=rule["protocol"], container_port=rule["container_port"])})


@bp.delete("/forwards/<int:rule_id>")
def delete_forward(rule_id):
    rule = forwards_service().delete(g.customer, rule_id)
    return jsonify({"status": "success", "rule": rule, "message": _(
        "%(public)s/%(protocol)s no longer forwards to your container", public=shown(rule), protocol=rule["protocol"])})
