"""The audit log page."""
from flask import render_template, request
from flask_login import login_required

from .. import audit
from . import bp
from .views import backend

PAGE_SIZE = 100


@bp.get("/audit")
@login_required
def audit_page():
    before_id = request.args.get("before_id", "")
    entries = audit.entries(backend().db, limit=PAGE_SIZE, target=request.args.get("target") or None,
                            before_id=int(before_id) if before_id.isdigit() else None)
    return render_template("audit.html", entries=entries, target=request.args.get("target", ""),
                           page_size=PAGE_SIZE)
