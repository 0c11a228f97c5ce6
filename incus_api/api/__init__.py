"""The JSON API of the seed's table. Routes keep the seed's paths (no ``/api`` prefix)."""
from flask import Blueprint

from ..auth import require_api_auth

bp = Blueprint("api", __name__)
bp.before_request(require_api_auth)

from . import audit_routes, billing, images, limits, routes, traffic  # noqa: E402,F401  (registers the routes on bp)
from . import console  # noqa: E402,F401  (the one-time console link)
