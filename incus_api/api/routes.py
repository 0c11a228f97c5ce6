"""Parse the form, call the service, shape the JSON. Errors are raised, never caught here."""
from flask import current_app, jsonify, request
from flask_babel import gettext as _

from .. import validation
from ..exceptions import BadInput
from ..i18n import N_
from . import bp


def services():
    return current_app.extensions["incus_api"].services


def form():
    """Form fields (the seed's contract); a JSON object body is accepted too, its values as text."""
    if request.form:
        return request.form
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}
    fields = {}
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadInput(N_("The field '{field}' must be a string or a number"), field=str(key)[:40])
        fields[key] = str(value)
    return fields


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


@bp.post("/container/create")
def create_container():
    data = form()
    name = validation.container_name(validation.required(data, "name").strip())
    image = validation.image_ref(validation.required(data, "image"))
    password = data.get("password")
    password = validation.root_password(password) if password else None
    ssh_key = data.get("ssh_key")
    ssh_key = validation.ssh_keys(ssh_key) if ssh_key and ssh_key.strip() else None
    info, generated = services().containers.create(name, image, password=password, ssh_key=ssh_key)
    # A generated password is in this answer only: never logged, stored or shown again.
    extra = {"password": generated} if generated is not None else {}
    return success(
        _("Container %(name)s created and running", name=name),
        name=name, container_status=info["status"], ip=info["ip"], **extra,
    )


@bp.post("/container/<name>/action")
def container_action(name):
    name = validation.container_name(name)
    action = validation.action(validation.required(form(), "action"))
    containers = services().containers
    if action == "delete":
        removed = containers.delete(name)
        return success(
            _("Container %(name)s deleted with %(count)d NAT rule(s)", name=name, count=removed),
            nat_rules_removed=removed,
        )
    status, already = getattr(containers, action)(name)
    if already:
        message = _("Container %(name)s was already %(status)s", name=name, status=status)
    else:
        message = _("Container %(name)s: %(action)s done, now %(status)s", name=name, action=action, status=status)
    return success(message, container_status=status)


@bp.post("/container/<name>/password")
def set_password(name):
    """Root's password, set with chpasswd in the running container; never logged or stored."""
    name = validation.container_name(name)
    password = validation.root_password(form().get("password"))
    services().containers.set_password(name, password)
    return success(_("The root password of %(name)s has been changed", name=name))


@bp.post("/container/<name>/exec")
def exec_command(name):
    name = validation.container_name(name)
    argv = validation.command(validation.required(form(), "command"))
    result = services().containers.exec(name, argv)
    fields = {
        "output": result.stdout + result.stderr,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        # stdout and stderr each keep their first EXEC_OUTPUT_LIMIT bytes: true when either was cut
        "truncated": result.truncated,
    }
    if result.exit_code != 0:
        return jsonify({
            "status": "error",
            "message": _("The command exited with code %(code)d", code=result.exit_code),
            **fields,
        })
    return success(_("The command succeeded"), **fields)


@bp.get("/container/<name>/info")
def container_info(name):
    name = validation.container_name(name)
    info = services().containers.info(name)
    if info["live_data_available"]:
        info["message"] = _("Live data from Incus")
    else:
        info["message"] = _("Incus is unreachable: last known data from the database")
    return jsonify(info)


@bp.post("/container/<name>/add_nat_rule")
def add_nat_rule(name):
    """``host_port`` may be a range (``10000-10019``), forwarded to the same-size container range."""
    name = validation.container_name(name)
    data = form()
    host_port, host_port_end, container_port = validation.forward_ports(
        validation.required(data, "host_port"), validation.required(data, "container_port")
    )
    protocol = validation.protocol(validation.required(data, "protocol"))
    rule, created = services().nat_rules.add(name, host_port, container_port, protocol, host_port_end=host_port_end)
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


@bp.get("/container/<name>/nat_rules")
def list_nat_rules(name):
    name = validation.container_name(name)
    return jsonify({"status": "success", "rules": services().nat_rules.list_for(name)})


@bp.delete("/container/nat_rule/<int:rule_id>")
def delete_nat_rule(rule_id):
    rule, kernel_had_it = services().nat_rules.delete(rule_id)
    if not kernel_had_it:
        return jsonify({
            "status": "warning",
            "message": _("NAT rule %(id)d deleted; it was already missing from iptables", id=rule_id),
            "rule": rule,
        })
    return success(_("NAT rule %(id)d deleted", id=rule_id), rule=rule)
