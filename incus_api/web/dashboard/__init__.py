"""The admin dashboard: HTML pages and partials that read through the service layer.

Pages render on the server; every change (create, start/stop/restart/delete, exec, NAT rules) is
made by the page modules under ``static/js/`` calling the JSON API routes with the session cookie
and the CSRF token, so the browser and API clients share one code path.
"""
from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from . import (  # noqa: E402,F401  (registers the routes and template filters on bp)
    audit,
    backups,  # noqa: E402,F401  (the backups page; the Settings page's backups card)
    console,  # noqa: E402,F401  (the browser console: its pages and WebSocket)
    filters,
    images,
    views,
)
