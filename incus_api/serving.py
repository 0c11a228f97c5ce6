"""How app.py serves the app with waitress (a function so tests start the same server)."""

THREADS = 16


def waitress_options(app):
    """Keyword arguments for ``waitress.serve`` / ``waitress.create_server``.

    - ``max_request_body_size``: waitress refuses a bigger body (413) before the app reads it;
      its own default is 1 GB, the app's limit (MAX_CONTENT_LENGTH) 1 MiB.
    - ``clear_untrusted_proxy_headers=False``: waitress would otherwise drop every
      X-Forwarded-* header (it trusts no proxy by default); the app's own middleware
      (``security.TrustedProxies``) applies them for ``TRUSTED_PROXIES`` and drops them for
      everyone else.
    """
    return {
        "host": app.config["HOST"],
        "port": app.config["PORT"],
        "threads": THREADS,
        "max_request_body_size": app.config["MAX_CONTENT_LENGTH"],
        "clear_untrusted_proxy_headers": False,
    }
