"""Serves the app: ``python3 app.py``. Configuration comes from the environment (see README).

gunicorn's worker builds the app (``incus_api.create_app``); this process, its master, reads only
the settings (``incus_api.serving``). Imported as a module, it builds ``app`` for a WSGI server.
"""
from incus_api import create_app


def start_background_work(app):
    """Put the NAT rules and the traffic counters back into the kernel now (after a reboot it has
    none), then run the periodic jobs (NAT sync, traffic sampling) in the one scheduler thread."""
    from incus_api.exceptions import AppError
    from incus_api.scheduler import Scheduler

    nat_sync = app.extensions["incus_api"].services.nat_sync
    try:
        nat_sync.sync()
    except AppError as exc:
        app.logger.warning("NAT sync at start-up failed: %s (run: python3 -m incus_api nat sync)", exc.message)
    traffic = app.extensions["incus_api"].services.traffic
    if app.config["TRAFFIC_INTERVAL"] > 0:
        try:  # the counters back in the kernel now, not one interval later
            traffic.sample()
        except Exception as exc:  # noqa: BLE001 - the scheduler tries again
            app.logger.warning("traffic sampling at start-up failed: %s", getattr(exc, "message", exc))
    scheduler = Scheduler()
    if app.config["NAT_SYNC_INTERVAL"] > 0:
        scheduler.every(app.config["NAT_SYNC_INTERVAL"], "nat-sync", nat_sync.sync)
    if app.config["TRAFFIC_INTERVAL"] > 0:
        scheduler.every(app.config["TRAFFIC_INTERVAL"], "traffic", traffic.sample)
    scheduler.start()
    return scheduler


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
    from incus_api.config import load_config
    from incus_api.web.serving import serve

    limit_malloc_arenas()
    serve(load_config(), create_app, on_worker_start=start_background_work)
else:
    app = create_app()
