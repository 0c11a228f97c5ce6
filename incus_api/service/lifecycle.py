"""What a billing system does to a sold container besides create and delete: suspend (stopped and
refused everything that would run it or change it), unsuspend, and reinstall from an image.

The suspended mark lives in the database (table ``suspended``): the service's truth, kept across
restarts. It records the Incus ``volatile.uuid`` of the container that was suspended, so a mark
left by a container that was deleted behind the service's back never applies to a new container
of the same name.
"""
import contextlib
import logging
import threading

from ..exceptions import Conflict, IncusError, NotFound
from ..i18n import N_
from ..store import suspensions as marks

log = logging.getLogger(__name__)


def instance_uuid(instance):
    return (instance.get("config") or {}).get("volatile.uuid")


class Suspensions:
    """The suspended marks and the guard that the container use cases call (409 while marked)."""

    def __init__(self, db, incus):
        self.db = db
        self.incus = incus

    def _row(self, name):
        return marks.get(self.db, name)

    def _current(self, name, row, instance):
        """Whether ``row`` marks this very instance; a stale mark (another instance now has the
        name) is dropped."""
        marked = row["instance_uuid"]
        if marked is None or instance is None or instance_uuid(instance) in (None, marked):
            return True
        log.info("dropping the suspended mark of %s: it was made for another instance of that name", name)
        self.clear(name)
        return False

    def is_suspended(self, name, instance=None):
        """Whether ``name`` is suspended; ``instance`` (its Incus config), when the caller has
        it, lets a stale mark be told apart (the DB alone says so while Incus is down)."""
        row = self._row(name)
        return row is not None and self._current(name, row, instance)

    def names(self, instances=None):
        """The names of the suspended containers; with the Incus instance list, only those whose
        mark is for the instance listed under that name."""
        rows = marks.all_marks(self.db)
        if instances is None:
            return {row["container_name"] for row in rows}
        uuids = {instance["name"]: instance_uuid(instance) for instance in instances}
        return {row["container_name"] for row in rows
                if row["container_name"] in uuids
                and (row["instance_uuid"] is None or uuids[row["container_name"]] in (None, row["instance_uuid"]))}

    def refuse(self, name, action):
        """409 when ``name`` is suspended. One DB read when it is not (the common case); Incus is
        asked only when a mark exists, to tell whether it is still this container's."""
        row = self._row(name)
        if row is None:
            return
        try:
            instance = self.incus.instance_config(name)
        except NotFound:
            self.clear(name)
            return
        if self._current(name, row, instance):
            if self.reason(name) == "traffic":
                raise Conflict(
                    N_("Container {name} is suspended because it used up its traffic quota: {action} is refused until "
                       "its traffic is reset (at the next reset day, or POST /container/{name}/traffic/reset)"),
                    name=name, action=action,
                )
            raise Conflict(
                N_("Container {name} is suspended: {action} is refused until it is unsuspended (action=unsuspend)"),
                name=name, action=action,
            )

    def mark(self, name, uuid, reason="billing"):
        marks.mark(self.db, name, uuid, reason)

    def reason(self, name):
        """Why ``name`` is marked ('billing' or 'traffic'), or None when it is not."""
        row = marks.get(self.db, name)
        return None if row is None else row["reason"]

    def clear(self, name):
        marks.clear(self.db, name)


