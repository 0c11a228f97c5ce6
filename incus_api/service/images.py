"""Image use cases: list the local store, delete (not while a container uses it), import from a
simplestreams remote with progress, add and remove aliases."""
import logging
import re
import threading

from ..config import parse_remotes
from ..exceptions import BadInput, Conflict, IncusError, NotFound
from ..i18n import N_

log = logging.getLogger(__name__)

FINGERPRINT = re.compile(r"[0-9a-f]{12,64}")

# How long ``start_import`` waits before answering "running": a remote that cannot be reached
# fails within it, so the caller gets the error at once instead of from the first poll.
QUICK_WAIT = 3
# Finished imports remembered for the dashboard's polling (Incus forgets an operation seconds
# after it ends).
MAX_REMEMBERED = 100
FOLLOW_CHUNK = 60


def shape_image(image, used_by=()):
    properties = image.get("properties") or {}
    return {
        "fingerprint": image.get("fingerprint", ""),
        "aliases": sorted(a.get("name") for a in image.get("aliases") or [] if a.get("name")),
        "description": properties.get("description", ""),
        "os": properties.get("os", ""),
        "release": properties.get("release", ""),
        "size": image.get("size"),
        "architecture": image.get("architecture", ""),
        "type": image.get("type", "container"),
        "created_at": image.get("created_at"),
        "uploaded_at": image.get("uploaded_at"),
        "used_by": sorted(used_by),
    }


def _progress(metadata):
    """The operation's progress text (``download_progress`` for a pull), or None."""
    for key, value in (metadata or {}).items():
        if "progress" in key and isinstance(value, str):
            return value
    return None


def image_source(image, remotes):
    """The Incus ``source`` for an image reference: local alias, fingerprint, or ``remote:alias``."""
    remote, sep, ref = image.partition(":")
    if not sep:
        remote, ref = "local", image
    if remote == "local":
        if FINGERPRINT.fullmatch(ref):
            return {"type": "image", "fingerprint": ref}
        return {"type": "image", "alias": ref}
    if remote not in remotes:
        raise BadInput(
            N_("Unknown image remote '{remote}' (known: {known})"),
            remote=remote, known=", ".join(sorted(remotes)) or "-",
        )
    return {
        "type": "image",
        "mode": "pull",
        "server": remotes[remote],
        "protocol": "simplestreams",
        "alias": ref,
    }


