"""The app factory: Flask, its extensions, the adapters, the services and the blueprints.

Imported only when an app is built (``incus_api.create_app``): the package itself stays light."""
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, gettext

from .config import (
    DEFAULT_INSTANCE_PATH,
    MAX_REQUEST_BYTES,
    PROJECT_ROOT,
    load_config,
    persistent_secret,
)
from .i18n import LANGUAGES
from .incus.client import Incus
from .nat import NatTable
from .service.registry import Services, build_services
from .store.db import Database
from .web.auth import csrf, login_manager
from .web.converters import WholeNumberConverter
from .web.errors import register_error_handlers
from .web.request_audit import register_audit
from .web.security import register_security


@dataclass
class Backend:
    """What the blueprints reach through ``current_app.extensions["incus_api"]``."""

    db: Database
    incus: Incus
    nat: NatTable
    services: Services


def select_locale():
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def create_app(config=None, instance_path=None):
    """Build the app. ``config`` overrides the environment (tests pass a temporary DATABASE).

    No call to the Incus daemon happens here: the client is made on the first request.
    """
    instance_path = Path(instance_path or DEFAULT_INSTANCE_PATH)
    app = Flask(
        "incus_api",
        instance_path=str(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config(instance_path=instance_path))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = persistent_secret(instance_path / "secret_key")
    # A request size limit (Flask's own key defaults to None, so setdefault would not set it).
    app.config["MAX_CONTENT_LENGTH"] = (config or {}).get("MAX_CONTENT_LENGTH", MAX_REQUEST_BYTES)
    # The dashboard stays open for hours: the CSRF token lives as long as the session.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # Flask has these keys already (SameSite None), so setdefault would not apply.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = (config or {}).get("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).with_name("translations")))
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    logging.basicConfig(level=app.config.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db = Database(app.config["DATABASE"])
    db.migrate()
    incus = Incus(app.config["INCUS_SOCKET"], operation_timeout=app.config["OPERATION_TIMEOUT"])
    nat = NatTable(tag_prefix=app.config["NAT_TAG_PREFIX"], bridge=app.config["INCUS_BRIDGE"])
    app.extensions["incus_api"] = Backend(db=db, incus=incus, nat=nat, services=build_services(incus, nat, db, app.config))

    # <int:...> in routes: ASCII digits only, bounded (before the blueprints add their rules).
    app.url_map.converters["int"] = WholeNumberConverter
    register_security(app)
    register_audit(app)
    login_manager.init_app(app)
    login_manager.localize_callback = gettext
    csrf.init_app(app)
    Babel(app, locale_selector=select_locale)
    register_error_handlers(app)

    from .web.api import bp as api_bp

    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # the API checks the token itself, only for session callers (auth.py)

    from .web.dashboard import bp as dashboard_bp

    app.register_blueprint(dashboard_bp)

    from .web.customer import bp as customer_bp

    app.register_blueprint(customer_bp)

    from .web.apidocs import bp as apidocs_bp

    app.register_blueprint(apidocs_bp)

    from .cli import register_commands

    register_commands(app)
    return app
