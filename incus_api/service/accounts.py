"""The dashboard's admin accounts and the API secret: checking a login, finding the account of a
session, changing a password, showing or regenerating the secret whose SHA-256 is the
``X-API-Hash``."""
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from werkzeug.security import check_password_hash, generate_password_hash

from ..exceptions import BadInput, Conflict, Unauthorized
from ..i18n import N_
from ..store import settings, users

MIN_PASSWORD_LENGTH = 8
API_SECRET_SETTING = "api_secret"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    password_hash: str

    @property
    def session_id(self):
        """``<user id>.<fingerprint of the password hash>``: what a session stores. A new password
        changes the fingerprint, which ends every session made with the old one."""
        return f"{self.id}.{password_fingerprint(self.password_hash)}"


def password_fingerprint(password_hash):
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def api_hash(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def valid_api_hash(supplied, secret):
    if not supplied or not secret:
        return False
    return hmac.compare_digest(supplied.strip().lower().encode(), api_hash(secret).encode())


def _account(row):
    return None if row is None else Account(row["id"], row["username"], row["password_hash"])


class Accounts:
    def __init__(self, db, config):
        self.db = db
        self.config = config

    # -- admins -------------------------------------------------------------------------------

    def authenticate(self, username, password):
        """The ``Account``, or None when the name or the password is wrong (same work either way,
        so the timing does not tell which part was wrong)."""
        account = _account(users.by_name(self.db, username))
        if account is None:
            check_password_hash(generate_password_hash("x"), password)
            return None
        return account if check_password_hash(account.password_hash, password) else None

    def by_session_id(self, session_id):
        """The account a session was made for, or None when it is gone or its password changed."""
        user_id, _, fingerprint = str(session_id).partition(".")
        if not user_id.isascii() or not user_id.isdigit():
            return None
        account = _account(users.by_id(self.db, int(user_id)))
        if account is None or not hmac.compare_digest(password_fingerprint(account.password_hash), fingerprint):
            return None
        return account

    def exists(self, username):
        return users.by_name(self.db, username) is not None

    def save_user(self, username, password):
        """Add the admin, or give an existing one this password."""
        users.save(self.db, username, generate_password_hash(password))

    def change_password(self, username, current, new, confirm):
        """Checks the current password and the new one, stores it; returns the account as of the
        new password (every session made with the old one ends: see ``Account.session_id``)."""
        if self.authenticate(username, current) is None:
            raise Unauthorized(N_("The current password is wrong"))
        if len(new) < MIN_PASSWORD_LENGTH:
            raise BadInput(N_("The new password must have at least {count} characters"), count=MIN_PASSWORD_LENGTH)
        if new != confirm:
            raise BadInput(N_("The two new passwords differ"))
        self.save_user(username, new)
        return self.authenticate(username, new)

    # -- the API secret -----------------------------------------------------------------------

    @property
    def secret_from_config(self):
        """True when ``API_SECRET_KEY`` (environment or config file) sets the secret: the
        dashboard can then show it but not change it."""
        return bool(self.config.get("API_SECRET_KEY"))

    def api_secret(self):
        """``API_SECRET_KEY`` from the environment/config wins; else the one stored in the
        database, generated on first use."""
        configured = self.config.get("API_SECRET_KEY")
        if configured:
            return configured
        secret = settings.get(self.db, API_SECRET_SETTING)
        if not secret:
            settings.put_if_missing(self.db, API_SECRET_SETTING, secrets.token_urlsafe(32))
            secret = settings.get(self.db, API_SECRET_SETTING)
        return secret

    def api_hash(self):
        return api_hash(self.api_secret())

    def accepts_api_hash(self, supplied):
        return valid_api_hash(supplied, self.api_secret())

    def regenerate_api_secret(self):
        """A new stored secret: every caller of the old ``X-API-Hash`` is refused from now on."""
        if self.secret_from_config:
            raise Conflict(N_("The API secret comes from API_SECRET_KEY in the environment or config file: change it there"))
        settings.put(self.db, API_SECRET_SETTING, secrets.token_urlsafe(32))
