"""The images page: the local store, imports from a remote with progress, aliases.

Its own path (``/image-store``): ``/images`` is the JSON API's. Changes go through that API.
"""
from flask import current_app, render_template
from flask_login import login_required

from ...config import parse_remotes
from ...exceptions import AppError
from . import bp
from .views import services


def image_rows():
    """``(images, error message or None)``: the page still renders when Incus is down."""
    from flask_babel import gettext

    try:
        return services().images.list_all(), None
    except AppError as exc:
        return [], exc.to_dict(translate=gettext)["message"]


@bp.get("/image-store")
@login_required
def images_page():
    images, error = image_rows()
    remotes = parse_remotes(current_app.config.get("IMAGE_REMOTES", ""))
    return render_template("images.html", images=images, error=error, remotes=remotes)


@bp.get("/image-store/rows")
@login_required
def image_list():
    images, error = image_rows()
    return render_template("_image_rows.html", images=images, error=error)
