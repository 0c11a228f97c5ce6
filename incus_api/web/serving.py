"""How app.py serves the app: a front on the network, gunicorn behind it (a function, so tests
start the same server).

- **The front** (``front.Front``, an asyncio loop in a process app.py forks first) listens on
  ``HOST``:``PORT``, ends TLS (``service.tls``: ``TLS_CERT``/``TLS_KEY``, or a self-signed
  certificate made at start when missing; ``TLS=off``: plain HTTP), reads each request whole
  within 30 s and only then passes it on, holds the answer for the client, and passes a console's
  WebSocket through. Slow or stalled clients cost it a few kilobytes, never a thread.
- **One gunicorn worker process** with ``THREADS`` threads (gthread) behind it, on a unix socket in
  a private folder: each thread serves one request at a time, or one open browser console for as
  long as it is open (``service.console`` lets at most ``MAX_SESSIONS`` be open, so the dashboard
  and the API always keep threads). One process, because the console's tickets and sessions, the
  login limit and the scheduler live in memory.

What the server does besides:

- **Body limit**: the front answers 413 to a body announced (or sent) larger than the app's
  ``MAX_REQUEST_BYTES`` before reading it; heads are limited to 16 KiB.
- **Proxies**: the front passes every ``X-Forwarded-*`` header on, and the client's own address in
  a header of its own (``FrontHeaders`` makes it ``REMOTE_ADDR``); the app's middleware
  (``security.TrustedProxies``) applies ``X-Forwarded-*`` for ``TRUSTED_PROXIES`` and drops them
  for everyone else. gunicorn trusts no proxy itself.
- **The app is built in the worker** (``WorkerApp``), never in the first process, which holds only
  the settings, the front and gunicorn's master: no second copy of the app, no SQLite connection or
  thread across a fork. Background work (the NAT sync, traffic sampling, the scheduler) starts
  there once the app is built (``post_worker_init``).
- **Stop** (SIGTERM, as systemd sends it): open consoles end within a second (their processes
  in the containers are killed), then the worker finishes within ``GRACEFUL_SECONDS``.
"""
import contextlib
import os
import resource
import shutil
import signal
import tempfile

from ..config import DEFAULT_INSTANCE_PATH, MAX_REQUEST_BYTES
from ..service.tls import fingerprint_lines, tls_files
from .front import PEER_HEADER, SCHEME_HEADER, Front, listening_socket, tls_context

THREADS = 32
GRACEFUL_SECONDS = 10
KEEPALIVE_SECONDS = 5
PEER_KEY = "HTTP_" + PEER_HEADER.decode().upper().replace("-", "_")
SCHEME_KEY = "HTTP_" + SCHEME_HEADER.decode().upper().replace("-", "_")


class FrontHeaders:
    """WSGI middleware in the worker: the client's address and scheme as the front saw them
    (``REMOTE_ADDR``, ``wsgi.url_scheme``). Only the front reaches the worker's socket, and it sets
    both headers on every request."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ["REMOTE_ADDR"] = environ.pop(PEER_KEY, "")
        environ["wsgi.url_scheme"] = "https" if environ.pop(SCHEME_KEY, "") == "https" else "http"
        return self.app(environ, start_response)


def gunicorn_options(settings, worker, backend_path, on_worker_start=None):
    """gunicorn's settings (see the module's docstring). ``settings``: the config (``LOG_LEVEL``);
    ``worker``: the ``WorkerApp`` whose app the hooks act on; ``backend_path``: the unix socket
    the worker listens on."""

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
        "bind": [f"unix:{backend_path}"],
        "workers": 1,
        "worker_class": "gthread",
        "threads": THREADS,
        "keepalive": KEEPALIVE_SECONDS,
        "graceful_timeout": GRACEFUL_SECONDS,
        "timeout": 120,
        "umask": 0o077,
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
        return FrontHeaders(self.app)

    def consoles(self):
        return self.app.extensions["incus_api"].services.console

    def end_consoles(self):
        if self.app is not None:
            self.consoles().end_all()


def build_server(settings, create_app, backend_path, on_worker_start=None, **overrides):
    """A gunicorn application whose worker serves ``create_app()`` on the unix socket
    ``backend_path`` (``.run()`` serves until stopped); ``on_worker_start(app)`` runs in the worker
    once the app is built."""
    from gunicorn.app.base import BaseApplication

    worker = WorkerApp(create_app)
    options = {**gunicorn_options(settings, worker, backend_path, on_worker_start), **overrides}

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


def descriptor_budget():
    """Raise this process's descriptor limit to its hard limit; what the front may hold (two
    descriptors a connection, some kept for everything else)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(64, (min(soft, 65536) - 128) // 2)


def serve(settings, create_app, on_worker_start=None, instance_path=DEFAULT_INSTANCE_PATH):
    """Serve until SIGTERM/SIGINT (see the module's docstring)."""
    limit_malloc_arenas()
    files = tls_files(settings, instance_path)
    for line in fingerprint_lines(files):
        print(line, flush=True)
    listener = listening_socket(settings["HOST"], settings["PORT"])
    folder = tempfile.mkdtemp(prefix="incus-api-web-", dir="/run" if os.access("/run", os.W_OK) else None)
    backend_path = os.path.join(folder, "worker.sock")
    front = Front(listener, backend_path, MAX_REQUEST_BYTES,
                  ssl_context=tls_context(files.cert, files.key) if files.enabled else None,
                  max_connections=descriptor_budget())
    front_pid = front.spawn()  # now, while this process has no other thread (see Front.spawn)
    listener.close()  # the front's alone
    try:
        build_server(settings, create_app, backend_path, on_worker_start).run()
    finally:
        with contextlib.suppress(OSError):
            os.kill(front_pid, signal.SIGTERM)
            os.waitpid(front_pid, 0)
        shutil.rmtree(folder, ignore_errors=True)
