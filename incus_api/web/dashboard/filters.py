"""Template filters and labels of the dashboard."""
import re
from datetime import datetime, timezone

from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l

from ...service.public_address import host_port
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


@bp.app_template_filter("audit_class")
def audit_class(entry):
    """An audit entry's badge: by its result first, since an exec whose command exits non-zero
    answers 200 with ``status: error`` and a system event has no HTTP status at all (0)."""
    if entry["result"] == "open":  # a console session still running
        return "warn"
    if entry["status_code"] >= 400 or entry["result"] not in ("success", "closed"):
        return "bad"
    return "ok"


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


@bp.app_template_filter("traffic")
def traffic_size(value):
    """Bytes of traffic in decimal units, the units quotas are sold in: ``1.5 GB``."""
    if value is None or value == "":
        return "—"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(amount) < 1000 or unit == "PB":
            break
        amount /= 1000
    if unit == "B":
        return f"{int(amount)} B"
    return f"{format_decimal(amount, format='#,##0.##')} {unit}"


@bp.app_template_filter("seconds")
def seconds(nanoseconds):
    if nanoseconds is None:
        return "—"
    return f"{format_decimal(nanoseconds / 1e9, format='#,##0.00')} s"


@bp.app_template_filter("host_port")
def host_port_filter(host, port):
    """``203.0.113.5:20000`` (``[2001:db8::1]:20000`` for IPv6): what a customer connects to."""
    return host_port(host, port)


SIZE_TEXT = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,6}))?\s*([kKMGTPE]i?B|B)?", re.ASCII)
SIZE_FACTORS = {None: 1, "B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
                "PB": 1000**5, "EB": 1000**6, "KiB": 1024, "kiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
                "TiB": 1024**4, "PiB": 1024**5, "EiB": 1024**6}


@bp.app_template_filter("size_bytes")
def size_bytes(text):
    """Bytes of an Incus size (``512MiB``, ``1GB``); ``None`` for anything else (``50%``)."""
    match = SIZE_TEXT.fullmatch(str(text or "").strip())
    if not match or match.group(3) not in SIZE_FACTORS:
        return None
    whole, fraction, unit = match.groups()
    return int((int(whole) + (int(fraction) / 10 ** len(fraction) if fraction else 0)) * SIZE_FACTORS[unit])


@bp.app_template_filter("percent")
def percent(used, limit):
    """``used`` of ``limit`` in whole percent for a meter (0-100), ``None`` when either is unknown."""
    if used is None or not limit:
        return None
    return max(0, min(100, round(used * 100 / limit)))
