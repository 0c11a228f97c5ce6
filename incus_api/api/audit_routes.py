"""``GET /audit_log``: the audit log for scripts (newest first)."""
from flask import current_app, jsonify, request

from .. import validation
from . import bp

MAX_LIMIT = 1000


@bp.get("/audit_log")
def audit_log():
    """Query: ``limit`` (1-1000, default 100), ``target`` (a container name, rule id...), ``before_id``.

    An empty value is the same as none; anything else not in ASCII digits or out of range is a 400.
    """
    limit = validation.whole_number(request.args.get("limit") or "100", "limit", 1, MAX_LIMIT)
    before_id = request.args.get("before_id", "")
    before_id = validation.whole_number(before_id, "before_id", 1, validation.BIGGEST_ID) if before_id else None
    entries = current_app.extensions["incus_api"].services.audit_log.entries(
        limit=limit, target=request.args.get("target") or None, before_id=before_id)
    return jsonify({"status": "success", "entries": entries})
