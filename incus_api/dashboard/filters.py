"""Template filters and labels of the dashboard."""
from datetime import datetime, timezone

from flask_babel import format_decimal, lazy_gettext as _l

from ..service.public_address import host_port
from . import bp

STATUS_LABELS = {
    "Running": _l("Running"),
    "Stopped": _l("Stopped"),
    "Frozen": _l("Frozen"),
    "Error": _l("Error"),
    "Starting": _l("Starting"),
    "Stopping": _l("Stopping"),
}
STATUS_CLASSES = {"Running": "ok", "Stopped": "off", "Frozen": "warn", "Error": "bad"}
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


@bp.app_template_filter("status_label")
def status_label(status):
    return STATUS_LABELS.get(status, status or "?")


@bp.app_template_filter("status_class")
def status_class(status):
    return STATUS_CLASSES.get(status, "warn")


def parse_time(value):
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@bp.app_template_filter("when")
def when(value):
    """``2026-11-25 13:38 UTC`` from Incus's and SQLite's ISO timestamps."""
    parsed = parse_time(value)
    if parsed is None or parsed.year < 2000:  # Incus uses year 1 for "never"
        return "—"
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("size")
def size(value):
    """Bytes in binary units: ``1.0 MiB``."""
    if value is None or value == "":
        return "—"
    amount = float(value)
    for unit in UNITS:
        if abs(amount) < 1024 or unit == UNITS[-1]:
            break
        amount /= 1024
    if unit == "B":
        return f"{int(amount)} B"
    return f"{format_decimal(amount, format='#,##0.0')} {unit}"


@bp.app_template_filter("seconds")
def seconds(nanoseconds):
    if nanoseconds is None:
        return "—"
    return f"{format_decimal(nanoseconds / 1e9, format='#,##0.00')} s"


@bp.app_template_filter("host_port")
def host_port_filter(host, port):
    """``203.0.113.5:20000`` (``[2001:db8::1]:20000`` for IPv6): what a customer connects to."""
    return host_port(host, port)
