"""The JSON API of the seed's table. Routes keep the seed's paths (no ``/api`` prefix)."""
from flask import Blueprint, current_app, jsonify

from ..auth import require_api_auth

bp = Blueprint("api", __name__)
bp.before_request(require_api_auth)


def services():
    return current_app.extensions["incus_api"].services


def success(message, **fields):
    return jsonify({"status": "success", "message": message, **fields})


from . import (  # noqa: E402,F401  (registers the routes on bp)
    audit,
    backups,
    billing,
    console,  # noqa: E402,F401  (the one-time console link)
    containers,
    customers,  # noqa: E402,F401  (the customer panel's link and sign-out)
    images,
    limits,
    nat_rules,
    snapshots,
    traffic,
)
