"""The backups page and the Settings page's backups card (issue 21).

Its own path (``/backup-files``): ``/backups`` is the JSON API's. The page's rows come from that
API (``static/js/backups.js`` polls ``GET /backups`` while one is being written); backing up,
restoring and deleting go through it too.
"""
from urllib.parse import urlsplit, urlunsplit

from flask import current_app, render_template, request
from flask_login import login_required

from ...exceptions import AppError
from ...parse.names import container_name
from ...service.doctor import human_bytes
from . import bp
from .views import services


def container_names():
    """The containers the "Back up now" select offers (none while Incus is down: the field then
    takes a name)."""
    try:
        rows, live = services().info.list_all()
    except AppError:
        return []
    return [row["name"] for row in rows] if live else []


def public_endpoint(url):
    """``S3_ENDPOINT`` without any ``user:password@`` in it: shown, never a secret."""
    parts = urlsplit(url or "")
    if not parts.netloc:
        return url or ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def backup_settings():
    """What the Settings page's backups card shows: the schedule (``schedule_state``), the disk,
    the S3 store without its keys; None without a backup service."""
    backups = services().backups
    if backups is None:
        return None
    state = dict(backups.schedule_state())
    try:
        disk = backups.disk()
    except OSError:
        disk = None
    config = current_app.config
    state.update(
        next=(state["next"] or "")[:16].replace("T", " ") or None,
        disk=disk and dict(disk, used_percent=round(disk["used_share"] * 100), free=human_bytes(disk["free_bytes"]),
                           backups=human_bytes(disk["backups_bytes"])),
        s3_endpoint=public_endpoint(config.get("S3_ENDPOINT")) if state["s3"] else None,
        s3_bucket=config.get("S3_BUCKET") if state["s3"] else None,
        s3_prefix=config.get("S3_PREFIX") if state["s3"] else None,
    )
    return state


@bp.get("/backup-files")
@login_required
def backups_page():
    name = request.args.get("name", "").strip()
    name = container_name(name) if name else ""
    return render_template("backups.html", name=name, names=container_names(), state=backup_settings())
