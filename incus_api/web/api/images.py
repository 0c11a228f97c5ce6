"""Image routes: the local store, imports from a remote (with progress), aliases."""
from flask import jsonify
from flask_babel import gettext as _

from ...parse import names
from ...schemas import Param, route
from ...schemas.params import ALIAS_SCHEMA, FINGERPRINT, IMAGE_SCHEMA
from . import bp, services, success

IMPORT_ANSWER = {"operation": {"type": "string"}, "state": {"type": "string"}, "progress": {},
                 "image": {"type": "string"}, "alias": {"type": ["string", "null"]},
                 "fingerprint": {"type": ["string", "null"]}}


@route(bp, "GET", "/images", "The local images",
       answer={"images": {"type": "array", "items": {"type": "object"}}}, errors=(401, 503))
def list_images():
    images = services().images.list_all()
    return success(_("%(count)d image(s)", count=len(images)), images=images)


@route(bp, "DELETE", "/images/<fingerprint>", "Delete an image (refused while a container uses it)",
       [FINGERPRINT], errors=(400, 401, 404, 409, 500, 503))
def delete_image(fingerprint):
    image = services().images.delete(fingerprint)
    return success(_("Image %(fingerprint)s deleted", fingerprint=image["fingerprint"][:12]), image=image)


@route(bp, "POST", "/images/import", "Import an image from a remote (remote:alias)", [
    Param("image", names.image_ref, IMAGE_SCHEMA, required=True),
    Param("alias", names.image_alias, ALIAS_SCHEMA, description="Local alias to give it (optional)."),
], answer=IMPORT_ANSWER, errors=(400, 401, 409, 413, 502, 503),
    extra_answers={202: ("Started: poll /images/operations/{operation}", IMPORT_ANSWER)},
    description="200 when it finished within a few seconds, else 202 with the `operation` to poll.")
def import_image(image, alias):
    return import_answer(services().images.start_import(image, alias), started=True)


@route(bp, "GET", "/images/operations/<operation_id>", "Progress of an image import", [
    Param("operation_id", names.operation_id, {"type": "string"}, where="path", required=True),
], answer=IMPORT_ANSWER, errors=(400, 401, 404, 503))
def import_status(operation_id):
    return import_answer(services().images.import_state(operation_id))


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


@route(bp, "POST", "/images/<fingerprint>/alias", "Add an alias to an image", [
    FINGERPRINT,
    Param("alias", names.image_alias, ALIAS_SCHEMA, required=True),
    Param("description", names.image_description, {"type": "string", "maxLength": names.IMAGE_DESCRIPTION_MAX},
          default=""),
], answer={"alias": {"type": "string"}, "fingerprint": {"type": "string"}}, errors=(400, 401, 404, 409, 413, 500, 503))
def add_image_alias(fingerprint, alias, description):
    full = services().images.add_alias(fingerprint, alias, description=description)
    return success(_("Alias %(alias)s now names image %(fingerprint)s", alias=alias, fingerprint=full[:12]),
                   alias=alias, fingerprint=full)


@route(bp, "DELETE", "/images/alias/<path:alias>", "Remove an image alias", [
    Param("alias", names.image_alias, ALIAS_SCHEMA, where="path", required=True),
], answer={"alias": {"type": "string"}, "fingerprint": {"type": "string"}}, errors=(400, 401, 404, 500, 503))
def delete_image_alias(alias):
    target = services().images.remove_alias(alias)
    return success(_("Alias %(alias)s removed", alias=alias), alias=alias, fingerprint=target)
