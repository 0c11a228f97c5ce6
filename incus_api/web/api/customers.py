"""The customer's panel, from the billing system's side: a one-time link that signs the customer
in (a "log in to control panel" button is this one call), and signing every customer session of a
container out (issue 19)."""
from flask import url_for
from flask_babel import gettext as _

from ...schemas import route
from ...schemas.params import NAME
from . import bp, services, success


@route(bp, "POST", "/container/<name>/customer_link", "A one-time link to the container's customer panel", [NAME], answer={
    "url": {"type": "string", "description": "`/customer/<token>`: signs a browser in as this container's customer"},
    "expires_in": {"type": "integer", "description": "Seconds the link can still be opened (300)"},
}, errors=(400, 401, 404, 503), description=(
    "For a billing system's \"log in to control panel\" button: opened in a browser with no login, the link signs "
    "it in as the customer of this container (and nothing else) and redirects to `/customer`; it works once (a "
    "second open answers 410), within `expires_in` seconds, and only for the instance it was made for (a container "
    "deleted and made again under the same name: 410). Only the token's SHA-256 is stored. The session lasts "
    "`CUSTOMER_SESSION_HOURS` (12). Needs the API hash, or the admin session with its CSRF token."))
def customer_link(name):
    token, seconds = services().customers.create_link(name)
    return success(_("A control panel link for %(name)s: it signs in once, within %(minutes)d minutes", name=name,
                     minutes=seconds // 60),
                   url=url_for("customer.open_link", token=token), expires_in=seconds)


@route(bp, "POST", "/container/<name>/customer_logout", "Sign the container's customer out everywhere", [NAME], answer={
    "ended": {"type": "integer", "description": "How many customer sessions ended"},
}, errors=(400, 401), description=(
    "Ends every customer session of this container (every browser signed in through its links) and the links "
    "not opened yet. Deleting the container does the same."))
def customer_logout(name):
    ended = services().customers.end_sessions(name)
    return success(_("%(count)d customer sessions of %(name)s ended", count=ended, name=name), ended=ended)
