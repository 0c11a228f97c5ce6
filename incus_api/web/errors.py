"""The one place where errors become responses: JSON for API clients, a page for the browser."""
import logging

from flask import jsonify, make_response, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from ..exceptions import AppError
from ..i18n import N_

log = logging.getLogger(__name__)

GENERIC_MESSAGES = {
    400: N_("Bad request"),
    401: N_("Authentication required"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    413: N_("Request too large"),
    415: N_("Unsupported media type"),
    429: N_("Too many requests"),
    500: N_("Internal error"),
}


def wants_html():
    """Browsers navigating to a page get HTML; API clients (curl, scripts, fetch) get JSON."""
    if request.blueprint == "api":
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]


def _respond(payload, status):
    if wants_html():
        return make_response(render_template("error.html", message=payload["message"], code=status), status)
    return make_response(jsonify(payload), status)


def register_error_handlers(app):
    @app.errorhandler(AppError)
    def app_error(error):
        if error.http_status >= 500:
            log.warning("%s: %s", type(error).__name__, error.message)
        return _respond(error.to_dict(translate=gettext), error.http_status)

    @app.errorhandler(HTTPException)
    def http_error(error):
        message = GENERIC_MESSAGES.get(error.code, error.name)
        json_status = "NotFound" if error.code == 404 else "error"
        response = _respond({"status": json_status, "message": gettext(message)}, error.code)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond({"status": "error", "message": gettext(GENERIC_MESSAGES[500])}, 500)
