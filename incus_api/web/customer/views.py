"""The customer's routes: the link that signs in, the panel, signing out. The panel's actions
(``actions``) and its console (``console``) live beside these, each calling the same service as the
admin's route."""
import time

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from ...exceptions import AppError, Gone, Unauthorized
from ...i18n import N_
from ...schemas import route
from ...service.customer_panel import CustomerPanel
from ...service.public_address import public_host
from ..dashboard.console import CONSOLE_CSP, idle_minutes, socket_path, terminal_missing
from ..security import LoginLimited, login_limiter
from . import bp

COOKIE = "customer_session"
# The security schemes of /openapi.json (apidocs.spec) a declared customer route takes: the session
# cookie for a read, the session and the CSRF token (Flask-WTF's check) for a change.
CUSTOMER_SESSION, CUSTOMER_CSRF = "customerSession", "customerCsrf"
READ, CHANGE = (CUSTOMER_SESSION,), (CUSTOMER_SESSION, CUSTOMER_CSRF)
LINK_LIMIT_NAME = "customer-link"  # the login limit's name for link opens: per client address
OPEN_ENDPOINTS = ("customer.open_link", "customer.signed_out")


def services():
    return current_app.extensions["incus_api"].services


def wants_json():
    return request.method != "GET" or request.accept_mimetypes.best == "application/json"


@bp.before_request
def load_customer():
    """Every view but the link's needs a customer session: 401 otherwise (a page for a browser,
    JSON for the panel's calls)."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    customer = services().customers.session(request.cookies.get(COOKIE))
    if customer is None:
        error = Unauthorized(N_("You are not signed in to this control panel, or your session has ended: open it again "
                                "from your provider's billing panel"))
        if wants_json():
            return jsonify(error.to_dict(translate=_)), 401
        return refused_page(error.to_dict(translate=_)["message"], 401)
    g.customer = customer
    return None


def refused_page(message, status):
    response = make_response(render_template("customer_refused.html", message=message), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's token stays out of Referer
    return response


def cookie_secure():
    return bool(current_app.config.get("SESSION_COOKIE_SECURE") or request.is_secure)


@bp.get("/<token>")
def open_link(token):
    """A one-time link: spent here, opening a session for its container; then the panel."""
    try:
        login_limiter(current_app).attempt(LINK_LIMIT_NAME, request.remote_addr)
        session_id, _name, seconds = services().customers.redeem(token, client_address=request.remote_addr)
    except LoginLimited as exc:
        response = refused_page(exc.to_dict(translate=_)["message"], 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AppError as exc:
        return refused_page(exc.to_dict(translate=_)["message"], exc.http_status)
    response = redirect(url_for("customer.panel"))
    response.set_cookie(COOKIE, session_id, max_age=seconds, path=url_for("customer.panel"), secure=cookie_secure(),
                        httponly=True, samesite="Lax")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def customer_panel():
    return CustomerPanel(services(), current_app.config.get("CUSTOMER_IMAGES", ""))


def overview(panel, customer):
    """What the overview shows: the container's info (live, or last known), its SSH endpoint,
    port block, the public host, and when it was read (for the CPU meter)."""
    info = panel.info(customer)
    return {"name": customer.name, "info": info, "ssh": panel.ssh(customer),
            "block": panel.block(customer), "public_host": public_host(current_app.config),
            "sampled_at": time.time(), "panel_state": page_state(info), "suspension": panel.suspension(customer, info)}


def page_state(info):
    """What the page's buttons follow: the status, "Suspended" when suspended, nothing while
    Incus is unreachable (as the admin's container page)."""
    if not info.get("live_data_available"):
        return ""
    return ("Suspended" if info.get("suspended") else info.get("status")) or ""


def gone(exc):
    """The container is no more (or is another instance): this session ends with it."""
    services().customers.sign_out(g.customer)
    response = refused_page(exc.to_dict(translate=_)["message"], exc.http_status)
    response.delete_cookie(COOKIE, path=url_for("customer.panel"), secure=cookie_secure(), httponly=True, samesite="Lax")
    return response


@bp.get("")
def panel():
    customer = g.customer
    panel = customer_panel()
    try:
        view = overview(panel, customer)
        images = panel.images(customer, view["info"]) if view["info"].get("live_data_available") else []
    except Gone as exc:
        return gone(exc)
    missing = terminal_missing()
    response = make_response(render_template(
        "customer.html", **view, usage=panel.usage(customer), images=images, terminal_missing=missing,
        socket_url=None if missing else socket_path("customer.console_socket"), idle_minutes=idle_minutes()))
    # xterm.js puts its own <style> elements into the page (as on the admin's console page).
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/overview")
def overview_part():
    try:
        view = overview(customer_panel(), g.customer)
    except Gone as exc:
        return gone(exc)
    return no_store(render_template("_customer_overview.html", **view))


@bp.get("/traffic")
def traffic_part():
    usage = customer_panel().usage(g.customer)
    if usage is None:
        abort(404)
    return no_store(render_template("_traffic.html", usage=usage))


def no_store(html):
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


@route(bp, "POST", "/logout", "Sign this browser out of the customer's panel", redirect="/customer/signed-out",
       errors=(400, 401), security=CHANGE, description=(
           "Ends this browser's session and deletes its cookie; the customer's other browsers stay signed in "
           "(`POST /container/{name}/customer_logout` ends them all)."))
def logout():
    """This browser's session ends (the customer's other browsers stay signed in)."""
    services().customers.sign_out(g.customer)
    response = redirect(url_for("customer.signed_out"))
    response.delete_cookie(COOKIE, path=url_for("customer.panel"), secure=cookie_secure(), httponly=True, samesite="Lax")
    return response


@bp.get("/signed-out")
def signed_out():
    return refused_page(_("You are signed out. Open the control panel again from your provider's billing panel."), 200)


from . import actions, console, snapshots  # noqa: E402,F401 - the panel's actions, console WebSocket, snapshots
