"""Start, stop and restart: graceful first, forced when the guest does not follow within the
timeout; a suspended container is refused (409), and the NAT rules follow a started container's
address."""
import logging

from ..exceptions import IncusError, OperationTimeout
from ..i18n import N_

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30


class Power:
    def __init__(self, incus, addresses, nic_guard, nat_sync, suspensions, info):
        self.incus = incus
        self.addresses = addresses
        self.nic_guard = nic_guard
        self.nat_sync = nat_sync
        self.suspensions = suspensions
        self.info = info  # service.info.ContainerInfo: the last known status is kept there

    def start(self, name):
        self.suspensions.refuse(name, "start")
        return self._stopped_again_if_suspended_meanwhile(name, "start", self._change_state(name, "start"))

    def stop(self, name):
        return self._change_state(name, "stop")

    def restart(self, name):
        self.suspensions.refuse(name, "restart")
        return self._stopped_again_if_suspended_meanwhile(name, "restart", self._change_state(name, "restart"))

    def _stopped_again_if_suspended_meanwhile(self, name, action, result):
        """A suspend that came between the check and Incus's start (it marks, then stops what is
        running) would leave a suspended container running: look again once it has started, and
        stop it and answer 409 when it was marked meanwhile. ``result`` passes through otherwise."""
        if not self.suspensions.is_suspended(name):  # one DB read
            return result
        if not self.suspensions.is_suspended(name, self.incus.instance_config(name)):
            return result  # a stale mark, of another instance of that name: dropped
        log.info("%s was suspended while it started: stopping it again", name)
        self.incus.change_state(name, "stop", force=True)
        self._refresh_status(name)
        self.suspensions.refuse(name, action)
        return result  # unsuspended in the meantime

    def _change_state(self, name, action):
        """Graceful first (the guest shuts down cleanly), forced when it does not within the timeout.

        Returns ``(status, already)``: the container's new status and whether it was already there.
        """
        if action == "start":
            self.nic_guard.isolate_before_start(name)
        try:
            self.incus.change_state(name, action, force=False, timeout=STOP_TIMEOUT)
        except (IncusError, OperationTimeout) as exc:
            reason = exc.reason
            if "already running" in reason or "already stopped" in reason:
                return self._refresh_status(name), True
            if action == "start":
                raise IncusError(N_("{action} of container {name} failed: {reason}"), action=action, name=name, reason=reason) from exc
            log.warning("graceful %s of %s failed (%s); forcing it", action, name, reason)
            try:
                self.incus.change_state(name, action, force=True)
            except IncusError:
                # The graceful stop ended as its wait ran out: Incus refuses the forced one, and the
                # container is where it was asked to be (its state says so, not the refusal's words).
                if action != "stop" or self._refresh_status(name) != "Stopped":
                    raise
        if action in ("start", "restart"):
            self.nat_sync.follow_restart(name)
        return self._refresh_status(name), False

    def _refresh_status(self, name):
        instance, address = self.addresses.address_of(name, wait=False)
        status = instance.get("status")
        self.info.remember_status(name, status, address if status == "Running" else None)
        return status
