"""The one-time console link a billing system hands to its customer (issue 14)."""
from flask import url_for
from flask_babel import gettext as _

from ...schemas import route
from ...schemas.params import NAME
from . import bp, services, success


@route(bp, "POST", "/container/<name>/console_token", "A one-time link to the container's console", [NAME], answer={
    "url": {"type": "string", "description": "`/console/<token>`: opens the console in a browser, without a login"},
    "expires_in": {"type": "integer", "description": "Seconds the link can still be opened (60)"},
}, errors=(400, 401, 404, 409, 429, 503), description=(
    "For a billing system's \"console\" button: the link opens this container's console (a root shell) in a "
    "browser without any login, once, within `expires_in` seconds; a second open answers 410, and so does a "
    "container deleted and made again under the same name (the link is bound to the instance). Only the token's "
    "SHA-256 is stored. 409 while the container is suspended or not running (the link then opens nothing "
    "either); 429 while `CONSOLE_PER_CONTAINER` consoles (2) are open on it (the link's page answers the same, "
    "without spending it). Needs the API hash, or the admin session with its CSRF token."))
def console_token(name):
    token, seconds = services().console.create_token(name)
    return success(_("A console link for %(name)s: it opens once, within %(seconds)d seconds", name=name, seconds=seconds),
                   url=url_for("dashboard.token_console", token=token), expires_in=seconds)