class Lifecycle:
    """suspend / unsuspend / reinstall, each all or nothing where it can be undone."""

    def __init__(self, incus, power, images, credentials, info, suspensions):
        self.incus = incus
        self.power = power
        self.images = images
        self.credentials = credentials
        self.info = info
        self.suspensions = suspensions
        self._busy = set()  # containers a lifecycle action is running on now
        self._busy_lock = threading.Lock()

    def is_suspended(self, name, instance=None):
        return self.suspensions.is_suspended(name, instance)

    def suspended_names(self, instances=None):
        """Names of the suspended containers (see ``Suspensions.names``), e.g. for a list."""
        return self.suspensions.names(instances)

    @contextlib.contextmanager
    def _one_at_a_time(self, name):
        with self._busy_lock:
            if name in self._busy:
                raise Conflict(N_("Another suspend, unsuspend or reinstall of container {name} is running: try again when it has finished"), name=name)
            self._busy.add(name)
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy.discard(name)

    def suspend(self, name, reason="billing"):
        """Mark it suspended, then stop it (forced after the graceful timeout): ``(status,
        already)``. The mark comes first so that nothing can start it in between; when the stop
        fails, the mark is taken back. Its forwards stay in the DB and the kernel; they reach a
        stopped container, i.e. nothing. ``reason`` 'traffic' is the quota's suspension; a billing
        suspend of a container suspended for traffic makes it a billing one (a traffic reset
        then leaves it suspended)."""
        with self._one_at_a_time(name):
            instance = self.incus.instance_config(name)  # 404 for an unknown container
            if self.suspensions.is_suspended(name, instance):
                if reason == "billing" and self.suspensions.reason(name) != "billing":
                    self.suspensions.mark(name, instance_uuid(instance), reason)
                return instance.get("status"), True
            self.suspensions.mark(name, instance_uuid(instance), reason)
            try:
                status, _ = self.power.stop(name)
            except Exception:
                self.suspensions.clear(name)
                raise
            return status, False

    def unsuspend(self, name):
        """Clear the mark and start it (the NAT rules follow its address): ``(status, already)``,
        ``already`` when it was neither suspended nor stopped. When the start fails, the mark is
        put back."""
        with self._one_at_a_time(name):
            instance = self.incus.instance_config(name)
            was_suspended = self.suspensions.is_suspended(name, instance)
            reason = self.suspensions.reason(name)
            self.suspensions.clear(name)
            try:
                status, already = self.power.start(name)
            except Exception:
                if was_suspended:
                    self.suspensions.mark(name, instance_uuid(instance), reason)
                raise
            return status, already and not was_suspended

    def reinstall(self, name, image, password=None, ssh_key=None):
        """A new root filesystem from ``image`` (Incus rebuild), keeping the name, config, limits,
        devices (the pinned, filtered NIC) and every forward; then started with root's
        credentials set as create sets them. ``(info, generated_password)`` like create.

        Nothing changes when the image is unknown. When the rebuild fails, the old filesystem is
        still there and the container is started again if it ran. When the credentials cannot be
        set on the new filesystem, it is stopped (nothing runs with the image's own login) and the
        error raised: reinstall again.
        """
        with self._one_at_a_time(name):
            self.suspensions.refuse(name, "reinstall")
            source = self.images.checked_source(image)  # 400 before anything changes
            instance = self.incus.instance_config(name)  # 404
            was_running = instance.get("status") == "Running"
            self.power.stop(name)
            try:
                self.incus.rebuild(name, source)
            except Exception as exc:
                if was_running:
                    self._start_again(name)
                if isinstance(exc, IncusError):
                    raise IncusError(N_("Reinstalling container {name} failed: {reason}"), name=name, reason=exc.reason) from exc
                raise
            self.power.start(name)
            try:
                generated = self.credentials.set_credentials(name, password=password, ssh_key=ssh_key)
            except Exception:
                log.warning("setting root's credentials on reinstalled %s failed: stopping it", name)
                try:
                    self.incus.change_state(name, "stop", force=True)
                except Exception as stop_exc:  # noqa: BLE001  (the first error is the one to report)
                    log.warning("stopping %s failed too: %s", name, stop_exc)
                raise
            return self.info.info(name), generated

    def _start_again(self, name):
        try:
            self.power.start(name)
        except Exception as exc:  # noqa: BLE001  (the rebuild's error is the one to report)
            log.warning("starting %s again after a failed reinstall failed too: %s", name, exc)
