"""The customer's actions on their container: start, stop, restart, root's password, root's SSH
keys, reinstall. Each is a POST with the CSRF token (Flask-WTF checks it before anything here),
answered in the API's JSON shape (``{"status", "message", ...}``; domain errors are the usual
4xx/5xx through ``errors.py``), and written to the audit log as ``customer:<container>``.

The container is the session's (``g.customer``): no route here takes a name, and a ``name`` field
sent along is never read. What a customer may do beyond the admin's rules (a suspended container
is never changed, only the images the seller allows) is ``service.customer_panel``.
"""
from flask import g, jsonify
from flask_babel import gettext as _

from ...parse import credentials, names
from ...schemas import Param, parse_params
from ...schemas.params import IMAGE_SCHEMA, PASSWORD_SCHEMA, SSH_KEY
from ...service.customer_panel import POWER_ACTIONS
from ..dashboard.filters import status_label
from . import bp
from .views import customer_panel

ACTION = Param("action", str.strip, {"type": "string", "enum": list(POWER_ACTIONS)}, required=True)
PASSWORD = Param("password", credentials.root_password, PASSWORD_SCHEMA)
REQUIRED_SSH_KEY = Param("ssh_key", SSH_KEY.parse, SSH_KEY.schema, required=True)
IMAGE = Param("image", names.image_ref, IMAGE_SCHEMA, required=True)


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


POWER_DONE = {
    "start": lambda: _("Your container has started"),
    "stop": lambda: _("Your container has stopped"),
    "restart": lambda: _("Your container has restarted"),
}


@bp.post("/power")
def power():
    """``action``: start, stop or restart."""
    action = parse_params((ACTION,), {})["action"].lower()
    status, already = customer_panel().power(g.customer, action)
    message = _("Your container was already %(status)s", status=str(status_label(status))) if already else POWER_DONE[action]()
    return success(message, container_status=status)


@bp.post("/password")
def password():
    """Root's new password: the one typed, or (none typed) a random one, answered this once."""
    typed = parse_params((PASSWORD,), {})["password"]
    generated = customer_panel().reset_password(g.customer, typed)
    # A generated password is in this answer only: never logged, stored or shown again.
    extra = {"password": generated} if generated is not None else {}
    return success(_("Root's password has been changed"), **extra)


@bp.post("/ssh-key")
def ssh_key():
    """Root's authorized_keys, replaced by the keys given."""
    keys = parse_params((REQUIRED_SSH_KEY,), {})["ssh_key"]
    customer_panel().set_ssh_keys(g.customer, keys)
    count = len(keys.splitlines())
    return success(_("Root's SSH keys have been set (%(count)d key(s)): log in with the matching private key",
                     count=count), keys=count)


@bp.post("/reinstall")
def reinstall():
    """A fresh disk from an allowed image, then root's credentials as a sale sets them."""
    values = parse_params((IMAGE, PASSWORD, SSH_KEY), {})
    info, generated = customer_panel().reinstall(g.customer, values["image"], password=values["password"],
                                                 ssh_key=values["ssh_key"])
    extra = {"password": generated} if generated is not None else {}
    return success(_("Your container has been reinstalled from %(image)s and is %(status)s", image=values["image"],
                     status=str(status_label(info["status"]))), container_status=info["status"], ip=info["ip"], **extra)
