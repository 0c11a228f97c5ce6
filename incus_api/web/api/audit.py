"""``GET /audit_log``: the audit log for scripts (newest first)."""
from flask_babel import gettext as _

from ...parse import listing
from ...parse.numbers import BIGGEST_ID
from ...schemas import Param, route
from . import bp, services, success


@route(bp, "GET", "/audit_log", "The audit log, newest first", [
    Param("limit", listing.audit_limit, {"type": "integer", "minimum": 1, "maximum": listing.AUDIT_LIMIT_MAX},
          where="query", default=listing.AUDIT_LIMIT_DEFAULT,
          description=f"Entries to answer (default {listing.AUDIT_LIMIT_DEFAULT})."),
    Param("target", listing.audit_target, {"type": "string"}, where="query",
          description="Only the entries about this container name, rule id, fingerprint or alias."),
    Param("before_id", listing.before_id, {"type": "integer", "minimum": 1, "maximum": BIGGEST_ID}, where="query",
          description="Only entries older than this id (the next page)."),
], answer={"entries": {"type": "array", "items": {"type": "object"}}}, errors=(400, 401), description=(
    "`limit` and `before_id` are ASCII digits only: a sign, spaces, an exponent, other scripts' digits or a "
    "value out of range answer 400 naming the parameter; an empty value is the same as none. Entries of actor "
    "`anonymous` (failed authentication) are capped at AUDIT_ANONYMOUS_KEEP; the others are kept "
    "AUDIT_KEEP_DAYS days."))
def audit_log(limit, target, before_id):
    entries = services().audit_log.entries(limit=limit, target=target, before_id=before_id)
    return success(_("%(count)d entries", count=len(entries)), entries=entries)
