"""A container's snapshots: listed, taken by hand within the plan's ``snapshots``, restored and
deleted; the scheduled ones are Incus's own (``snapshots.schedule``, named ``auto0``, ``auto1``, ...
by ``snapshots.pattern``, expired by ``snapshots.expiry``; see ``plans``).

A restore brings back files, never the plan: Incus's restore also puts back the config, devices
and profiles the snapshot was taken with (older limits, another NIC), so the instance's own
config (its ``volatile.*`` keys apart), devices and profiles as they were just before it are put
back in the next request, while the container is stopped; a running container is stopped (forced:
its files are replaced anyway) and started again with them. The forwards and the traffic plan live
in the service's database and are not touched. Refused (409) while the container is suspended.
"""
import contextlib
import logging
import time

from ..exceptions import Conflict, NotFound
from ..i18n import N_
from ..parse.snapshots import AUTO_PREFIX
from .busy import OneAtATime
from .plans import SNAPSHOTS_KEY

log = logging.getLogger(__name__)


def _count(text):
    text = str(text or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 4 else 0


def snapshot_plan(instance):
    """``{"snapshots", "snapshot_schedule", "snapshot_keep"}`` as Incus holds them for ``instance``
    (``snapshots`` 0 when not set; the others None)."""
    config = instance.get("expanded_config") or instance.get("config") or {}
    return {
        "snapshots": _count(config.get(SNAPSHOTS_KEY)),
        "snapshot_schedule": config.get("snapshots.schedule") or None,
        "snapshot_keep": config.get("snapshots.expiry") or None,
    }


def _date(value):
    """Incus's ``0001-01-01T00:00:00Z`` (never) as None."""
    return None if not value or str(value).startswith("0001-01-01") else value


def shape(snapshot):
    name = snapshot.get("name", "").rsplit("/", 1)[-1]
    size = snapshot.get("size")
    return {
        "name": name,
        "created_at": _date(snapshot.get("created_at")),
        "expires_at": _date(snapshot.get("expires_at")),
        "size": size if isinstance(size, int) and size >= 0 else None,
        "scheduled": name.startswith(AUTO_PREFIX),
    }


class SnapshotService:
    def __init__(self, incus, power, suspensions, clock=time.gmtime):
        self.incus = incus
        self.power = power  # a restored container that was running is started again through it
        self.suspensions = suspensions
        self.clock = clock
        self._busy = OneAtATime(N_("Another snapshot change of container {key} is running: try again when it has "
                                   "finished"))

    # -- reading ------------------------------------------------------------------------------

    def list(self, name):
        """``(snapshots oldest first, plan)``: each ``{"name", "created_at", "expires_at", "size",
        "scheduled"}`` (``size`` None where the pool does not tell), and the snapshot plan."""
        instance = self.incus.instance_config(name)  # 404 for an unknown container
        snapshots = sorted((shape(s) for s in self.incus.snapshots(name)), key=lambda s: (s["created_at"] or "", s["name"]))
        return snapshots, snapshot_plan(instance)

    def by_hand(self, snapshots):
        return [snapshot for snapshot in snapshots if not snapshot["scheduled"]]

    def _find(self, name, snapshot):
        snapshots, plan = self.list(name)
        if snapshot not in {s["name"] for s in snapshots}:
            raise NotFound(N_("Container {name} has no snapshot named {snapshot}"), name=name, snapshot=snapshot)
        return snapshots, plan

    # -- changing -------------------------------------------------------------------------------

    def create(self, name, snapshot=None):
        """Take a snapshot (``snapshot``, or ``snap-<UTC date>-<time>``) within the plan's
        ``snapshots``: the new snapshot as ``list`` shapes it."""
        with self._busy.holding(name):
            self.suspensions.refuse(name, "snapshot")
            snapshots, plan = self.list(name)
            taken = self.by_hand(snapshots)
            if len(taken) >= plan["snapshots"]:
                raise Conflict(
                    N_("Container {name} may keep {allowed} snapshots by hand under its plan and has {taken}: delete one "
                       "first, or raise the plan's snapshots (POST /container/{name}/limits)"),
                    name=name, allowed=plan["snapshots"], taken=len(taken), data={"snapshots": plan["snapshots"]})
            names = {s["name"] for s in snapshots}
            if snapshot is None:
                snapshot = self._new_name(names)
            elif snapshot in names:
                raise Conflict(N_("Container {name} already has a snapshot named {snapshot}"), name=name, snapshot=snapshot)
            self.incus.create_snapshot(name, snapshot)
            log.info("snapshot %s of %s taken", snapshot, name)
            return next((s for s in self.list(name)[0] if s["name"] == snapshot),
                        {"name": snapshot, "created_at": None, "expires_at": None, "size": None, "scheduled": False})

    def _new_name(self, names):
        base = "snap-" + time.strftime("%Y%m%d-%H%M%S", self.clock())
        candidate, number = base, 2
        while candidate in names:
            candidate, number = f"{base}-{number}", number + 1
        return candidate

    def delete(self, name, snapshot):
        with self._busy.holding(name):
            self.suspensions.refuse(name, "snapshot delete")
            self._find(name, snapshot)
            self.incus.delete_snapshot(name, snapshot)
            log.info("snapshot %s of %s deleted", snapshot, name)

    def restore(self, name, snapshot):
        """The files of ``snapshot`` back, the plan as it is now: the container's status after it."""
        with self._busy.holding(name):
            self.suspensions.refuse(name, "snapshot restore")
            self._find(name, snapshot)
            before = self.incus.instance_config(name)
            running = before.get("status") == "Running"
            if running:
                self.incus.change_state(name, "stop", force=True)
            restored = False
            try:
                self.incus.restore_snapshot(name, snapshot)
                restored = True
            finally:
                self._put_plan_back(name, before)
                if running and not restored:  # the restore failed: the container runs again as it was
                    with contextlib.suppress(Exception):
                        self.power.start(name)
            log.info("snapshot %s of %s restored", snapshot, name)
            if running:
                status, _ = self.power.start(name)
                return status
            return self.incus.instance_config(name).get("status")

    def _put_plan_back(self, name, before):
        """The instance's own config (``volatile.*`` as the restore left them), devices, profiles
        and description as they were in ``before``."""
        after = self.incus.instance_config(name)
        config = {key: value for key, value in (after.get("config") or {}).items() if key.startswith("volatile.")}
        config.update({key: value for key, value in (before.get("config") or {}).items()
                       if not key.startswith("volatile.")})
        body = {"config": config, "devices": before.get("devices") or {}, "profiles": before.get("profiles") or [],
                "description": before.get("description") or "", "ephemeral": bool(before.get("ephemeral"))}
        if before.get("architecture"):
            body["architecture"] = before["architecture"]
        self.incus.replace(name, body)
