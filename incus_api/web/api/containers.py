"""The seed's container routes (create, actions, password, exec, info): each declared once
(parameters, answers, errors), then call the service and shape the JSON. Errors are raised, never
caught here."""
from flask import jsonify
from flask_babel import gettext as _

from ...exceptions import BadInput
from ...i18n import N_
from ...parse import choices, commands, credentials, names
from ...schemas import Param, route
from ...schemas.params import IMAGE, IMAGE_SCHEMA, NAME, NEW_NAME, PASSWORD_SCHEMA, RULE, SSH_KEY, optional_password
from ...schemas.plan import CREATE_PLAN_PARAMS, LIMITS_SCHEMA
from ...schemas.sale import ENDPOINT, PORT_BLOCK, PORTS_PARAM, SSH_PORT_PARAM
from ...schemas.traffic import SUMMARY, TRAFFIC_PARAMS, USAGE
from ...service.plans import Plan
from ...service.traffic import TrafficPlan
from . import bp, services, success


@route(bp, "POST", "/container/create", "Create and start a container: a sale in one call", [
    NEW_NAME, IMAGE,
    optional_password("Optional root password (one line), fed to chpasswd on its stdin."),
    SSH_KEY, SSH_PORT_PARAM, PORTS_PARAM, *CREATE_PLAN_PARAMS, *TRAFFIC_PARAMS,
], answer={
    "name": {"type": "string"}, "container_status": {"type": "string"}, "ip": {"type": ["string", "null"]},
    "password": {"type": "string", "description": (
        "Only when neither `password` nor `ssh_key` was given and the image has chpasswd: the generated "
        "root password, shown this once (never logged or stored).")},
    "ssh": {**ENDPOINT, "description": "Only with `ssh_port`: where the customer connects to SSH."},
    "ports": {"type": "object", "required": ["start", "end"], "description": "Only with `ports`: the host ports.",
              "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}}},
    "nat_rules": {"type": "array", "items": RULE},
    "limits": {**LIMITS_SCHEMA, "description": "The limits as applied (the plan's, or the profile's)."},
    "traffic": {**USAGE, "description": "The traffic plan and its first period."},
}, errors=(400, 401, 409, 413, 500, 503, 504), description=(
    "The container gets a free address of the bridge pinned, MAC/IPv4 filtering and port isolation "
    "from its first start. Without `password` and `ssh_key`, a random password is generated and answered. "
    "A plan (`cpu`, `memory`, `swap`, `disk`, `ingress`, `egress`, `processes`, `snapshots`, `snapshot_schedule`, "
    "`snapshot_keep`, `profile`, `storage_pool`) is "
    "applied in the create request itself; the traffic plan (`traffic_quota`, `traffic_reset_day`, "
    "`traffic_direction`, `traffic_action`) beside it, its traffic counted from the first packet. "
    "`ssh_port` and `ports` take host ports from PORT_POOL inside the "
    "transaction that writes their rules, so "
    "concurrent creates never share a port. All or nothing: when a step fails (the container, its "
    "credentials, the forwards, the traffic plan), every earlier step is undone and the error names the step "
    "(`step`: ports, create, forwards, traffic, credentials)."))
def create_container(name, image, password, ssh_key, ssh_port, ports, traffic_quota, traffic_reset_day,
                     traffic_direction, traffic_action, **plan_values):
    traffic = TrafficPlan(quota=traffic_quota, reset_day=traffic_reset_day, direction=traffic_direction,
                          action=traffic_action)
    sale = services().provisioning.create(name, image, password=password, ssh_key=ssh_key,
                                          ssh_port=ssh_port, ports=ports, plan=Plan.from_values(**plan_values),
                                          traffic_plan=traffic)
    info = sale.info
    # A generated password is in this answer only: never logged, stored or shown again.
    extra = {"password": sale.password} if sale.password is not None else {}
    if sale.ssh is not None:
        extra["ssh"] = sale.ssh
    if sale.ports is not None:
        extra["ports"] = sale.ports
    if sale.traffic is not None:
        extra["traffic"] = sale.traffic
    return success(
        _("Container %(name)s created and running", name=name),
        name=name, container_status=info["status"], ip=info["ip"], limits=info.get("limits"),
        nat_rules=sale.nat_rules, **extra,
    )


@route(bp, "POST", "/container/<name>/action", "Start, stop, restart, delete, suspend, unsuspend or reinstall a container", [
    NAME, Param("action", choices.action, {"type": "string", "enum": list(choices.ACTIONS)}, required=True),
    Param("image", names.image_ref, IMAGE_SCHEMA,
          description="`reinstall` only, and required there: local alias, fingerprint, or `remote:alias`."),
    optional_password("`reinstall` only: root's new password (one line), fed to chpasswd on its stdin."),
    Param("ssh_key", SSH_KEY.parse, SSH_KEY.schema, description="`reinstall` only: " + SSH_KEY.description),
], answer={
    "container_status": {"type": "string"}, "nat_rules_removed": {"type": "integer"},
    "suspended": {"type": "boolean"}, "name": {"type": "string"}, "ip": {"type": ["string", "null"]},
    "password": {"type": "string", "description": (
        "`reinstall` only, when neither `password` nor `ssh_key` was given and the image has chpasswd: the "
        "generated root password, shown this once (never logged or stored).")},
}, errors=(400, 401, 404, 409, 413, 429, 500, 503, 504), description=(
    "`delete` removes the container's NAT rules first (kernel and database); a suspended container can be "
    "deleted. `suspend` stops it (forced after the graceful timeout) and marks it suspended (kept across "
    "restarts of the service): `start`, `restart`, `reinstall`, exec and password changes answer 409 until "
    "`unsuspend`, which clears the mark and starts it. Its NAT rules stay and reach nothing while it is stopped. "
    "`reinstall` (409 while suspended) gives it a new root filesystem from `image` (Incus rebuild), keeping its "
    "name, limits, pinned address and NAT rules, starts it and sets root's credentials like create."))
def container_action(name, action, image, password, ssh_key):
    if action != "reinstall" and (image, password, ssh_key) != (None, None, None):
        raise BadInput(N_("The fields image, password and ssh_key go with action=reinstall only"))
    containers, lifecycle = services().containers, services().lifecycle
    if action == "delete":
        removed = containers.delete(name)
        return success(
            _("Container %(name)s deleted with %(count)d NAT rule(s)", name=name, count=removed),
            nat_rules_removed=removed,
        )
    if action == "reinstall":
        if image is None:
            raise BadInput(N_("The field '{field}' is required"), field="image")
        info, generated = lifecycle.reinstall(name, image, password=password, ssh_key=ssh_key)
        # A generated password is in this answer only: never logged, stored or shown again.
        extra = {"password": generated} if generated is not None else {}
        return success(
            _("Container %(name)s reinstalled from %(image)s and running", name=name, image=image),
            name=name, container_status=info["status"], ip=info["ip"], suspended=False, **extra,
        )
    if action in ("suspend", "unsuspend"):
        status, already = getattr(lifecycle, action)(name)
        suspended = action == "suspend"
        if already:
            message = (_("Container %(name)s was already suspended", name=name) if suspended
                       else _("Container %(name)s was not suspended and is %(status)s", name=name, status=status))
        elif suspended:
            message = _("Container %(name)s suspended, now %(status)s", name=name, status=status)
        else:
            message = _("Container %(name)s unsuspended, now %(status)s", name=name, status=status)
        return success(message, container_status=status, suspended=suspended)
    status, already = getattr(services().power, action)(name)
    if already:
        message = _("Container %(name)s was already %(status)s", name=name, status=status)
    else:
        message = _("Container %(name)s: %(action)s done, now %(status)s", name=name, action=action, status=status)
    return success(message, container_status=status, suspended=lifecycle.is_suspended(name))


@route(bp, "POST", "/container/<name>/password", "Set root's password in a running container", [
    NAME, Param("password", credentials.root_password, PASSWORD_SCHEMA, required=True),
], errors=(400, 401, 404, 409, 413, 429, 500, 503, 504),
    description="chpasswd reads `root:<password>` on its stdin: the password is on no command line. 409 while the container is suspended.")
def set_password(name, password):
    """Root's password, set with chpasswd in the running container; never logged or stored."""
    services().credentials.set_password(name, password)
    return success(_("The root password of %(name)s has been changed", name=name))


EXEC_ANSWER = {
    "output": {"type": "string"}, "stdout": {"type": "string"}, "stderr": {"type": "string"},
    "exit_code": {"type": "integer"},
    "truncated": {"type": "boolean", "description": (
        "stdout and stderr each keep their first EXEC_OUTPUT_LIMIT bytes (the rest is read and dropped): "
        "true when either was longer.")},
}


@route(bp, "POST", "/container/<name>/exec", "Run a command in a container", [
    NAME, Param("command", commands.command, {"type": "string", "maxLength": commands.MAX_COMMAND_BYTES}, required=True,
                description="Split like a shell (shlex) and run without one."),
], answer=EXEC_ANSWER, errors=(400, 401, 404, 409, 413, 429, 500, 503, 504), description=(
    "`status` is `error` when the exit code is not 0. Past EXEC_TIMEOUT every process the command started "
    "in the container is killed (504); at most EXEC_PER_CONTAINER commands run at once in one container (429); "
    "409 while the container is suspended."))
def exec_command(name, command):
    result = services().commands.exec(name, command)
    fields = {
        "output": result.stdout + result.stderr,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        "truncated": result.truncated,
    }
    if result.exit_code != 0:
        return jsonify({
            "status": "error",
            "message": _("The command exited with code %(code)d", code=result.exit_code),
            **fields,
        })
    return success(_("The command succeeded"), **fields)


@route(bp, "GET", "/container/<name>/info", "A container's details", [NAME], answer_schema={
    "type": "object", "required": ["name", "status", "live_data_available", "message"], "properties": {
        "name": {"type": "string"}, "status": {"type": "string"},
        "ip": {"type": ["string", "null"], "description": "The address Incus assigned (not what the container reports)"},
        "live_data_available": {"type": "boolean"}, "message": {"type": "string"},
        "ssh": {"oneOf": [ENDPOINT, {"type": "null"}],
                "description": "Where the NAT rule to the container's 22/tcp is reached, or null"},
        "port_block": {"oneOf": [PORT_BLOCK, {"type": "null"}], "description": (
            "The host ports sold with it (`ports` at create): its own whatever their rules are now, or null")},
        "traffic": SUMMARY}},
    errors=(400, 401, 404, 503),
    description="Live from Incus, or the last known data (`live_data_available: false`).")
def container_info(name):
    info = services().info.info(name)
    info["ssh"] = services().provisioning.ssh_of(name)
    info["port_block"] = services().provisioning.port_block_of(name, (info.get("config") or {}).get("volatile.uuid"))
    info["traffic"] = services().traffic.summary(name)
    if info["live_data_available"]:
        info["message"] = _("Live data from Incus")
    else:
        info["message"] = _("Incus is unreachable: last known data from the database")
    return jsonify(info)
