"""The audit log page."""
from flask import render_template, request
from flask_login import login_required

from ...parse import listing
from . import bp
from .views import services

PAGE_SIZE = 100


@bp.get("/audit")
@login_required
def audit_page():
    before_id = request.args.get("before_id", "")
    before_id = listing.before_id(before_id) if before_id else None
    entries = services().audit_log.entries(limit=PAGE_SIZE, target=request.args.get("target") or None,
                                           before_id=before_id)
    return render_template("audit.html", entries=entries, target=request.args.get("target", ""),
                           page_size=PAGE_SIZE)
