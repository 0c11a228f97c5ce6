"""Builds the app and serves it. Configuration comes from the environment (see README)."""
import threading

from incus_api import create_app
from incus_api.serving import waitress_options

app = create_app()


def keep_nat_rules_in_sync():
    """Put the NAT rules back into the kernel now (after a reboot it has none), then keep them in
    step with the DB in the background."""
    from incus_api.exceptions import AppError

    nat_rules = app.extensions["incus_api"].services.nat_rules
    try:
        nat_rules.sync()
    except AppError as exc:
        app.logger.warning("NAT sync at start-up failed: %s (run: python3 -m incus_api nat sync)", exc.message)
    interval = app.config["NAT_SYNC_INTERVAL"]
    if interval > 0:
        threading.Thread(target=nat_rules.run_periodic_sync, args=(interval, threading.Event()),
                         name="nat-sync", daemon=True).start()


def limit_malloc_arenas(arenas=2):
    """As MALLOC_ARENA_MAX=2: glibc gives each of the server's threads its own malloc arena, which
    keeps memory a burst of requests freed (about 18 MB more at 200 containers, see bench/)."""
    import ctypes

    m_arena_max = -8  # from glibc's malloc.h
    try:
        ctypes.CDLL("libc.so.6").mallopt(m_arena_max, arenas)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


if __name__ == "__main__":
    from waitress import serve

    limit_malloc_arenas()
    keep_nat_rules_in_sync()
    serve(app, **waitress_options(app))
