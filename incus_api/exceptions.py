"""Domain errors. Adapters and services raise these; ``errors.py`` turns them into responses.

Each class carries the HTTP status and the JSON ``status`` value the seed's API contract uses, so
the mapping lives in one place and no view needs its own try/except.
"""


class AppError(Exception):
    http_status = 500
    json_status = "error"

    def __init__(self, template, data=None, **params):
        """``template`` is an English message marked with ``N_`` (translated when answering),
        ``params`` fill its ``{placeholders}``, ``data`` adds fields to the JSON answer."""
        self.template = template
        self.params = params
        self.data = data or {}
        super().__init__(self.message)

    @property
    def message(self):
        return self.template.format(**self.params)

    @property
    def reason(self):
        """The daemon's own words when it gave them (``reason``), else the whole message."""
        return str(self.params.get("reason", self.message))

    def to_dict(self, translate=str):
        return {
            "status": self.json_status,
            "message": translate(self.template).format(**self.params),
            **self.data,
        }


class BadInput(AppError):
    http_status = 400


class Unauthorized(AppError):
    http_status = 401


class Forbidden(AppError):
    http_status = 403


class NotFound(AppError):
    http_status = 404
    json_status = "NotFound"


class Conflict(AppError):
    http_status = 409


class Gone(AppError):
    """Something that existed and is no more: e.g. a one-time link already used or expired."""

    http_status = 410


class TooManyRequests(AppError):
    http_status = 429


class IncusError(AppError):
    """Incus refused or failed an operation; the message is the daemon's reason."""


class IncusUnavailable(AppError):
    """The Incus daemon cannot be reached (stopped, socket missing, permission denied)."""

    http_status = 503


class OperationTimeout(AppError):
    http_status = 504


class NatError(AppError):
    """The kernel refused a NAT rule change (python-iptables)."""


class OffsiteError(AppError):
    """The S3-compatible store of the backups' copies refused or failed (offsite.py): unreachable,
    credentials refused, bucket missing, no permission, an upload it did not keep whole."""

    http_status = 502
