"""How app.py serves the app: gunicorn, run from Python (a function, so tests start the same server).

One worker process with ``THREADS`` threads (gthread): each thread serves one request at a time,
or one open browser console for as long as it is open (its WebSocket; ``service.console`` lets
at most ``MAX_SESSIONS`` be open, so the dashboard and the API always keep threads). One process,
because the console's tickets and sessions, the login limit and the scheduler live in memory.

What the server does besides (it did the same under waitress before):

- **Bind**: ``HOST``:``PORT`` from the config.
- **Body limit**: ``BodyLimit`` answers 413 to a body announced larger than the app's
  ``MAX_CONTENT_LENGTH`` (1 MiB) before the app reads any of it; a chunked body is cut by
  werkzeug at the same limit. gunicorn's own limits on the request line (4094 bytes), the number
  of headers (100) and a header's size (8190 bytes) stay at their defaults.
- **Proxies**: gunicorn trusts no proxy (``forwarded_allow_ips`` empty, no
  ``secure_scheme_headers``) and passes every ``X-Forwarded-*`` header on; the app's own
  middleware (``security.TrustedProxies``) applies them for ``TRUSTED_PROXIES`` and drops them for
  everyone else.
- **Background work** (the NAT sync, the scheduler) starts in the worker once it is forked
  (``post_fork``), never in the master: threads do not survive a fork. The master closes its
  SQLite connection before forking (the worker opens its own).
- **Stop** (SIGTERM, as systemd sends it): open consoles end within a second (their processes
  in the containers are killed), then the worker finishes within ``GRACEFUL_SECONDS``.
"""
import signal

THREADS = 32
GRACEFUL_SECONDS = 10
KEEPALIVE_SECONDS = 5


class BodyLimit:
    """WSGI middleware: 413 for a ``Content-Length`` over ``limit``, before the app runs."""

    def __init__(self, app, limit):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        if self.limit and length.isdigit() and int(length) > self.limit:
            body = b'{"status": "error", "message": "Request too large"}'
            start_response("413 Request Entity Too Large", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")])
            return [body]
        return self.app(environ, start_response)


def bind_address(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_options(app, on_worker_start=None):
    """gunicorn's settings for ``app`` (see the module's docstring)."""
    consoles = app.extensions["incus_api"].services.console

    def post_fork(server, worker):
        if on_worker_start is not None:
            on_worker_start()

    def post_worker_init(worker):
        # gunicorn's SIGTERM handler only stops accepting; open consoles would hold the worker
        # for the whole graceful timeout. They end themselves once told to.
        previous = signal.getsignal(signal.SIGTERM)

        def stop(signum, frame):
            consoles.stop()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, stop)

    def worker_int(worker):  # SIGINT / SIGQUIT: the worker leaves at once
        consoles.end_all()

    def worker_exit(server, worker):
        consoles.end_all()

    return {
        "bind": [bind_address(app.config["HOST"], app.config["PORT"])],
        "workers": 1,
        "worker_class": "gthread",
        "threads": THREADS,
        "keepalive": KEEPALIVE_SECONDS,
        "graceful_timeout": GRACEFUL_SECONDS,
        "timeout": 120,
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "control_socket_disable": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": str(app.config.get("LOG_LEVEL", "INFO")).lower(),
        "proc_name": "incus-api-web",
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "worker_int": worker_int,
        "worker_exit": worker_exit,
    }


def build_server(app, on_worker_start=None, **overrides):
    """A gunicorn application serving ``app`` (``.run()`` serves until stopped)."""
    from gunicorn.app.base import BaseApplication

    options = {**gunicorn_options(app, on_worker_start), **overrides}
    wsgi = BodyLimit(app, app.config["MAX_CONTENT_LENGTH"])

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return wsgi

    return Server()


def serve(app, on_worker_start=None):
    """Serve ``app`` until SIGTERM/SIGINT; ``on_worker_start`` runs in the worker once forked."""
    app.extensions["incus_api"].db.close()  # the worker opens its own connection
    build_server(app, on_worker_start).run()
