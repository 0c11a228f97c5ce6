"""The customer's actions on their container: start, stop, restart, root's password, root's SSH
keys, reinstall. Each is a POST with the CSRF token (Flask-WTF checks it before anything here),
answered in the API's JSON shape (``{"status", "message", ...}``; domain errors are the usual
4xx/5xx through ``errors.py``), and written to the audit log as ``customer:<container>``. Each is
declared once through ``schemas.route`` (its fields, answer and errors: ``/openapi.json``).

The container is the session's (``g.customer``): no route here takes a name, and a ``name`` field
sent along is never read. What a customer may do beyond the admin's rules (a suspended container
is never changed, only the images the seller allows) is ``service.customer_panel``.
"""
from flask import g, jsonify
from flask_babel import gettext as _

from ...parse import credentials, names
from ...parse.choices import one_of
from ...schemas import Param, route
from ...schemas.params import IMAGE_SCHEMA, PASSWORD_SCHEMA, SSH_KEY
from ...service.customer_panel import POWER_ACTIONS
from ..dashboard.filters import status_label
from . import bp
from .views import CHANGE, customer_panel

ACTION = Param("action", lambda value: one_of(value.strip().lower(), "action", POWER_ACTIONS),
               {"type": "string", "enum": list(POWER_ACTIONS)}, required=True)
PASSWORD = Param("password", credentials.root_password, PASSWORD_SCHEMA, description=(
    "Root's new password (one line); empty: a random one, answered in `password` this once."))
REQUIRED_SSH_KEY = Param("ssh_key", SSH_KEY.parse, SSH_KEY.schema, required=True, description=(
    "OpenSSH public keys, one a line (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-*): they replace "
    "root's /root/.ssh/authorized_keys."))
IMAGE = Param("image", names.image_ref, IMAGE_SCHEMA, required=True, description=(
    "One of the images this container may be reinstalled from (`CUSTOMER_IMAGES`; empty: the one it was sold with)."))
STATUS = {"container_status": {"type": "string", "description": "The container's status after it (e.g. Running)"}}
GENERATED = {"password": {"type": "string", "description": "Only when none was given: the random one, this once"}}
SUSPENDED = "A suspended container is never changed: 409. "


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


POWER_DONE = {
    "start": lambda: _("Your container has started"),
    "stop": lambda: _("Your container has stopped"),
    "restart": lambda: _("Your container has restarted"),
}


@route(bp, "POST", "/power", "Start, stop or restart the customer's container", [ACTION], answer=STATUS,
       errors=(400, 401, 404, 409, 410, 413, 500, 503, 504), security=CHANGE, description=(
           "A suspended container is never changed: 409, stop included. Already in the state asked for: 200, the "
           "message says so."))
def power(action):
    """``action``: start, stop or restart (lowercased by its parser)."""
    status, already = customer_panel().power(g.customer, action)
    message = _("Your container was already %(status)s", status=str(status_label(status))) if already else POWER_DONE[action]()
    return success(message, container_status=status)


@route(bp, "POST", "/password", "Reset root's password in the customer's container", [PASSWORD], answer=GENERATED,
       errors=(400, 401, 404, 409, 410, 413, 429, 500, 503, 504), security=CHANGE, description=(
           SUSPENDED + "The container must be running (400 otherwise); the password is fed to chpasswd on its stdin "
           "and never logged or stored."))
def password(password):
    """Root's new password: the one typed, or (none typed) a random one, answered this once."""
    generated = customer_panel().reset_password(g.customer, password)
    # A generated password is in this answer only: never logged, stored or shown again.
    extra = {"password": generated} if generated is not None else {}
    return success(_("Root's password has been changed"), **extra)


@route(bp, "POST", "/ssh-key", "Set root's SSH keys in the customer's container", [REQUIRED_SSH_KEY],
       answer={"keys": {"type": "integer", "description": "How many keys were written"}},
       errors=(400, 401, 404, 409, 410, 413, 429, 500, 503, 504), security=CHANGE, description=SUSPENDED.strip())
def ssh_key(ssh_key):
    """Root's authorized_keys, replaced by the keys given."""
    customer_panel().set_ssh_keys(g.customer, ssh_key)
    count = len(ssh_key.splitlines())
    return success(_("Root's SSH keys have been set (%(count)d key(s)): log in with the matching private key",
                     count=count), keys=count)


@route(bp, "POST", "/reinstall", "Reinstall the customer's container", [IMAGE, PASSWORD, SSH_KEY],
       answer={**STATUS, "ip": {"type": ["string", "null"]}, **GENERATED},
       errors=(400, 401, 404, 409, 410, 413, 429, 500, 503, 504), security=CHANGE, description=(
           SUSPENDED + "A fresh disk from the image (an image not offered: 400); root's credentials as a sale sets "
           "them: `password`, `ssh_key`, or neither (a random password, answered once). The address, the port block "
           "and the forwards stay."))
def reinstall(image, password, ssh_key):
    """A fresh disk from an allowed image, then root's credentials as a sale sets them."""
    info, generated = customer_panel().reinstall(g.customer, image, password=password, ssh_key=ssh_key)
    extra = {"password": generated} if generated is not None else {}
    return success(_("Your container has been reinstalled from %(image)s and is %(status)s", image=image,
                     status=str(status_label(info["status"]))), container_status=info["status"], ip=info["ip"], **extra)
