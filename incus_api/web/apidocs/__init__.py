"""``/openapi.json`` and ``/docs``: the API's description, public (it holds no secrets), with
every asset served by the app itself."""
from flask import Blueprint, jsonify, render_template

from .spec import build_spec

bp = Blueprint("apidocs", __name__)
SPEC = build_spec()


@bp.get("/openapi.json")
def openapi():
    return jsonify(SPEC)


@bp.get("/docs")
def docs():
    return render_template("apidocs.html", spec=SPEC)
