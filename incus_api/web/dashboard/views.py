"""Routes of the dashboard. Reads go through the service layer; changes to containers go through the
JSON API (the page calls it), the admin's own login, password and API secret through ``accounts``."""
import time
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError

from ...exceptions import AppError, IncusUnavailable, NotFound
from ...i18n import LANGUAGES
from ...parse.names import container_name
from ...service.accounts import MIN_PASSWORD_LENGTH
from ...service.public_address import public_host
from ...service.tls import certificate_pem, served_certificate
from ..auth import User
from ..errors import _respond
from ..security import LoginLimited, login_limiter
from . import bp

LANG_COOKIE_SECONDS = 365 * 24 * 3600
DIAGNOSTICS_MAX_AGE = 60
_diagnostics_cache = {}


def services():
    return current_app.extensions["incus_api"].services


def safe_next(target, default="dashboard.index"):
    """Only a path on this site: no scheme, no host, no ``//host`` or ``/\\host`` tricks."""
    if target:
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and "\\" not in target):
            return target
    return url_for(default)


# -- login / logout / language ---------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    """The attempt is counted (per user name and client address) before the password is checked,
    so parallel guesses cannot all be checked before the limit sees them."""
    next_url = request.values.get("next", "")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(next_url))
    username = ""
    status, headers = 200, {}
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        limiter = login_limiter(current_app)
        try:
            if username and password:
                limiter.attempt(username, request.remote_addr)
            user = services().accounts.authenticate(username, password) if username and password else None
        except LoginLimited as exc:
            flash(exc.to_dict(translate=_)["message"], "error")
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        else:
            if user is not None:
                limiter.succeeded(username, request.remote_addr)
                login_user(User(user))
                return redirect(safe_next(next_url))
            flash(_("Wrong username or password"), "error")
            status = 401
    return render_template("login.html", username=username, next_url=next_url), status, headers


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    logout_user()
    flash(_("You are logged out"), "info")
    return redirect(url_for("dashboard.login"))


@bp.get("/lang/<code>")
def set_language(code):
    response = redirect(safe_next(request.args.get("next")))
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=LANG_COOKIE_SECONDS, samesite="Lax", httponly=True)
    return response


@bp.app_errorhandler(CSRFError)
def csrf_error(error):
    message = _("The security token of this form is missing or expired: reload the page and try again")
    if request.blueprint == "dashboard":
        flash(message, "error")
        target = {
            "dashboard.login": url_for("dashboard.login", next=request.values.get("next", "")),
            "dashboard.regenerate_api_secret": url_for("dashboard.settings"),
            "dashboard.change_password": url_for("dashboard.settings"),
        }.get(request.endpoint, url_for("dashboard.index"))
        return redirect(target)
    return _respond({"status": "error", "message": message}, 400)


# -- containers ------------------------------------------------------------------------------

def local_images():
    """The local image store for the create form: ``(images, error message or None)``."""
    try:
        return services().images.choices(), None
    except AppError as exc:
        return [], exc.to_dict(translate=_)["message"]


def diagnostics(max_age=0):
    """The doctor's checks, translated; reused for ``max_age`` seconds (the containers page must
    stay fast, the settings page always checks afresh)."""

    cached = _diagnostics_cache.get(current_app.name)
    if cached is None or time.monotonic() - cached[0] > max_age:
        checks = services().doctor.run_checks()
        cached = (time.monotonic(), checks)
        _diagnostics_cache[current_app.name] = cached
    return [check.render(translate=_) for check in cached[1]]


@bp.get("/")
@login_required
def index():
    rows, live = services().info.list_all()
    images, images_error = local_images()
    problems = [check for check in diagnostics(max_age=DIAGNOSTICS_MAX_AGE) if not check["ok"]] if live else []
    return render_template("containers.html", rows=rows, live=live, images=images, images_error=images_error,
                           problems=problems, suspended=services().lifecycle.suspended_names(),
                           traffic=services().traffic.summaries(), orphaned=services().nat_rules.orphaned())


@bp.get("/containers/rows")
@login_required
def container_rows():
    """The table body, the Incus banner and the orphaned NAT rules, for refreshing the list
    without a reload."""
    rows, live = services().info.list_all()
    return render_template("_container_rows.html", rows=rows, live=live,
                           suspended=services().lifecycle.suspended_names(), traffic=services().traffic.summaries(),
                           orphaned=services().nat_rules.orphaned())


@bp.get("/containers/<name>")
@login_required
def container(name):
    name = container_name(name)
    info = services().info.info(name)
    rules = services().nat_rules.list_for(name)
    images, _images_error = local_images()
    return render_template("container.html", name=name, info=info, rules=rules, images=images,
                           public_host=public_host(current_app.config), usage=traffic_usage(name),
                           sessions=services().customers.sessions_of(name))


@bp.get("/containers/<name>/customer")
@login_required
def container_customer(name):
    """The customer's sessions of the container (its page's customer card)."""
    name = container_name(name)
    return render_template("_customer_sessions.html", sessions=services().customers.sessions_of(name))


def traffic_usage(name):
    """This period's traffic for the page, or None while Incus cannot say the container exists."""
    try:
        return services().traffic.usage(name)
    except (NotFound, IncusUnavailable):
        return None


