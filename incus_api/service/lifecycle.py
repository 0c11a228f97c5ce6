"""What a billing system does to a sold container besides create and delete: suspend (stopped and
refused everything that would run it or change it, see ``suspensions``), unsuspend, and reinstall
from an image."""
import logging

from ..exceptions import Conflict, IncusError
from ..i18n import N_
from .busy import OneAtATime
from .suspensions import instance_uuid

log = logging.getLogger(__name__)


class Lifecycle:
    """suspend / unsuspend / reinstall, each all or nothing where it can be undone."""

    def __init__(self, incus, power, images, credentials, info, suspensions):
        self.incus = incus
        self.power = power
        self.images = images
        self.credentials = credentials
        self.info = info
        self.suspensions = suspensions
        self.traffic = None  # service.traffic.TrafficService, set by build_services: an unsuspend over quota
        self._busy = OneAtATime(N_("Another suspend, unsuspend or reinstall of container {key} is running: try again "
                                   "when it has finished"))

    def is_suspended(self, name, instance=None):
        return self.suspensions.is_suspended(name, instance)

    def suspended_names(self, instances=None):
        """Names of the suspended containers (see ``Suspensions.names``), e.g. for a list."""
        return self.suspensions.names(instances)

    def suspend(self, name, reason="billing"):
        """Mark it suspended, then stop it (forced after the graceful timeout): ``(status,
        already)``. The mark comes first so that nothing can start it in between; when the stop
        fails, the mark is taken back. A container marked already is stopped again when something
        started it behind the service's back. Its forwards stay in the DB and the kernel; they reach a
        stopped container, i.e. nothing. ``reason`` 'traffic' is the quota's suspension; a billing
        suspend of a container suspended for traffic makes it a billing one (a traffic reset
        then leaves it suspended)."""
        with self._busy.holding(name):
            instance = self.incus.instance_config(name)  # 404 for an unknown container
            if self.suspensions.is_suspended(name, instance):
                if reason == "billing" and self.suspensions.reason(name) != "billing":
                    self.suspensions.mark(name, instance_uuid(instance), reason)
                if instance.get("status") == "Stopped":
                    return instance.get("status"), True
                # marked, yet running: started behind the service's back (incus start); stopped again
                status, _ = self.power.stop(name)
                return status, False
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
        with self._busy.holding(name):
            instance = self.incus.instance_config(name)
            was_suspended = self.suspensions.is_suspended(name, instance)
            reason = self.suspensions.reason(name)
            if was_suspended:
                self._refuse_while_over_quota(name, reason)
            self.suspensions.clear(name)
            try:
                status, already = self.power.start(name)
            except Exception:
                if was_suspended:
                    self.suspensions.mark(name, instance_uuid(instance), reason)
                raise
            return status, already and not was_suspended

    def _refuse_while_over_quota(self, name, reason):
        """409 for an unsuspend of a traffic suspension while the period's use is still over the
        quota: it would run unlimited until the reset day. A reset, a larger quota or the next
        period lift it (the traffic service unsuspends it then). So too for a billing suspension
        of a container its quota suspended (the next pass would suspend it again)."""
        summary = self.traffic.summary(name) if self.traffic is not None else None
        if summary is None or not (reason == "traffic" or summary["enforced"] == "suspend"):
            return
        if summary["over_quota"]:
            raise Conflict(
                N_("Container {name} used up its traffic quota ({counted} of {quota} bytes this period): unsuspend is "
                   "refused until its traffic is reset (POST /container/{name}/traffic/reset), its quota is raised, "
                   "or the next period starts on {period_end}"),
                name=name, counted=summary["counted_bytes"], quota=summary["quota_bytes"], period_end=summary["period_end"],
            )

    def reinstall(self, name, image, password=None, ssh_key=None):
        """A new root filesystem from ``image`` (Incus rebuild), keeping the name, config, limits,
        devices (the pinned, filtered NIC) and every forward; then started with root's
        credentials set as create sets them. ``(info, generated_password)`` like create.

        Nothing changes when the image is unknown, or the container has snapshots (409). When the rebuild fails, the old filesystem is
        still there and the container is started again if it ran. When the credentials cannot be
        set on the new filesystem, it is stopped (nothing runs with the image's own login) and the
        error raised: reinstall again.
        """
        with self._busy.holding(name):
            self.suspensions.refuse(name, "reinstall")
            source = self.images.checked_source(image)  # 400 before anything changes
            instance = self.incus.instance_config(name)  # 404
            snapshots = self.incus.snapshots(name)
            if snapshots:  # Incus cannot rebuild a disk that has snapshots: refused before anything stops
                raise Conflict(N_("Container {name} has {count} snapshot(s), which a reinstall cannot keep (Incus rebuilds "
                                  "its disk): delete them first (DELETE /container/{name}/snapshots/<snapshot>)"),
                               name=name, count=len(snapshots), data={"snapshots": len(snapshots)})
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
