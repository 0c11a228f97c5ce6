"""Builds the app and serves it. Configuration comes from the environment (see README)."""
import threading

from incus_api import create_app

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


if __name__ == "__main__":
    from waitress import serve

    keep_nat_rules_in_sync()
    serve(app, host=app.config["HOST"], port=app.config["PORT"], threads=16)
