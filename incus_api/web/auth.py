"""Who may call: an ``X-API-Hash`` header (SHA-256 hex of the API secret) or the admin's session."""
import hashlib
import hmac
import secrets

from flask import current_app, g, request
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.security import check_password_hash, generate_password_hash

from ..exceptions import Unauthorized
from ..i18n import N_

API_HASH_HEADERS = ("X-API-Hash", "X-API-Key-Hash")  # the second is what later originals used
API_SECRET_SETTING = "api_secret"

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

login_manager = LoginManager()
login_manager.login_view = "dashboard.login"
login_manager.login_message = N_("Please log in to see this page")
login_manager.login_message_category = "info"
# Flask-WTF: every form of the dashboard carries ``csrf_token``; the API blueprint is exempt from
# the automatic check and calls ``csrf.protect()`` itself for callers that use the session.
csrf = CSRFProtect()


class User(UserMixin):
    """The session stores ``<user id>.<fingerprint of the password hash>``: changing the password
    changes the fingerprint, which logs out every session made with the old one."""

    def __init__(self, row):
        self.id = f"{row['id']}.{password_fingerprint(row['password_hash'])}"
        self.username = row["username"]


def password_fingerprint(password_hash):
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def api_hash(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def ensure_api_secret(db):
    """The stored API secret, generated on first use."""
    secret = db.get_setting(API_SECRET_SETTING)
    if not secret:
        secret = secrets.token_urlsafe(32)
        with db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (API_SECRET_SETTING, secret))
        secret = db.get_setting(API_SECRET_SETTING)
    return secret


def api_secret(config, db):
    """``API_SECRET_KEY`` from the environment/config wins; else the one stored in the database."""
    return config.get("API_SECRET_KEY") or ensure_api_secret(db)


def valid_api_hash(supplied, secret):
    if not supplied or not secret:
        return False
    expected = api_hash(secret)
    return hmac.compare_digest(supplied.strip().lower().encode(), expected.encode())


def require_api_auth():
    """``before_request`` of the API: a valid hash header or a logged-in admin, else 401.

    A caller authenticated by the session cookie (the dashboard's ``fetch`` calls) must also send
    the CSRF token (``X-CSRFToken`` header or ``csrf_token`` field) on state-changing methods; a
    caller with a valid ``X-API-Hash`` needs none: a browser never adds that header by itself.
    """
    supplied = next((request.headers[h] for h in API_HASH_HEADERS if request.headers.get(h)), None)
    backend = current_app.extensions["incus_api"]
    if supplied is not None and valid_api_hash(supplied, api_secret(current_app.config, backend.db)):
        g.auth_via = "api"
        return
    if current_user.is_authenticated:
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        return
    if supplied is None:
        raise Unauthorized(N_("Authentication required: send the X-API-Hash header"))
    raise Unauthorized(N_("Invalid X-API-Hash"))


def create_user(db, username, password):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (?, ?) "
            "ON CONFLICT(username) DO UPDATE SET password_hash = excluded.password_hash",
            (username, generate_password_hash(password)),
        )


def authenticate(db, username, password):
    row = db.query_one("SELECT id, username, password_hash FROM users WHERE username = ?", (username,))
    if row is None:
        # Same work as a real check, so timing does not tell which part was wrong.
        check_password_hash(generate_password_hash("x"), password)
        return None
    return User(row) if check_password_hash(row["password_hash"], password) else None


@login_manager.user_loader
def load_user(session_id):
    user_id, _, fingerprint = str(session_id).partition(".")
    if not user_id.isdigit():
        return None
    db = current_app.extensions["incus_api"].db
    row = db.query_one("SELECT id, username, password_hash FROM users WHERE id = ?", (int(user_id),))
    if row is None or not hmac.compare_digest(password_fingerprint(row["password_hash"]), fingerprint):
        return None
    return User(row)
