"""Who may call: an ``X-API-Hash`` header (SHA-256 hex of the API secret) or the admin's session."""
from flask import current_app, g, request
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect

from ..exceptions import Unauthorized
from ..i18n import N_

API_HASH_HEADERS = ("X-API-Hash", "X-API-Key-Hash")  # the second is what later originals used

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

login_manager = LoginManager()
login_manager.login_view = "dashboard.login"
login_manager.login_message = N_("Please log in to see this page")
login_manager.login_message_category = "info"
# Flask-WTF: every form of the dashboard carries ``csrf_token``; the API blueprint is exempt from
# the automatic check and calls ``csrf.protect()`` itself for callers that use the session.
csrf = CSRFProtect()


class User(UserMixin):
    """The logged-in admin: Flask-Login's view of an ``Account``. Its id is the account's
    ``session_id``, so a changed password logs out every session made with the old one."""

    def __init__(self, account):
        self.id = account.session_id
        self.username = account.username


def services():
    return current_app.extensions["incus_api"].services


def require_api_auth():
    """``before_request`` of the API: a valid hash header or a logged-in admin, else 401.

    A caller authenticated by the session cookie (the dashboard's ``fetch`` calls) must also send
    the CSRF token (``X-CSRFToken`` header or ``csrf_token`` field) on state-changing methods; a
    caller with a valid ``X-API-Hash`` needs none: a browser never adds that header by itself.
    """
    supplied = next((request.headers[h] for h in API_HASH_HEADERS if request.headers.get(h)), None)
    if supplied is not None and services().accounts.accepts_api_hash(supplied):
        g.auth_via = "api"
        return
    if current_user.is_authenticated:
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        return
    if supplied is None:
        raise Unauthorized(N_("Authentication required: send the X-API-Hash header"))
    raise Unauthorized(N_("Invalid X-API-Hash"))


@login_manager.user_loader
def load_user(session_id):
    account = services().accounts.by_session_id(session_id)
    return None if account is None else User(account)
