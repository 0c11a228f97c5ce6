"""The one background thread: periodic jobs (the NAT sync, traffic sampling, the traffic history's
fold, the backup schedule) run here, one after another. The backup schedule's job only queues the
backups: the backup service's own thread writes them (minutes of I/O each, which the NAT sync and
the traffic pass must not wait behind).

A job that raises is logged and runs again at its next time; a slow job delays the others rather
than overlapping with itself. No Flask.
"""
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

BACKUP_SCHEDULE_CHECK_SECONDS = 60  # BACKUP_SCHEDULE is in minutes: looked at once a minute


@dataclass
class Job:
    name: str
    interval: float
    run: callable
    due: float = 0.0


class Scheduler:
    def __init__(self):
        self.jobs = []
        self._stop = threading.Event()
        self._thread = None

    def every(self, interval, name, run, first=None):
        """Run ``run()`` every ``interval`` seconds (the first time after ``first`` seconds, by
        default one interval)."""
        self.jobs.append(Job(name, interval, run, due=time.monotonic() + (interval if first is None else first)))

    def start(self):
        if self.jobs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self):
        while not self._stop.wait(max(0.0, min(job.due for job in self.jobs) - time.monotonic())):
            now = time.monotonic()
            for job in self.jobs:
                if job.due <= now:
                    try:
                        job.run()
                    except Exception:  # noqa: BLE001 - keep the loop alive; the next round retries
                        log.exception("background job %s failed", job.name)
                    job.due = time.monotonic() + job.interval


def start_background_work(app):
    """In the server's worker, once the app is built: the NAT rules and the traffic counters back
    into the kernel now (after a reboot it has none), then the periodic jobs (NAT sync, traffic
    sampling, the traffic history's fold) in the one scheduler thread. Returns the scheduler."""
    from .exceptions import AppError
    from .service.traffic import history

    services = app.extensions["incus_api"].services
    try:
        services.nat_sync.sync()
    except AppError as exc:
        log.warning("NAT sync at start-up failed: %s (run: python3 -m incus_api nat sync)", exc.message)
    if app.config["TRAFFIC_INTERVAL"] > 0:
        try:  # the counters back in the kernel now, not one interval later
            services.traffic.sample()
        except Exception as exc:  # noqa: BLE001 - the scheduler tries again
            log.warning("traffic sampling at start-up failed: %s", getattr(exc, "message", exc))
    try:
        services.backups.recover()  # backups cut short by the last stop: failed, their partial files gone
    except Exception as exc:  # noqa: BLE001 - the service serves anyway
        log.warning("backups: marking interrupted backups failed did not work: %s", getattr(exc, "message", exc))
    scheduler = Scheduler()
    if services.backups.schedule is not None:
        scheduler.every(BACKUP_SCHEDULE_CHECK_SECONDS, "backup-schedule", services.backups.run_schedule, first=5)
    if app.config["NAT_SYNC_INTERVAL"] > 0:
        scheduler.every(app.config["NAT_SYNC_INTERVAL"], "nat-sync", services.nat_sync.sync)
    if app.config["TRAFFIC_INTERVAL"] > 0:
        scheduler.every(app.config["TRAFFIC_INTERVAL"], "traffic", services.traffic.sample)
        scheduler.every(history.FOLD_SECONDS, "traffic-history", services.traffic.fold_history,
                        first=history.FIRST_FOLD_SECONDS)
    scheduler.start()
    return scheduler
