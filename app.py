"""Serves the app: ``python3 app.py``. Configuration comes from the environment (see README).

gunicorn's worker builds the app (``incus_api.create_app``); this process, its master, reads only
the settings (``incus_api.web.serving``); the worker starts the background work
(``incus_api.scheduler``). Imported as a module, it builds ``app`` for a WSGI server.
"""
from incus_api import create_app

if __name__ == "__main__":
    from incus_api.config import load_config
    from incus_api.scheduler import start_background_work
    from incus_api.web.serving import serve

    serve(load_config(), create_app, on_worker_start=start_background_work)
else:
    app = create_app()
