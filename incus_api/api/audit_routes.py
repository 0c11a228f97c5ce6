"""``GET /audit_log``: the audit log for scripts (newest first)."""
from flask import current_app, jsonify, request

from .. import audit
from ..exceptions import BadInput
from ..i18n import N_
from . import bp

MAX_LIMIT = 1000


@bp.get("/audit_log")
def audit_log():
    """Query: ``limit`` (1-1000, default 100), ``target`` (a container name, rule id...), ``before_id``."""
    limit = request.args.get("limit", "100")
    before_id = request.args.get("before_id", "")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise BadInput(N_("Invalid limit '{value}': a whole number from 1 to {max}"), value=limit[:20], max=MAX_LIMIT)
    if before_id and not (before_id.isdigit() and len(before_id) <= 18):
        raise BadInput(N_("Invalid before_id '{value}'"), value=before_id[:20])
    entries = audit.entries(current_app.extensions["incus_api"].db, limit=int(limit),
                            target=request.args.get("target") or None, before_id=int(before_id) if before_id else None)
    return jsonify({"status": "success", "entries": entries})
