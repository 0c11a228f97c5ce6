"""A container's snapshots: list, take, restore, delete (``service.snapshots``). Declared once."""
from flask_babel import gettext as _

from ...parse import snapshots as parse
from ...schemas import Param, anchored, route
from ...schemas.params import NAME
from . import bp, services, success

SNAPSHOT = {"type": "object", "properties": {
    "name": {"type": "string"},
    "created_at": {"type": ["string", "null"]},
    "expires_at": {"type": ["string", "null"], "description": "null: kept until deleted"},
    "size": {"type": ["integer", "null"], "description": "bytes, where the storage pool tells it (null otherwise)"},
    "scheduled": {"type": "boolean", "description": "taken by the schedule (named auto0, auto1, ...)"},
}}
SNAPSHOT_PLAN = {"type": "object", "properties": {
    "snapshots": {"type": "integer", "description": "most snapshots kept by hand"},
    "snapshot_schedule": {"type": ["string", "null"]},
    "snapshot_keep": {"type": ["string", "null"]},
}}
SNAPSHOT_PATH = Param("snapshot", lambda value: _existing_name(value),
                      {"type": "string", "maxLength": parse.SNAPSHOT_NAME_MAX}, where="path", required=True,
                      description="The snapshot's name (a scheduled one's, `auto0`, too).")
NEW_SNAPSHOT = Param("snapshot", parse.snapshot_name,
                     {"type": "string", "pattern": "^(?![aA][uU][tT][oO])" + anchored(parse.SNAPSHOT_NAME)[1:]},
                     description="Optional name: 1-63 letters, digits, `.`, `_`, `-`, not starting with `auto` "
                                 "(default `snap-<UTC date>-<time>`).")


def _existing_name(value):
    """A snapshot's name in a path: a scheduled one's (``auto0``) too."""
    if not parse.SNAPSHOT_NAME.fullmatch(value):
        return parse.snapshot_name(value)  # the same message
    return value


@route(bp, "GET", "/container/<name>/snapshots", "A container's snapshots", [NAME],
       answer={"snapshots": {"type": "array", "items": SNAPSHOT}, "count": {"type": "integer"},
               "plan": SNAPSHOT_PLAN}, errors=(400, 401, 404, 503), description=(
           "Oldest first, those taken by hand and the scheduled ones (`scheduled`); `plan` holds the plan's "
           "`snapshots`, `snapshot_schedule` and `snapshot_keep`."))
def list_snapshots(name):
    snapshots, plan = services().snapshots.list(name)
    return success(_("%(count)d snapshot(s)", count=len(snapshots)), snapshots=snapshots, count=len(snapshots),
                   plan=plan)


@route(bp, "POST", "/container/<name>/snapshots", "Take a snapshot", [NAME, NEW_SNAPSHOT],
       answer={"snapshot": SNAPSHOT}, errors=(400, 401, 404, 409, 413, 500, 503, 504), description=(
           "A snapshot of the container's files (stateless), running or not. At most the plan's `snapshots` are kept "
           "by hand (409 past it: delete one, or raise `snapshots` with `/limits`); a name already used: 409. "
           "409 while the container is suspended."))
def create_snapshot(name, snapshot):
    taken = services().snapshots.create(name, snapshot)
    return success(_("Snapshot %(snapshot)s of container %(name)s taken", snapshot=taken["name"], name=name),
                   snapshot=taken)


@route(bp, "POST", "/container/<name>/snapshots/<snapshot>/restore", "Restore a snapshot's files",
       [NAME, SNAPSHOT_PATH], answer={"container_status": {"type": "string"}},
       errors=(400, 401, 404, 409, 413, 500, 503, 504), description=(
           "The container's files as they were in the snapshot; the plan stays as it is now (the limits, the pinned "
           "NIC and its filters, the profiles, the forwards, the traffic plan), whatever the snapshot was taken with. "
           "A running container is stopped, restored and started again. 409 while the container is suspended."))
def restore_snapshot(name, snapshot):
    status = services().snapshots.restore(name, snapshot)
    return success(_("Snapshot %(snapshot)s of container %(name)s restored", snapshot=snapshot, name=name),
                   container_status=status)


@route(bp, "DELETE", "/container/<name>/snapshots/<snapshot>", "Delete a snapshot", [NAME, SNAPSHOT_PATH],
       errors=(400, 401, 404, 409, 500, 503, 504), description="409 while the container is suspended.")
def delete_snapshot(name, snapshot):
    services().snapshots.delete(name, snapshot)
    return success(_("Snapshot %(snapshot)s of container %(name)s deleted", snapshot=snapshot, name=name))
