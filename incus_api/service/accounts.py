"""The dashboard's admin accounts and the API secret: checking a login, changing a password,
showing or regenerating the secret whose SHA-256 is the ``X-API-Hash``."""
import secrets

from ..exceptions import BadInput, Conflict, Unauthorized
from ..i18n import N_
from ..web.auth import (
    API_SECRET_SETTING,
    api_hash,
    api_secret,
    authenticate,
    create_user,
)

MIN_PASSWORD_LENGTH = 8


class Accounts:
    def __init__(self, db, config):
        self.db = db
        self.config = config

    def authenticate(self, username, password):
        """The user, or None when the name or the password is wrong (same work either way)."""
        return authenticate(self.db, username, password)

    @property
    def secret_from_config(self):
        """True when ``API_SECRET_KEY`` (environment or config file) sets the secret: the
        dashboard can then show it but not change it."""
        return bool(self.config.get("API_SECRET_KEY"))

    def api_hash(self):
        return api_hash(api_secret(self.config, self.db))

    def regenerate_api_secret(self):
        """A new stored secret: every caller of the old ``X-API-Hash`` is refused from now on."""
        if self.secret_from_config:
            raise Conflict(N_("The API secret comes from API_SECRET_KEY in the environment or config file: change it there"))
        self.db.set_setting(API_SECRET_SETTING, secrets.token_urlsafe(32))

    def change_password(self, username, current, new, confirm):
        """Checks the current password and the new one, stores it; returns the user as of the new
        password (every session made with the old one ends: see ``auth.User``)."""
        if self.authenticate(username, current) is None:
            raise Unauthorized(N_("The current password is wrong"))
        if len(new) < MIN_PASSWORD_LENGTH:
            raise BadInput(N_("The new password must have at least {count} characters"), count=MIN_PASSWORD_LENGTH)
        if new != confirm:
            raise BadInput(N_("The two new passwords differ"))
        create_user(self.db, username, new)
        return self.authenticate(username, new)
