"""The customer's snapshots (issue 21): listed, taken within the plan's ``snapshots``, restored
(the files, never the plan) and deleted.

- ``GET /customer/snapshots``: the snapshots and the plan (as ``GET /container/<name>/snapshots``);
- ``POST /customer/snapshots`` (optional ``snapshot``: its name): a new one;
- ``POST /customer/snapshots/<snapshot>/restore``, ``DELETE /customer/snapshots/<snapshot>``.

Every change needs the CSRF token (Flask-WTF, before anything here) and is in the audit log as
``customer:<container>``; the container is the session's (``g.customer``), never a name sent along.
What the customer may do is ``service.customer_panel``; the snapshots are ``service.snapshots``.
"""
from flask import g, jsonify
from flask_babel import gettext as _

from ...schemas import parse_params
from ..api.snapshots import NEW_SNAPSHOT, SNAPSHOT_PATH
from ..dashboard.filters import status_label
from . import bp
from .views import customer_panel


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


@bp.get("/snapshots")
def list_snapshots():
    snapshots, plan = customer_panel().snapshots(g.customer)
    return success(_("%(count)d snapshot(s)", count=len(snapshots)), snapshots=snapshots, count=len(snapshots), plan=plan)


@bp.post("/snapshots")
def take_snapshot():
    snapshot = parse_params((NEW_SNAPSHOT,), {})["snapshot"]
    taken = customer_panel().take_snapshot(g.customer, snapshot)
    return success(_("Snapshot %(snapshot)s taken", snapshot=taken["name"]), snapshot=taken)


@bp.post("/snapshots/<snapshot>/restore")
def restore_snapshot(snapshot):
    snapshot = parse_params((SNAPSHOT_PATH,), {"snapshot": snapshot})["snapshot"]
    status = customer_panel().restore_snapshot(g.customer, snapshot)
    return success(_("Your container's files are back as they were in snapshot %(snapshot)s; it is %(status)s",
                     snapshot=snapshot, status=str(status_label(status))), container_status=status)


@bp.delete("/snapshots/<snapshot>")
def delete_snapshot(snapshot):
    snapshot = parse_params((SNAPSHOT_PATH,), {"snapshot": snapshot})["snapshot"]
    customer_panel().delete_snapshot(g.customer, snapshot)
    return success(_("Snapshot %(snapshot)s deleted", snapshot=snapshot))
