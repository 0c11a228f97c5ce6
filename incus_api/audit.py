"""The audit log: one row per state-changing request (who, client address, what, target, result).

It never holds secrets: of the request's fields only those in ``SAFE_FIELDS`` are kept, so
passwords, API secrets and command lines (which may carry secrets) never reach it.
"""
import json
import logging

from flask import g, request
from flask_login import current_user

log = logging.getLogger(__name__)

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SAFE_FIELDS = ("action", "image", "host_port", "container_port", "protocol", "alias", "username")
TARGET_ARGS = ("name", "rule_id", "fingerprint", "alias")
KEEP_ROWS = 100_000
PRUNE_EVERY = 1000


def actor():
    """``api`` for X-API-Hash callers, ``admin:<user>`` for the dashboard, else ``anonymous``."""
    if g.get("auth_via") == "api":
        return "api"
    if current_user.is_authenticated:
        return f"admin:{current_user.username}"
    return "anonymous"


def record(db, response):
    view_args = request.view_args or {}
    form = request.form if request.form else (request.get_json(silent=True) or {})
    if not isinstance(form, dict) and not hasattr(form, "get"):
        form = {}
    details = {field: str(form.get(field))[:100] for field in SAFE_FIELDS if form.get(field) not in (None, "")}
    target = next((str(view_args[arg]) for arg in TARGET_ARGS if arg in view_args), None)
    if target is None and form.get("name"):
        target = str(form.get("name"))[:80]
    body = response.get_json(silent=True) if response.is_json else None
    result = body.get("status") if isinstance(body, dict) and body.get("status") else (
        "success" if response.status_code < 400 else "error")
    cursor = db.execute(
        "INSERT INTO audit_log (actor, client_address, method, action, target, details, status_code, result)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (actor(), request.remote_addr, request.method, request.endpoint or request.path[:100], target,
         json.dumps(details, ensure_ascii=False) if details else None, response.status_code, str(result)[:20]),
    )
    if cursor.lastrowid % PRUNE_EVERY == 0:
        db.execute("DELETE FROM audit_log WHERE id <= ?", (cursor.lastrowid - KEEP_ROWS,))


def entries(db, limit=100, target=None, before_id=None):
    clauses, params = [], []
    if target:
        clauses.append("target = ?")
        params.append(target)
    if before_id:
        clauses.append("id < ?")
        params.append(before_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.query(f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ?", (*params, limit))
    result = []
    for row in rows:
        entry = dict(row)
        entry["details"] = json.loads(entry["details"]) if entry["details"] else {}
        result.append(entry)
    return result


def register_audit(app, db):
    @app.after_request
    def audit_state_changes(response):
        if request.method in UNSAFE_METHODS and request.endpoint not in (None, "static"):
            try:
                record(db, response)
            except Exception:  # noqa: BLE001 - the audit must never break the answer
                log.exception("could not write the audit log")
        return response
