"""The browser console (issue 14): the page with the terminal (xterm.js, served from static/vendor)
and its WebSocket (flask-sock), for the admin and for a one-time link.

The WebSocket is accepted only from a page of this very host (its ``Origin``), and only for the
admin's session or a ticket that opening a one-time link gave the page; both are checked before
the handshake, so a refused attempt is an HTTP error, never an open socket. What passes through
it is relayed by ``service.console``; nothing of it is logged.
"""
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, g, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ...exceptions import AppError, Forbidden, Unauthorized
from ...i18n import N_
from ...parse.names import container_name
from ...service.console import Disconnected
from ..request_audit import actor
from ..security import CONTENT_SECURITY_POLICY
from . import bp

log = logging.getLogger(__name__)

sock = Sock()  # routes on the dashboard blueprint; no app-wide state
SOCKET_ENDPOINTS = ("dashboard.console_socket", "dashboard.token_console_socket")
DEFAULT_SIZE = (80, 24)
# xterm.js puts its own <style> elements into the page (its DOM renderer's colours and sizes);
# scripts stay 'self' only.
CONSOLE_CSP = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
END_MESSAGES = {
    "closed": N_("The console was closed"),
    "exited": N_("The shell has ended"),
    "idle": N_("The console was closed after {minutes} minutes without input"),
    "stopping": N_("The service is restarting: the console was closed"),
    "error": N_("The console was closed after an error"),
}


# The terminal's files, fetched by static/vendor/fetch.py (install.sh and tests/run.sh run it; git
# ignores them). A clone where it did not run says so on the page and in the log.
TERMINAL_FILES = ("vendor/xterm/lib/xterm.js", "vendor/xterm/css/xterm.css", "vendor/addon-fit/lib/addon-fit.js")
FETCH_COMMAND = ".venv/bin/python static/vendor/fetch.py"


@bp.record_once
def websocket_options(state):
    # ping: proxies keep an idle console's connection; max_message_size: one paste at most 1 MiB.
    state.app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25, "max_message_size": 1024 * 1024})
    missing = missing_terminal_files(state.app.static_folder)
    if missing:
        log.warning("the browser console cannot open: %s missing; run %s (install.sh does it)",
                    ", ".join(missing), FETCH_COMMAND)


def missing_terminal_files(static_folder):
    return [path for path in TERMINAL_FILES if not (Path(static_folder) / path).is_file()]


def terminal_missing():
    """The message for a console page when xterm.js is not installed, else None."""
    if not missing_terminal_files(current_app.static_folder):
        return None
    return _("The browser console's files (xterm.js) are not installed on this host: run %(command)s in the "
             "service's folder (install.sh does it), then open the console again.", command=FETCH_COMMAND)


def services():
    return current_app.extensions["incus_api"].services


def same_origin():
    """Whether the request's ``Origin`` is this host (as the browser reached it: through a
    trusted proxy, its ``X-Forwarded-Host``). No Origin, no console: browsers always send it."""
    origin = request.headers.get("Origin", "")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    default = {"http": ":80", "https": ":443"}[parts.scheme]
    return parts.netloc.lower().removesuffix(default) == request.host.lower().removesuffix(default)


@bp.before_request
def guard_console_sockets():
    """Before the handshake: the Origin, then the admin's session or the page's ticket, and a
    console place left on the container (429: ``CONSOLE_PER_CONTAINER``)."""
    if request.endpoint not in SOCKET_ENDPOINTS:
        return
    if not same_origin():
        raise Forbidden(N_("The console accepts connections from its own pages only"))
    if request.endpoint == "dashboard.console_socket":
        if not current_user.is_authenticated:
            raise Unauthorized(N_("Authentication required"))
        g.console_grant = (container_name(request.view_args["name"]), actor(), None)
        services().console.check_room(g.console_grant[0])  # 429 before the handshake
    else:  # take_ticket answers 429 too, and keeps the ticket then
        g.console_grant = services().console.take_ticket(request.view_args["ticket"])


def console_page(name, socket_url=None, refused=None, status=200, via_token=False):
    response = make_response(render_template("console.html", name=name, socket_url=socket_url, refused=refused,
                                             via_token=via_token, idle_minutes=idle_minutes()), status)
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's token stays out of Referer
    return response


def socket_path(endpoint, **values):
    """The WebSocket's path only: werkzeug builds a ``ws://`` URL for a WebSocket rule, with the
    host as the app sees it; the page connects to the host it was loaded from."""
    parts = urlsplit(url_for(endpoint, **values))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def idle_minutes():
    return max(1, round(current_app.config["CONSOLE_IDLE_TIMEOUT"] / 60))


def message_of(error):
    return error.to_dict(translate=_)["message"]


@bp.get("/container/<name>/console")
@login_required
def console(name):
    name = container_name(name)
    missing = terminal_missing()
    if missing:
        return console_page(name, refused=missing, status=503)
    try:
        services().console.check_open(name)
    except AppError as exc:
        return console_page(name, refused=message_of(exc), status=exc.http_status)
    return console_page(name, socket_url=socket_path("dashboard.console_socket", name=name))


@bp.get("/console/<token>")
def token_console(token):
    """A one-time link: spent here, on opening; the page's WebSocket gets a ticket of its own."""
    missing = terminal_missing()
    if missing:  # the link is not spent: it opens once the files are there
        return console_page(None, refused=missing, status=503, via_token=True)
    try:
        name, ticket, _token_id = services().console.redeem(token)
    except AppError as exc:
        return console_page(None, refused=message_of(exc), status=exc.http_status, via_token=True)
    return console_page(name, socket_url=socket_path("dashboard.token_console_socket", ticket=ticket),
                        via_token=True)


class Browser:
    """The service's view of the WebSocket."""

    def __init__(self, ws):
        self.ws = ws

    def receive(self, timeout):
        try:
            return self.ws.receive(timeout=timeout)
        except ConnectionClosed:
            raise Disconnected() from None

    def send(self, data):
        try:
            self.ws.send(data)
        except ConnectionClosed:
            raise Disconnected() from None

    def end(self, reason, message):
        try:
            self.ws.send(json.dumps({"type": "end", "reason": reason, "message": message}, ensure_ascii=False))
        except ConnectionClosed:
            pass


def size_from_query():
    """The terminal's size the page measured (``?cols=&rows=``), else 80x24."""
    size = []
    for key, default in zip(("cols", "rows"), DEFAULT_SIZE):
        value = request.args.get(key, "")
        size.append(int(value) if value.isascii() and value.isdigit() and len(value) <= 5 else default)
    return size


def run_console(ws):
    name, who, uuid = g.console_grant
    browser = Browser(ws)
    try:
        session = services().console.start(name, who, *size_from_query(), client_address=request.remote_addr,
                                           uuid=uuid)
    except AppError as exc:
        browser.end("refused", message_of(exc))
        return
    reason = services().console.relay(session, browser)
    if reason != "closed":
        browser.end(reason, _(END_MESSAGES[reason]).format(minutes=idle_minutes()))


@sock.route("/container/<name>/console/ws", bp=bp)
def console_socket(ws, name):
    run_console(ws)


@sock.route("/console/ws/<ticket>", bp=bp)
def token_console_socket(ws, ticket):
    run_console(ws)