class ImageService:
    def __init__(self, incus, config):
        self.incus = incus
        self.remotes = parse_remotes(config.get("IMAGE_REMOTES", ""))
        self._imports = {}  # operation id -> {"image", "aliases", "state", ...}
        self._lock = threading.Lock()

    def checked_source(self, image):
        """The Incus ``source`` for ``image``; 400 when a local alias is not in the image store."""
        source = image_source(image, self.remotes)
        if "alias" in source and "server" not in source:
            try:
                self.incus.image_alias(source["alias"])
            except NotFound:
                raise BadInput(
                    N_("Image '{image}' is not in the local image store (see the image list, or use remote:alias)"),
                    image=image,
                ) from None
        return source

    # -- list -------------------------------------------------------------------------------

    def list_all(self):
        """Every local image, newest first, with the containers made from it."""
        users = self._users()
        images = [shape_image(image, users.get(image.get("fingerprint"), ())) for image in self.incus.images() or []]
        images.sort(key=lambda i: (i["aliases"][:1] or ["~"], i["uploaded_at"] or ""))
        return images

    def choices(self):
        """The local images a create form offers, by name: one request, without the list of
        containers made from each (which ``list_all`` reads)."""
        images = [shape_image(image) for image in self.incus.images() or []]
        for image in images:
            image["ref"] = image["aliases"][0] if image["aliases"] else image["fingerprint"][:12]
            image["fingerprint"] = image["fingerprint"][:12]
        images.sort(key=lambda i: i["ref"])
        return images

    def _users(self):
        """fingerprint -> names of the instances whose base image it is."""
        users = {}
        for instance in self.incus.instances() or []:
            base = (instance.get("config") or {}).get("volatile.base_image")
            if base:
                users.setdefault(base, []).append(instance["name"])
        return users

    def resolve(self, fingerprint):
        """A full fingerprint from a unique prefix (at least 12 characters)."""
        matches = [i for i in self.incus.images() or [] if i.get("fingerprint", "").startswith(fingerprint)]
        if not matches:
            raise NotFound(N_("Image {fingerprint} does not exist"), fingerprint=fingerprint)
        if len(matches) > 1:
            raise BadInput(N_("Several images start with {fingerprint}: give more of the fingerprint"), fingerprint=fingerprint)
        return matches[0]

    # -- delete -----------------------------------------------------------------------------

    def delete(self, fingerprint):
        image = self.resolve(fingerprint)
        full = image["fingerprint"]
        used_by = sorted(self._users().get(full, ()))
        if used_by:
            raise Conflict(
                N_("Image {fingerprint} is used by {count} container(s): {names}. Delete them first"),
                data={"used_by": used_by},
                fingerprint=full[:12], count=len(used_by), names=", ".join(used_by),
            )
        self.incus.delete_image(full)
        return shape_image(image)

    # -- aliases ----------------------------------------------------------------------------

    def add_alias(self, fingerprint, alias, description=""):
        image = self.resolve(fingerprint)
        self._alias_free(alias)
        try:
            self.incus.create_image_alias(alias, image["fingerprint"], description)
        except IncusError as exc:
            if "already exists" in exc.reason:
                raise Conflict(N_("The image alias '{alias}' already exists"), alias=alias) from exc
            raise
        return image["fingerprint"]

    def remove_alias(self, alias):
        try:
            target = self.incus.image_alias(alias).get("target", "")
        except NotFound:
            raise NotFound(N_("The image alias '{alias}' does not exist"), alias=alias) from None
        self.incus.delete_image_alias(alias)
        return target

    def _alias_free(self, alias):
        try:
            target = self.incus.image_alias(alias).get("target", "")
        except NotFound:
            return
        raise Conflict(
            N_("The image alias '{alias}' already exists (image {fingerprint})"),
            alias=alias, fingerprint=target[:12],
        )

    # -- import -----------------------------------------------------------------------------

    def start_import(self, image, alias=None):
        """Start pulling ``remote:alias`` into the local store under ``alias`` (default: the remote's
        alias). Returns the import's state: finished when it took less than ``QUICK_WAIT`` s."""
        if ":" not in image or image.startswith("local:"):
            raise BadInput(N_("Give the image to import as remote:alias, e.g. images:debian/12"))
        source = image_source(image, self.remotes)
        alias = alias or source["alias"]
        self._alias_free(alias)
        operation_id = self.incus.pull_image(source, aliases=[alias])
        job = {"id": operation_id, "image": image, "alias": alias, "state": "running",
               "progress": None, "fingerprint": None, "error": None}
        with self._lock:
            self._imports[operation_id] = job
            for old in list(self._imports)[:-MAX_REMEMBERED]:
                del self._imports[old]
        log.info("image import %s started: %s as %s", operation_id, image, alias)
        self._settle(job, self.incus.wait_operation(operation_id, QUICK_WAIT))
        if job["state"] == "running":
            threading.Thread(target=self._follow, args=(job,), daemon=True, name=f"import-{operation_id[:8]}").start()
        return dict(job)

    def import_state(self, operation_id):
        """The state of an import started here: running (with progress), done or failed."""
        with self._lock:
            job = self._imports.get(operation_id)
        if job is None:
            raise NotFound(N_("No image import {id} is known (the service may have restarted)"), id=operation_id)
        if job["state"] == "running":
            try:
                self._settle(job, self.incus.operation(operation_id))
            except NotFound:
                pass  # just ended: the follower thread records the outcome
        return dict(job)

    def _follow(self, job):
        """Wait for the operation in a thread, so its outcome is kept after Incus forgets it."""
        try:
            while job["state"] == "running":
                self._settle(job, self.incus.wait_operation(job["id"], FOLLOW_CHUNK))
        except NotFound:
            self._finish_unknown(job)
        except Exception as exc:  # noqa: BLE001  (a thread must record, not raise)
            log.warning("following image import %s failed: %s", job["id"], exc)
            job.update(state="failed", error=str(exc))

    def _finish_unknown(self, job):
        """Incus forgot the operation before we saw its end: the alias tells how it went."""
        try:
            target = self.incus.image_alias(job["alias"]).get("target")
            job.update(state="done", fingerprint=target)
        except NotFound:
            job.update(state="failed", error="the operation ended without the image")

    @staticmethod
    def _settle(job, operation):
        status = operation.get("status")
        metadata = operation.get("metadata") or {}
        if status == "Success":
            job.update(state="done", progress=None, fingerprint=metadata.get("fingerprint"))
            log.info("image import %s done: %s", job["id"], metadata.get("fingerprint"))
        elif status in ("Failure", "Cancelled"):
            job.update(state="failed", progress=None, error=operation.get("err") or status)
            log.warning("image import %s failed: %s", job["id"], job["error"])
        else:
            job["progress"] = _progress(metadata) or job["progress"]
