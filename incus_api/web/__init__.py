"""The web side: the JSON API (``api``), the admin dashboard (``dashboard``), the API docs
(``apidocs``), who may call (``auth``), the security headers and limits (``security``), errors as
answers (``errors``), the request audit (``request_audit``) and the server (``serving``).

Each route parses, calls a service and shapes the answer; nothing here reaches an adapter or the
store. This package's ``__init__`` imports nothing: the server's master imports ``serving``
without Flask."""