@bp.get("/containers/<name>/traffic")
@login_required
def container_traffic(name):
    name = container_name(name)
    return render_template("_traffic.html", name=name, usage=services().traffic.usage(name))


@bp.get("/containers/<name>/overview")
@login_required
def container_overview(name):
    name = container_name(name)
    info = services().info.info(name)
    return render_template("_container_overview.html", name=name, info=info)


@bp.get("/containers/<name>/nat")
@login_required
def container_nat(name):
    name = container_name(name)
    return render_template("_nat_rules.html", name=name, rules=services().nat_rules.list_for(name),
                           public_host=public_host(current_app.config))


# -- settings --------------------------------------------------------------------------------

@bp.get("/settings")
@login_required
def settings():
    from .backups import backup_settings  # (backups imports this module)

    accounts = services().accounts
    return render_template(
        "settings.html",
        api_hash=accounts.api_hash(),
        secret_from_config=accounts.secret_from_config,
        base_url=request.host_url.rstrip("/"),
        min_password_length=MIN_PASSWORD_LENGTH,
        checks=diagnostics(),
        tls=served_certificate(current_app.config, current_app.instance_path),
        backups=backup_settings(),
    )


@bp.get("/settings/certificate.pem")
@login_required
def certificate():
    """The certificate the service serves, for ``curl --cacert`` and billing systems."""
    pem = certificate_pem(current_app.config, current_app.instance_path)
    if pem is None:
        abort(404)
    return Response(pem, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": "attachment; filename=incus-api-web.pem"})


@bp.post("/settings/api-secret")
@login_required
def regenerate_api_secret():
    try:
        services().accounts.regenerate_api_secret()
    except AppError as exc:
        flash(exc.to_dict(translate=_)["message"], "error")
    else:
        flash(_("New API secret generated: the old X-API-Hash no longer works"), "success")
    return redirect(url_for("dashboard.settings"))


@bp.post("/settings/password")
@login_required
def change_password():
    try:
        user = services().accounts.change_password(
            current_user.username, request.form.get("current_password", ""),
            request.form.get("new_password", ""), request.form.get("confirm_password", ""))
    except AppError as exc:
        flash(exc.to_dict(translate=_)["message"], "error")
    else:
        login_user(User(user))  # this session continues under the new password; every other one ends
        flash(_("Password changed"), "success")
    return redirect(url_for("dashboard.settings") + "#password")


@bp.after_request
def no_store(response):
    """Pages show secrets and live state: do not keep them in caches."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- what every page's template gets -----------------------------------------------------------

def js_config():
    """Texts and URL patterns for the page modules under ``static/js/``, passed in a data attribute
    (``<body data-config>``; no inline script)."""
    placeholder = "__NAME__"
    return {
        "urls": {
            "create": url_for("api.create_container"),
            "action": url_for("api.container_action", name=placeholder),
            "exec": url_for("api.exec_command", name=placeholder),
            "add_rule": url_for("api.add_nat_rule", name=placeholder),
            "rules": url_for("api.list_nat_rules", name=placeholder),
            "delete_rule": url_for("api.delete_nat_rule", rule_id=0).replace("/0", "/__ID__"),
            "container": url_for("dashboard.container", name=placeholder),
            "password": url_for("api.set_password", name=placeholder),
            "limits": url_for("api.set_limits", name=placeholder),
            "traffic_reset": url_for("api.reset_traffic", name=placeholder),
            "customer_link": url_for("api.customer_link", name=placeholder),
            "customer_logout": url_for("api.customer_logout", name=placeholder),
            "image_import": url_for("api.import_image"),
            "image_operation": url_for("api.import_status", operation_id="__ID__"),
            "image_delete": url_for("api.delete_image", fingerprint="__ID__"),
            "image_alias_add": url_for("api.add_image_alias", fingerprint="__ID__"),
            "image_alias_delete": url_for("api.delete_image_alias", alias="__NAME__"),
        },
        "texts": {
            "working": _("Working…"),
            "creating": _("Creating {name}… {seconds} s"),
            "reinstalling": _("Reinstalling {name}… {seconds} s"),
            "connection": _("Connection details (shown only this once)"),
            "connection_once": _("Give these to the customer now: the password is not stored and is not shown again."),
            "ssh": _("SSH"),
            "ssh_command": _("SSH command"),
            "password": _("Root password"),
            "ports": _("Port range"),
            "copy": _("Copy"),
            "limits_required": _("Fill in at least one limit to change"),
            "traffic_reset_title": _("Reset the traffic of {name}?"),
            "traffic_reset_body": _("This period's totals start again from zero now, and a throttle or a suspension for traffic is lifted. The history per day is kept."),
            "traffic_reset": _("Reset traffic"),
            "network_error": _("The server cannot be reached: check the connection and try again"),
            "unexpected": _("Unexpected answer from the server"),
            "confirm": _("Confirm"),
            "delete": _("Delete"),
            "delete_title": _("Delete container {name}?"),
            "delete_body": _("The container and its disk are removed for good."),
            "delete_rules": _("These NAT rules will be removed with it:"),
            "delete_no_rules": _("It has no NAT rules."),
            "delete_rule_title": _("Delete NAT rule {rule}?"),
            "suspend": _("Suspend"),
            "suspend_title": _("Suspend container {name}?"),
            "suspend_body": _("It is stopped; starting it, running commands, changing its password and reinstalling are refused until it is unsuspended. Its NAT rules stay and reach nothing meanwhile."),
            "reinstall": _("Reinstall"),
            "reinstall_title": _("Reinstall container {name} from {image}?"),
            "reinstall_body": _("Its disk is replaced by a fresh one from the image: every file in it is lost. The name, limits, address and NAT rules are kept."),
            "open": _("Open"),
            "exit_code": _("Exit code {code}"),
            "no_output": _("(no output)"),
            "copied": _("Copied"),
            "image_required": _("Choose an image or type remote:alias"),
            "generated_password": _("Root password (generated, shown only this once):"),
            "truncated": _("The output was longer than the limit: only its beginning is shown."),
            "updated": _("Updated {time}"),
            "shown": _("{shown} of {total} shown"),
            "importing": _("Importing {image}… {seconds} s"),
            "delete_image_title": _("Delete image {image}?"),
            "delete_image_body": _("It is removed from the local image store; containers already made from it keep working."),
            "remove_alias_title": _("Remove alias {alias}?"),
            "remove": _("Remove"),
            "customer_logout_title": _("Sign the customer of {name} out?"),
            "customer_logout_body": _("Every browser signed in to its control panel is signed out, and its links not opened yet stop working."),
            "customer_logout": _("End customer sessions"),
            "customer_link": _("Customer panel link"),
        },
    }


@bp.app_context_processor
def page_context():
    from flask_babel import get_locale

    locale = str(get_locale() or LANGUAGES[0])
    return {
        "current_lang": "en" if locale.startswith("en") else "zh",
        "js_config": js_config,
        "LANGUAGE_NAMES": {"zh": "中文", "en": "English"},
    }
