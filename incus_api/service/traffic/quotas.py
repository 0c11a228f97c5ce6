"""A quota held: a container over it is throttled (its NIC limited to TRAFFIC_THROTTLE_RATE) or
suspended, and let go when a new period starts or the quota no longer holds; each step in the
audit log."""
import json
import logging

from ...exceptions import Conflict, IncusUnavailable, NotFound
from ...i18n import N_
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

    def enforce(self, name, rolled):
        """Throttle or suspend ``name`` when its period's use reached the quota; undo the action
        when a new period started (``rolled``) or the quota no longer holds. Each action is in
        the audit log; a failed one is logged and tried again at the next pass."""
        row = table.plan(self.db, name)
        if row is None:
            return
        _start, _end, rx, tx = period(row, self.clock())
        over = periods.Usage(rx, tx, row["direction"], row["quota_bytes"]).over
        try:
            if row["enforced"] and (rolled or not over):
                self._undo(name, row)
            elif not row["enforced"] and over:
                self._act(name, row, rx, tx)
        except (NotFound, IncusUnavailable):
            return
        except Exception as exc:  # noqa: BLE001 - logged, audited, retried at the next pass
            log.warning("traffic action on %s failed: %s", name, getattr(exc, "message", exc))
            self.audit_log.write(ACTOR, f"traffic.{row['action'] if not row['enforced'] else 'undo'}", target=name,
                                 details={"error": str(getattr(exc, "message", exc))[:200]}, result="error")

    def _act(self, name, row, rx, tx):
        saved = None
        if row["action"] == "throttle":
            saved = json.dumps(self.limits.set_nic_rates(name, {"ingress": self.throttle_rate,
                                                                "egress": self.throttle_rate}))
        else:
            self.lifecycle.suspend(name, reason="traffic")
        table.set_enforced(self.db, name, row["action"], periods.iso(self.clock()), saved)
        self.audit_log.write(ACTOR, f"traffic.{row['action']}", target=name, details={
            "rx_bytes": rx, "tx_bytes": tx, "quota_bytes": row["quota_bytes"], "direction": row["direction"],
            **({"rate": self.throttle_rate} if row["action"] == "throttle" else {})})

    def _undo(self, name, row):
        if row["enforced"] == "throttle":
            self.limits.set_nic_rates(name, json.loads(row["saved_limits"] or "{}"))
        elif self.lifecycle.suspensions.reason(name) == "traffic":
            self.lifecycle.unsuspend(name)
        table.clear_enforced(self.db, name)
        self.audit_log.write(ACTOR, f"traffic.un{row['enforced']}", target=name)
