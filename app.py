"""Serves the app: ``python3 app.py``. Configuration comes from the environment (see README).

This process holds the front (the network side: TLS, whole requests, slow clients) and gunicorn's
master, and reads only the settings (``incus_api.web.serving``); gunicorn's worker builds the app
(``incus_api.create_app``) and starts the background work (``incus_api.scheduler``). Imported as a
module, it builds ``app`` for a WSGI server.
"""
import sys

from incus_api import create_app

if __name__ == "__main__":
    from incus_api.config import SettingError, load_config
    from incus_api.scheduler import start_background_work
    from incus_api.web.serving import serve

    try:
        serve(load_config(), create_app, on_worker_start=start_background_work)
    except SettingError as exc:
        sys.exit(f"incus-api-web: not started: {exc}")
    except OSError as exc:  # the port is taken, the certificate cannot be read
        sys.exit(f"incus-api-web: not started: {exc}")
else:
    app = create_app()
