"""A quota held: a container over it is throttled (its NIC limited to TRAFFIC_THROTTLE_RATE) or
suspended, and let go when a new period starts or the quota no longer holds; each step in the
audit log.

The action holds until the use is under the quota (a reset, a larger quota, a new period): each
sampling pass checks it against the instance list of the pass and puts it in force again where it
was undone behind the service's back (the NIC's rates changed in Incus, a suspended container
started with ``incus start``). A throttle's own rates are the NIC's until it ends: a plan change
meanwhile (``hold_rates``), or rates an admin set in Incus, become the rates its end puts back.
"""
import json
import logging

from ...exceptions import Conflict, IncusUnavailable, NotFound
from ...i18n import N_
from ...parse.quantities import incus_rate
from ...store import traffic as table
from ...traffic import periods
from .reports import period

log = logging.getLogger(__name__)

ACTOR = "traffic"


class Quotas:
    def __init__(self, db, limits, lifecycle, audit_log, clock, throttle_rate):
        self.db = db
        self.limits = limits
        self.lifecycle = lifecycle
        self.audit_log = audit_log
        self.clock = clock
        self.throttle_rate = throttle_rate

    def check(self, plan, current=None):
        """409 when the plan (over ``current``, the plan row it changes) would throttle on a
        kernel that cannot limit a NIC's rate: a quota with ``throttle`` as the action."""
        action = plan.action or (current["action"] if current else "throttle")
        quota = plan.quota if plan.quota is not None else (current["quota_bytes"] if current else None)
        if quota and action == "throttle":
            missing = self.limits.missing_for_throttle()
            if missing:
                raise Conflict(
                    N_("The host's kernel lacks {modules}, which traffic_action=throttle needs (it limits the NIC "
                       "to TRAFFIC_THROTTLE_RATE with tc): load them (modprobe {modules}), or use traffic_action=suspend"),
                    modules=" ".join(missing),
                )

    def throttle_rates(self):
        """The NIC rates of a throttle."""
        return {"ingress": self.throttle_rate, "egress": self.throttle_rate}

    def enforce(self, name, rolled, instance=None):
        """Throttle or suspend ``name`` when its period's use reached the quota; undo the action
        when a new period started (``rolled``) or the quota no longer holds; with ``instance`` (its
        Incus config, as a pass listed it), put an action in force again where it no longer holds.
        Each action is in the audit log; a failed one is logged and tried again at the next pass."""
        row = table.plan(self.db, name)
        if row is None:
            return
        _start, _end, rx, tx = period(row, self.clock())
        over = periods.Usage(rx, tx, row["direction"], row["quota_bytes"]).over
        step = None
        try:
            if row["enforced"] and (rolled or not over):
                step = "undo"
                self._undo(name, row)
            elif not row["enforced"] and over:
                step = row["action"]
                self._act(name, row, rx, tx)
            elif row["enforced"] and instance is not None:
                step = row["enforced"]
                self._hold(name, row, instance, rx, tx)
        except (NotFound, IncusUnavailable):
            return
        except Exception as exc:  # noqa: BLE001 - logged, audited, retried at the next pass
            log.warning("traffic action on %s failed: %s", name, getattr(exc, "message", exc))
            self.audit_log.write(ACTOR, f"traffic.{step}", target=name,
                                 details={"error": str(getattr(exc, "message", exc))[:200]}, result="error")

    def _act(self, name, row, rx, tx):
        saved = None
        if row["action"] == "throttle":
            saved = json.dumps(self.limits.set_nic_rates(name, self.throttle_rates()))
        else:
            self.lifecycle.suspend(name, reason="traffic")
        table.set_enforced(self.db, name, row["action"], periods.iso(self.clock()), saved)
        self.audit_log.write(ACTOR, f"traffic.{row['action']}", target=name, details={
            "rx_bytes": rx, "tx_bytes": tx, "quota_bytes": row["quota_bytes"], "direction": row["direction"],
            **({"rate": self.throttle_rate} if row["action"] == "throttle" else {})})

    def _hold(self, name, row, instance, rx, tx):
        """An action in force while still over the quota: put it back where it was undone."""
        details = {"rx_bytes": rx, "tx_bytes": tx, "quota_bytes": row["quota_bytes"], "again": True}
        if row["enforced"] == "throttle":
            wanted = self.throttle_rates()
            found = {field: rate for field, rate in self.limits.limits_of(instance).items() if field in wanted}
            changed = {field: rate for field, rate in found.items() if not same_rate(rate, wanted[field])}
            if not changed:
                return
            self.limits.set_nic_rates(name, wanted)
            # Rates set since the throttle began (an admin in Incus) are the ones to put back at its end.
            self.hold_rates(name, {field: rate for field, rate in changed.items() if rate is not None})
            self.audit_log.write(ACTOR, "traffic.throttle", target=name, details={**details, "rate": self.throttle_rate})
        else:
            suspended_for = self.lifecycle.suspensions.reason(name)
            if suspended_for is not None and instance.get("status") == "Stopped":
                return
            self.lifecycle.suspend(name, reason="traffic")
            self.audit_log.write(ACTOR, "traffic.suspend", target=name, details=details)

    def hold_rates(self, name, rates):
        """While ``name`` is throttled, NIC ``rates`` a plan change gives (``{"ingress": "10Mbit",
        ...}``) are kept for the throttle's end instead of lifting it: whether they were."""
        if not rates:
            return False
        with self.db.transaction() as conn:
            row = table.plan(conn, name)
            if row is None or row["enforced"] != "throttle":
                return False
            return table.save_rates(conn, name, json.dumps({**json.loads(row["saved_limits"] or "{}"), **rates}))

    def _undo(self, name, row):
        if row["enforced"] == "throttle":
            self._unthrottle(name, row)
        else:
            if self.lifecycle.suspensions.reason(name) == "traffic":
                self.lifecycle.unsuspend(name)
            table.clear_enforced(self.db, name)
        self.audit_log.write(ACTOR, f"traffic.un{row['enforced']}", target=name)

    def _unthrottle(self, name, row):
        """The NIC back to the rates kept for the throttle's end: those of the plan as it is now
        (a plan change while throttled kept its rates there, ``hold_rates``). Read again after
        they were written, so that rates kept meanwhile are written too."""
        for _ in range(3):
            self.limits.set_nic_rates(name, json.loads(row["saved_limits"] or "{}"))
            if table.clear_throttle(self.db, name, row["saved_limits"]):
                return
            row = table.plan(self.db, name)
            if row is None or row["enforced"] != "throttle":
                return
        log.warning("the rates of %s changed while its throttle ended: the next pass tries again", name)


def same_rate(rate, other):
    """Whether two NIC rates as Incus holds them are the same (``1Mbit`` and ``1000kbit`` are)."""
    if rate is None or other is None:
        return rate is other
    value, other_value = incus_rate(rate), incus_rate(other)
    return value == other_value if value is not None and other_value is not None else str(rate) == str(other)
