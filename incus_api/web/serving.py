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
- **The app is built in the worker** (``WorkerApp``), never in the master, which reads only the
  settings: no second copy of the app, no SQLite connection or thread across a fork. Background
  work (the NAT sync, traffic sampling, the scheduler) starts there once the app is built
  (``post_worker_init``).
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


def gunicorn_options(settings, worker, on_worker_start=None):
    """gunicorn's settings (see the module's docstring). ``settings``: the config (``HOST``,
    ``PORT``, ``LOG_LEVEL``); ``worker``: the ``WorkerApp`` whose app the hooks act on."""

    def post_worker_init(_worker):
        # The app is loaded now (in this process): its background work, then the SIGTERM hook.
        # gunicorn's SIGTERM handler only stops accepting; open consoles would hold the worker
        # for the whole graceful timeout. They end themselves once told to.
        if on_worker_start is not None:
            on_worker_start(worker.app)
        consoles = worker.consoles()
        previous = signal.getsignal(signal.SIGTERM)

        def stop(signum, frame):
            consoles.stop()
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, stop)

    def worker_int(_worker):  # SIGINT / SIGQUIT: the worker leaves at once
        worker.end_consoles()

    def worker_exit(server, _worker):
        worker.end_consoles()

    return {
        "bind": [bind_address(settings["HOST"], settings["PORT"])],
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
        "loglevel": str(settings.get("LOG_LEVEL", "INFO")).lower(),
        "proc_name": "incus-api-web",
        "post_worker_init": post_worker_init,
        "worker_int": worker_int,
        "worker_exit": worker_exit,
    }


class WorkerApp:
    """The app as the worker builds it: ``create_app`` runs in the worker, after the fork, so the
    master holds only gunicorn and the settings (a master holding the app too would keep a second
    copy of it, which the worker's use turns into memory of its own: about 25 MB)."""

    def __init__(self, create_app):
        self.create_app = create_app
        self.app = None

    def wsgi(self):
        self.app = self.create_app()
        return BodyLimit(self.app, self.app.config["MAX_CONTENT_LENGTH"])

    def consoles(self):
        return self.app.extensions["incus_api"].services.console

    def end_consoles(self):
        if self.app is not None:
            self.consoles().end_all()


def build_server(settings, create_app, on_worker_start=None, **overrides):
    """A gunicorn application whose worker serves ``create_app()`` (``.run()`` serves until
    stopped); ``on_worker_start(app)`` runs in the worker once the app is built."""
    from gunicorn.app.base import BaseApplication

    worker = WorkerApp(create_app)
    options = {**gunicorn_options(settings, worker, on_worker_start), **overrides}

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return worker.wsgi()

    return Server()


def limit_malloc_arenas(arenas=2):
    """As MALLOC_ARENA_MAX=2: glibc gives each of the server's threads its own malloc arena, which
    keeps memory a burst of requests freed (about 18 MB more at 200 containers, see bench/)."""
    import ctypes

    m_arena_max = -8  # from glibc's malloc.h
    try:
        ctypes.CDLL("libc.so.6").mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def serve(settings, create_app, on_worker_start=None):
    """Serve until SIGTERM/SIGINT (see ``build_server``)."""
    limit_malloc_arenas()
    build_server(settings, create_app, on_worker_start).run()
