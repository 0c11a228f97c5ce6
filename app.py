"""Builds the app and serves it. Configuration comes from the environment (see README)."""
from incus_api import create_app
from incus_api.serving import serve

app = create_app()


def start_background_work():
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
    limit_malloc_arenas()
    # gunicorn (incus_api/serving.py): background work starts in its worker, once forked.
    serve(app, on_worker_start=start_background_work)
