"""The audit log of requests: one row per state-changing request (who, client address, what,
target, result). Storage and retention live in ``service/audit.py``.

It never holds secrets: of the request's fields only those in ``SAFE_FIELDS`` are kept, so
passwords, API secrets and command lines (which may carry secrets) never reach it.
"""
import logging

from flask import current_app, g, request
from flask_login import current_user

from ..service.audit import ANONYMOUS

log = logging.getLogger(__name__)

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SAFE_FIELDS = ("action", "image", "host_port", "container_port", "protocol", "alias", "username",
               "traffic_quota", "traffic_reset_day", "traffic_direction", "traffic_action",
               "snapshot", "snapshots", "snapshot_schedule", "snapshot_keep", "ports")
TARGET_ARGS = ("name", "rule_id", "fingerprint", "alias", "backup_id")


def actor():
    """``api`` for X-API-Hash callers, ``admin:<user>`` for the dashboard, ``customer:<container>``
    for a customer's panel, else ``anonymous``."""
    if g.get("auth_via") == "api":
        return "api"
    if g.get("customer") is not None:
        return g.customer.actor
    if current_user.is_authenticated:
        return f"admin:{current_user.username}"
    return ANONYMOUS


def record(response):
    view_args = request.view_args or {}
    form = request.form if request.form else (request.get_json(silent=True) or {})
    if not isinstance(form, dict) and not hasattr(form, "get"):
        form = {}
    details = {field: str(form.get(field))[:100] for field in SAFE_FIELDS if form.get(field) not in (None, "")}
    if "snapshot" in view_args:  # /container/<name>/snapshots/<snapshot>/...: which snapshot
        details["snapshot"] = str(view_args["snapshot"])[:100]
    target = next((str(view_args[arg]) for arg in TARGET_ARGS if arg in view_args), None)
    if target is None and g.get("customer") is not None:  # the session's container, whatever a field says
        target = g.customer.name
    elif target is None and form.get("name"):
        target = str(form.get("name"))[:80]
    body = response.get_json(silent=True) if response.is_json else None
    result = body.get("status") if isinstance(body, dict) and body.get("status") else (
        "success" if response.status_code < 400 else "error")
    current_app.extensions["incus_api"].services.audit_log.write(
        actor(), request.endpoint or request.path[:100], target=target, details=details, result=result,
        method=request.method, client_address=request.remote_addr, status_code=response.status_code)


def register_audit(app):
    @app.after_request
    def audit_state_changes(response):
        if request.method in UNSAFE_METHODS and request.endpoint not in (None, "static"):
            try:
                record(response)
            except Exception:  # noqa: BLE001 - the audit must never break the answer
                log.exception("could not write the audit log")
        return response
