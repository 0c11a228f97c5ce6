"""Backups: taken (in the background), listed, deleted, restored (``service.backups``). Declared once."""
from flask import g
from flask_babel import gettext as _

from ...parse import names
from ...parse.choices import one_of
from ...parse.numbers import ROUTE_ID_DIGITS, ROUTE_ID_MAX
from ...schemas import Param, route
from ...schemas.params import NAME, NAME_SCHEMA
from . import bp, services, success

BACKUP = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "container": {"type": "string"},
    "file": {"type": "string", "description": "its name in BACKUP_DIR (and its S3 key under S3_PREFIX)"},
    "trigger": {"type": "string", "enum": ["api", "dashboard", "schedule", "import"]},
    "state": {"type": "string", "enum": ["running", "ok", "failed"]},
    "created_at": {"type": "string"},
    "finished_at": {"type": ["string", "null"]},
    "size": {"type": ["integer", "null"], "description": "bytes"},
    "sha256": {"type": ["string", "null"], "description": "SHA-256 of the whole file"},
    "error": {"type": ["string", "null"], "description": "why it failed"},
    "stored": {"type": "array", "items": {"type": "string", "enum": ["local", "s3"]}},
    "s3_key": {"type": ["string", "null"]},
    "s3_state": {"type": ["string", "null"], "enum": ["uploading", "ok", "failed", None]},
    "s3_error": {"type": ["string", "null"]},
}}
BACKUP_ID = Param("backup_id", int, {"type": "integer", "minimum": 1, "maximum": ROUTE_ID_MAX}, where="path",
                  required=True, description=f"ASCII digits, at most {ROUTE_ID_DIGITS}; anything else matches no "
                                             "route (404)")
CONTAINER_FILTER = Param("name", names.container_name, NAME_SCHEMA, where="query",
                         description="Only this container's backups.")
RESTORE_NAME = Param("name", lambda value: names.container_name(value.strip()), NAME_SCHEMA, description=(
    "Optional: restore under this name, as a copy (new address; no forwards unless `ports=auto`). Default: the "
    "backed-up container's own name, which must not exist."))
PORTS = Param("ports", lambda value: one_of(value.strip(), "ports", ("auto",)), {"type": "string", "enum": ["auto"]},
              description="`auto`: the forwards take free pool ports (each block and range of its size) instead of "
                          "the recorded host ports; the answer lists the new ones.")
RESTORED = {"type": "object", "properties": {
    "name": {"type": "string"}, "status": {"type": "string"}, "ip": {"type": ["string", "null"]},
    "copy": {"type": "boolean"}, "suspended": {"type": "boolean"}, "from": {"type": "string"},
    "backup_created_at": {"type": ["string", "null"]},
    "nat_rules": {"type": "array", "items": {"type": "object"}},
}}


@route(bp, "POST", "/container/<name>/backup", "Start a backup", [NAME],
       answer={"backup_id": {"type": "integer", "description": "poll GET /backups/{backup_id}"}, "backup": BACKUP},
       errors=(400, 401, 404, 409, 503), accepted=True, description=(
           "Queues a backup of the container (running or not) and answers its id at once (202). The backup thread "
           "writes one file into BACKUP_DIR: Incus's export of the instance and the service's record of it (plan, "
           "forwards, port block, traffic plan and this period's use, suspension); then its SHA-256, the S3 copy "
           "when S3 is set, and the oldest beyond BACKUP_KEEP pruned. 409 while another backup of it is written."))
def create_backup(name):
    backup = services().backups.create(name, trigger="api" if g.get("auth_via") == "api" else "dashboard")
    return success(_("Backup %(backup_id)d of container %(name)s started", backup_id=backup["id"], name=name),
                   backup_id=backup["id"], backup=backup), 202


@route(bp, "GET", "/backups", "Backups", [CONTAINER_FILTER],
       answer={"backups": {"type": "array", "items": BACKUP}, "count": {"type": "integer"}},
       errors=(400, 401), description="Newest first; a failed one carries `error`.")
def list_backups(name):
    backups = services().backups.list(name)
    return success(_("%(count)d backup(s)", count=len(backups)), backups=backups, count=len(backups))


@route(bp, "GET", "/backups/<int:backup_id>", "One backup", [BACKUP_ID], answer={"backup": BACKUP},
       errors=(401, 404))
def get_backup(backup_id):
    return success(_("Backup %(backup_id)d", backup_id=backup_id), backup=services().backups.get(backup_id))


@route(bp, "DELETE", "/backups/<int:backup_id>", "Delete a backup", [BACKUP_ID], errors=(401, 404, 409, 502),
       description="Its file and its S3 copy. 409 while it is being written or restored.")
def delete_backup(backup_id):
    services().backups.delete(backup_id)
    return success(_("Backup %(backup_id)d deleted", backup_id=backup_id))


@route(bp, "POST", "/backups/<int:backup_id>/restore", "Restore a backup", [BACKUP_ID, RESTORE_NAME, PORTS],
       answer={"container": RESTORED}, errors=(400, 401, 404, 409, 500, 502, 503, 504), description=(
           "Under the container's own name (it must not exist: 409): the files, the plan and limits, its address when "
           "still free, the forwards on the same host ports (409 listing those taken here in `ports`, unless "
           "`ports=auto`), the port block, the traffic plan and this period's use, a suspension; started when it "
           "was running and is not suspended. Under a new `name`: a copy. From the S3 copy when the file is gone. "
           "A damaged file: 400, nothing changed."))
def restore_backup(backup_id, name, ports):
    restored = services().backups.restore(backup_id, name=name, ports=ports)
    return success(_("Backup %(backup_id)d restored as container %(name)s", backup_id=backup_id,
                     name=restored["name"]), container=restored)
