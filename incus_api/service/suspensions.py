"""The suspended marks: the service's truth of which containers a billing system (or a traffic
quota) suspended, kept in the store across restarts, and the guard every use case that would run
or change a container calls (409 while marked).

A mark records the Incus ``volatile.uuid`` of the container that was suspended, so a mark left by
a container deleted behind the service's back never applies to a new container of the same name.
"""
import logging

from ..exceptions import Conflict, NotFound
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
