"""The customer's snapshots (issue 21): listed, taken within the plan's ``snapshots``, restored
(the files, never the plan) and deleted.

- ``GET /customer/snapshots``: the snapshots and the plan (as ``GET /container/<name>/snapshots``);
- ``POST /customer/snapshots`` (optional ``snapshot``: its name): a new one;
- ``POST /customer/snapshots/<snapshot>/restore``, ``DELETE /customer/snapshots/<snapshot>``.

Every change needs the CSRF token (Flask-WTF, before anything here) and is in the audit log as
``customer:<container>``; the container is the session's (``g.customer``), never a name sent along.
What the customer may do is ``service.customer_panel``; the snapshots are ``service.snapshots``.
Each route is declared once through ``schemas.route`` (``/openapi.json``), with the API's parameters.
"""
from flask import g, jsonify
from flask_babel import gettext as _

from ...schemas import route
from ..api.snapshots import NEW_SNAPSHOT, SNAPSHOT, SNAPSHOT_PATH, SNAPSHOT_PLAN
from ..dashboard.filters import status_label
from . import bp
from .views import CHANGE, READ, customer_panel

SUSPENDED = "409 while the container is suspended."


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


@route(bp, "GET", "/snapshots", "The customer's snapshots", answer={
    "snapshots": {"type": "array", "items": SNAPSHOT}, "count": {"type": "integer"}, "plan": SNAPSHOT_PLAN,
}, errors=(401, 404, 410, 503), security=READ, description=(
    "As `GET /container/{name}/snapshots`: oldest first, by hand and scheduled (`scheduled`), and the plan's "
    "`snapshots`, `snapshot_schedule`, `snapshot_keep`."))
def list_snapshots():
    snapshots, plan = customer_panel().snapshots(g.customer)
    return success(_("%(count)d snapshot(s)", count=len(snapshots)), snapshots=snapshots, count=len(snapshots), plan=plan)


@route(bp, "POST", "/snapshots", "Take a snapshot of the customer's container", [NEW_SNAPSHOT],
       answer={"snapshot": SNAPSHOT}, errors=(400, 401, 404, 409, 410, 413, 500, 503, 504), security=CHANGE,
       description=("At most the plan's `snapshots` taken by hand (409 past it, or when the plan has none); a name "
                    "already used: 409. " + SUSPENDED))
def take_snapshot(snapshot):
    taken = customer_panel().take_snapshot(g.customer, snapshot)
    return success(_("Snapshot %(snapshot)s taken", snapshot=taken["name"]), snapshot=taken)


@route(bp, "POST", "/snapshots/<snapshot>/restore", "Restore a snapshot's files in the customer's container",
       [SNAPSHOT_PATH], answer={"container_status": {"type": "string"}},
       errors=(400, 401, 404, 409, 410, 413, 500, 503, 504), security=CHANGE, description=(
           "The files as they were in the snapshot; the plan stays as it is now. A running container is stopped, "
           "restored and started again. " + SUSPENDED))
def restore_snapshot(snapshot):
    status = customer_panel().restore_snapshot(g.customer, snapshot)
    return success(_("Your container's files are back as they were in snapshot %(snapshot)s; it is %(status)s",
                     snapshot=snapshot, status=str(status_label(status))), container_status=status)


@route(bp, "DELETE", "/snapshots/<snapshot>", "Delete a snapshot of the customer's container", [SNAPSHOT_PATH],
       errors=(400, 401, 404, 409, 410, 500, 503, 504), security=CHANGE, description=SUSPENDED)
def delete_snapshot(snapshot):
    customer_panel().delete_snapshot(g.customer, snapshot)
    return success(_("Snapshot %(snapshot)s deleted", snapshot=snapshot))
