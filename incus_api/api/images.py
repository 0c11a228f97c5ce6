"""Image routes: the local store, imports from a remote (with progress), aliases."""
from flask import jsonify
from flask_babel import gettext as _

from .. import validation
from . import bp
from .routes import form, services, success


@bp.get("/images")
def list_images():
    return jsonify({"status": "success", "images": services().images.list_all()})


@bp.delete("/images/<fingerprint>")
def delete_image(fingerprint):
    """Refused (409) while a container was made from the image."""
    image = services().images.delete(validation.fingerprint(fingerprint))
    return success(_("Image %(fingerprint)s deleted", fingerprint=image["fingerprint"][:12]), image=image)


@bp.post("/images/import")
def import_image():
    """Start pulling ``image`` (remote:alias) into the local store under ``alias`` (optional).

    Answers 200 when it finished within a few seconds, else 202 with the ``operation`` to poll at
    ``GET /images/operations/<id>``.
    """
    data = form()
    image = validation.image_ref(validation.required(data, "image"))
    alias = data.get("alias")
    alias = validation.image_alias(alias) if alias and alias.strip() else None
    return import_answer(services().images.start_import(image, alias), started=True)


@bp.get("/images/operations/<operation_id>")
def import_status(operation_id):
    job = services().images.import_state(validation.operation_id(operation_id))
    return import_answer(job)


def import_answer(job, started=False):
    fields = {
        "operation": job["id"], "state": job["state"], "progress": job["progress"],
        "image": job["image"], "alias": job["alias"], "fingerprint": job["fingerprint"],
    }
    if job["state"] == "done":
        return success(_("Image %(image)s imported as %(alias)s", image=job["image"], alias=job["alias"]), **fields)
    if job["state"] == "failed":
        status = 502 if started else 200
        return jsonify({
            "status": "error",
            "message": _("Importing %(image)s failed: %(reason)s", image=job["image"], reason=job["error"]),
            **fields,
        }), status
    return success(_("Importing %(image)s…", image=job["image"]), **fields), 202 if started else 200


@bp.post("/images/<fingerprint>/alias")
def add_image_alias(fingerprint):
    fingerprint = validation.fingerprint(fingerprint)
    data = form()
    alias = validation.image_alias(validation.required(data, "alias"))
    full = services().images.add_alias(fingerprint, alias, description=str(data.get("description") or "")[:255])
    return success(_("Alias %(alias)s now names image %(fingerprint)s", alias=alias, fingerprint=full[:12]),
                   alias=alias, fingerprint=full)


@bp.delete("/images/alias/<path:alias>")
def delete_image_alias(alias):
    alias = validation.image_alias(alias)
    target = services().images.remove_alias(alias)
    return success(_("Alias %(alias)s removed", alias=alias), alias=alias, fingerprint=target)
