"""Security headers, session cookies, reverse-proxy trust and the login rate limit."""
import ipaddress
import math
import threading
import time

from flask import request
from flask.sessions import SecureCookieSessionInterface
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import SettingError
from ..exceptions import TooManyRequests
from ..i18n import N_
from ..service.tls import sends_hsts

# Login attempts per (user name, client address), counted before the password is checked: a
# short burst, then the window grows (back-off).
LOGIN_LIMITS = "5 per minute;20 per hour;50 per day"
# Attempts per client address whatever the user name, so trying many names from one address
# cannot make the service check passwords without end (each check costs a password hash).
ADDRESS_LOGIN_LIMITS = "30 per minute;200 per hour;500 per day"
MAX_USERNAME_KEY = 100

HSTS = "max-age=31536000"
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                     "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")


# -- reverse proxies -----------------------------------------------------------------------------

def parse_networks(spec):
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; a wrong entry stops the service (SettingError)."""
    networks = []
    for item in spec.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise SettingError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network ({exc})") from exc
    return tuple(networks)


class TrustedProxies:
    """WSGI middleware: ``X-Forwarded-For/-Proto/-Host`` are applied (werkzeug's ProxyFix, one
    proxy hop) only when the connection comes from one of ``networks``; from anyone else they are
    removed, so a client cannot choose the address the audit log and the login limit see."""

    def __init__(self, app, networks):
        self.app = app
        self.networks = networks
        self.proxied = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def trusts(self, address):
        try:
            ip = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.proxied(environ, start_response)
        for header in FORWARDED_HEADERS:
            environ.pop(header, None)
        return self.app(environ, start_response)


# -- login rate limit ------------------------------------------------------------------------------

class LoginLimiter:
    """Counts a login attempt before its password is checked, atomically: of 50 parallel wrong
    logins for one user from one address, at most 5 reach the password check."""

    def __init__(self, per_user=LOGIN_LIMITS, per_address=ADDRESS_LOGIN_LIMITS):
        self.per_user = parse_many(per_user)
        self.per_address = parse_many(per_address)
        self.window = MovingWindowRateLimiter(MemoryStorage())
        self.lock = threading.Lock()

    @staticmethod
    def user_key(username, address):
        # The address first: it has no "/", so the joined key cannot be forged by a user name.
        return ("login-user", str(address), username.strip().lower()[:MAX_USERNAME_KEY])

    def attempt(self, username, address):
        """Count one attempt, or raise ``TooManyRequests`` (nothing counted) past a limit."""
        checks = [(item, self.user_key(username, address)) for item in self.per_user]
        checks += [(item, ("login-address", str(address))) for item in self.per_address]
        with self.lock:
            blocked = [(item, key) for item, key in checks if not self.window.test(item, *key)]
            if not blocked:
                for item, key in checks:
                    self.window.hit(item, *key)
                return
        wait = max(self.window.get_window_stats(item, *key).reset_time for item, key in blocked) - time.time()
        raise LoginLimited(max(1, math.ceil(wait)))

    def succeeded(self, username, address):
        """A right password: this user's count from this address starts again."""
        key = self.user_key(username, address)
        with self.lock:
            for item in self.per_user:
                self.window.clear(item, *key)


class LoginLimited(TooManyRequests):
    def __init__(self, retry_after):
        self.retry_after = retry_after
        if retry_after <= 90:
            super().__init__(N_("Too many login attempts: try again in {seconds} seconds"), seconds=retry_after)
        else:
            super().__init__(N_("Too many login attempts: try again in {minutes} minutes"),
                             minutes=math.ceil(retry_after / 60))


def login_limiter(app):
    return app.extensions["login_limiter"]


# -- registration ----------------------------------------------------------------------------------

class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the request came over HTTPS (or the config says so)."""

    def get_cookie_secure(self, app):
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def register_security(app):
    app.session_interface = SessionInterface()
    app.extensions["login_limiter"] = LoginLimiter()
    networks = parse_networks(app.config.get("TRUSTED_PROXIES") or "")
    app.wsgi_app = TrustedProxies(app.wsgi_app, networks)
    hsts = sends_hsts(app.config)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure and hsts:
            # Over HTTPS with a real certificate (TLS_CERT, or a trusted proxy's): browsers never
            # try plain HTTP again. Never for the self-signed one: a browser told HSTS for it
            # could no longer be told to go on to the dashboard.
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response
