"""The audit log: writing entries (from a request or from the service itself), reading
them back, and keeping what matters.

Retention: authenticated and system entries are kept ``AUDIT_KEEP_DAYS`` days; anonymous entries
(requests that failed to authenticate: anyone on the network can make them) are capped at the
newest ``AUDIT_ANONYMOUS_KEEP``, so a flood of 401s cannot push the real history out.

No Flask here: services record their own events with ``write(db, "system", "nat.sync", ...)``.
"""
from dataclasses import dataclass

from ..store import audit as store

ANONYMOUS = "anonymous"
PRUNE_EVERY = 1000


@dataclass(frozen=True)
class Retention:
    keep_days: int = 180  # 0: no age limit
    anonymous_keep: int = 10_000

    @classmethod
    def from_config(cls, config):
        return cls(keep_days=int(config.get("AUDIT_KEEP_DAYS", cls.keep_days)),
                   anonymous_keep=int(config.get("AUDIT_ANONYMOUS_KEEP", cls.anonymous_keep)))


def write(db, actor, action, target=None, details=None, result="success", *, method="-", client_address=None,
          status_code=0, retention=None):
    """Add one entry; returns its id. ``details`` is a dict of short, non-secret values.

    A request's entry carries its HTTP method and status; a system event (``actor="system"``) has
    neither (``-`` and 0). Every ``PRUNE_EVERY``-th entry prunes by ``retention`` (the defaults
    when not given).
    """
    entry_id = store.insert(db, str(actor)[:100], client_address, str(method)[:10], str(action)[:100],
                            None if target is None else str(target)[:80], details, int(status_code), str(result)[:20])
    if entry_id % PRUNE_EVERY == 0:
        prune(db, retention or Retention())
    return entry_id


def complete(db, entry_id, details, result):
    """Fill in the end of an entry written when something long began (a console session: one
    entry with its start and end)."""
    store.complete(db, int(entry_id), details, str(result)[:20])


def prune(db, retention):
    """Drop entries past their age, and the oldest anonymous ones past the cap; returns how many."""
    removed = store.delete_older_than(db, retention.keep_days) if retention.keep_days > 0 else 0
    return removed + store.delete_all_but_newest(db, ANONYMOUS, max(retention.anonymous_keep, 0))


def entries(db, limit=100, target=None, before_id=None):
    """The newest ``limit`` entries (optionally of one ``target``, or older than ``before_id``)."""
    return store.newest(db, limit, target=target, before_id=before_id)


class AuditLogService:
    """What the blueprints (and services that hold it) use: the functions above with this
    service's database and configured retention."""

    def __init__(self, db, config):
        self.db = db
        self.retention = Retention.from_config(config)

    def write(self, actor, action, target=None, details=None, result="success", **request_fields):
        return write(self.db, actor, action, target=target, details=details, result=result,
                     retention=self.retention, **request_fields)

    def complete(self, entry_id, details, result):
        return complete(self.db, entry_id, details, result)

    def entries(self, limit=100, target=None, before_id=None):
        return entries(self.db, limit=limit, target=target, before_id=before_id)

    def prune(self):
        return prune(self.db, self.retention)
