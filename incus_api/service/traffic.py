"""Monthly traffic per container: sampled from the host's own counters, kept per hour in SQLite,
held against each container's quota.

``sample()`` runs every TRAFFIC_INTERVAL seconds in the scheduler. One pass: list the instances
(one Incus request) and the addresses Incus assigned them; read every kernel counter (one ``nft``
call); add what is new since the last pass to the hour's and the period's totals (one
transaction); make the kernel count the addresses of now (one ``nft`` call, only when something
changed); then throttle or suspend what went over its quota, and undo that where a period
started again.

What a pass adds is the counter's growth since the value stored with the last pass, so a service
restart neither loses nor counts twice; a container restart does not touch the host's counters.
When the kernel's counters started again from zero (a reboot, the table flushed: another
``epoch``), a pass adds their whole value: what passed between the last pass and the reset is the
at most one interval's worth that is lost.
"""
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from ..exceptions import BadInput, Conflict, IncusUnavailable, NotFound
from ..i18n import N_
from ..store import traffic as table
from ..traffic import periods
from ..traffic.nft_counters import NftCounters, NftError
from .addresses import assigned_ipv4

log = logging.getLogger(__name__)

ACTOR = "traffic"


@dataclass(frozen=True)
class TrafficPlan:
    """The traffic fields of a plan; None: not given (create: the default; limits: unchanged).
    ``quota`` 0 is unlimited."""

    quota: int = None
    reset_day: int = None
    direction: str = None
    action: str = None

    def given(self):
        return [name for name in ("quota", "reset_day", "direction", "action") if getattr(self, name) is not None]


class TrafficService:
    def __init__(self, db, incus, addresses, limits, lifecycle, audit_log, config, counters=None, clock=periods.local_now):
        self.db = db
        self.incus = incus
        self.addresses = addresses
        self.limits = limits
        self.lifecycle = lifecycle
        self.audit_log = audit_log
        self.counters = counters or NftCounters(config.get("INCUS_BRIDGE", "incusbr0"))
        self.throttle_rate = config.get("TRAFFIC_THROTTLE_RATE", "1Mbit")
        self.enabled = int(config.get("TRAFFIC_INTERVAL", 60)) > 0
        self.clock = clock
        self._pass_lock = threading.Lock()  # one pass, or one container's counters being added, at a time
        self._missing_before = set()  # plans whose container was not in Incus at the last pass

    # -- plans ------------------------------------------------------------------------------

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

    def create_plan(self, name, plan):
        """The plan of a container created now: the day of creation is its reset day unless given."""
        now = self.clock()
        self.check(plan)
        table.new_plan(self.db, name, plan.quota or None, plan.reset_day or periods.default_reset_day(now),
                       plan.direction or "both", plan.action or "throttle", periods.iso(now))

    def check_change(self, name, plan):
        """``check`` of a change to ``name``'s plan (404 for an unknown container)."""
        self.check(plan, self._plan_row(name))

    def change_plan(self, name, plan):
        """Change the given fields of ``name``'s plan; the quota is held against this period's use
        at once (a larger quota lifts a throttle or suspension, a smaller one may impose it).
        The usage report after the change."""
        if not plan.given():
            raise BadInput(N_("Give at least one traffic field to change: {fields}"),
                           fields="traffic_quota, traffic_reset_day, traffic_direction, traffic_action")
        current = self._plan_row(name)
        self.check(plan, current)
        changes = {"quota_bytes": (plan.quota or None) if plan.quota is not None else current["quota_bytes"],
                   "reset_day": plan.reset_day or current["reset_day"],
                   "direction": plan.direction or current["direction"],
                   "action": plan.action or current["action"]}
        table.change_plan(self.db, name, *changes.values())
        self._enforce(name, rolled=False)
        return self.usage(name)

    def _plan_row(self, name):
        """``name``'s plan row, made with the defaults (reset on the day it was created) when the
        sampler has not seen it yet; 404 for a container that does not exist."""
        row = table.plan(self.db, name)
        if row is not None:
            return row
        instance = self.incus.instance_config(name)  # 404 for an unknown container
        self._default_plans(self.db, [instance])
        return table.plan(self.db, name)

    def _default_plans(self, db, instances):
        """Plans with the defaults (reset on the day of creation, no quota) for ``instances``
        that have none."""
        now = self.clock()
        rows = []
        for instance in instances:
            created = _created(instance, now)
            day = periods.default_reset_day(created)
            rows.append((instance["name"], day, periods.iso(max(created, periods.last_reset(day, now)))))
        table.default_plans(db, rows)

    def forget(self, name):
        """A deleted container's plan and history go with it, and its address leaves the maps. Its
        counters stay until the next pass (their last value is the baseline, so a new container
        of that name starts at 0)."""
        with self.db.transaction() as conn:
            table.forget(conn, name)
        if self.enabled:
            with self._pass_lock:  # its address is free for the next container at once
                self._map(name, None)

    def track(self, name, address):
        """Count ``name`` at ``address`` from now on (a new container: from its first packet,
        not from the next pass). Best effort: the next pass does it otherwise."""
        if not self.enabled or address is None:
            return
        with self._pass_lock:
            try:
                self.counters.add(name, address)
            except NftError:  # the table is missing, or another name still holds the address
                self._map(name, address)
            except ValueError as exc:
                log.warning("could not count the traffic of %s: %s", name, exc)

    def _map(self, name, address):
        """Map ``address`` to ``name``'s counters (None: to nothing), taking it from any other
        name; the other mappings stay. Called with the pass lock held."""
        try:
            snapshot = self.counters.ensure(self.counters.read())
            wanted = {other: snapshot.addresses.get(other) for other in snapshot.counters}
            if address is not None:
                wanted = {other: (None if given == address else given) for other, given in wanted.items()}
            wanted[name] = address
            self.counters.apply(snapshot, wanted)
        except (NftError, ValueError) as exc:
            log.warning("could not change how the traffic of %s is counted: %s", name, exc)

    # -- reports ----------------------------------------------------------------------------

    def usage(self, name, with_days=True):
        """This period's use of ``name``: the answer of ``GET /container/<name>/traffic``."""
        row = self._plan_row(name)
        return self._report(row, self.clock(), with_days=with_days)

    def all_usage(self):
        """Every container's current period (``GET /traffic``), by name."""
        now = self.clock()
        rows = table.plans(self.db)
        return [{"name": row["container_name"], **self._report(row, now, with_days=False)} for row in rows]

    def summaries(self):
        """``{name: period totals}`` for the container list and info (one DB read)."""
        now = self.clock()
        return {row["container_name"]: self._summary(row, now)
                for row in table.plans(self.db)}

    def summary(self, name):
        row = table.plan(self.db, name)
        return None if row is None else self._summary(row, self.clock())

    def _period(self, row, now):
        """``(start, end, rx, tx)`` of the period ``now`` is in (zero totals when the stored one is over)."""
        stored = datetime.fromisoformat(row["period_start"])
        start = periods.current_start(row["reset_day"], stored, now)
        rx, tx = (row["period_rx"], row["period_tx"]) if start == stored else (0, 0)
        return start, periods.next_reset(row["reset_day"], start), rx, tx

    SUMMARY_FIELDS = ("rx_bytes", "tx_bytes", "counted_bytes", "quota_bytes", "percent", "over_quota", "enforced")

    def _summary(self, row, now):
        report = self._report(row, now, with_days=False)
        return {**{key: report[key] for key in self.SUMMARY_FIELDS}, "period_end": report["period"]["end"]}

    def _report(self, row, now, with_days):
        start, end, rx, tx = self._period(row, now)
        usage = periods.Usage(rx, tx, row["direction"], row["quota_bytes"])
        report = {
            "period": {"start": periods.iso(start), "end": periods.iso(end)},
            "rx_bytes": rx, "tx_bytes": tx, "counted_bytes": usage.counted, "quota_bytes": usage.quota,
            "remaining_bytes": usage.remaining, "over_quota": usage.over, "percent": usage.percent,
            "reset_day": row["reset_day"], "direction": row["direction"], "action": row["action"],
            "enforced": row["enforced"],
        }
        if with_days:
            report["days"] = self._days(row["container_name"], start, end)
        return report

    def _days(self, name, start, end):
        """Each local day of the period with its totals (the hours' sums)."""
        totals = {day: [0, 0] for day in periods.days_between(start, end)}
        for hour in table.hours(self.db, name, periods.hour_of(start), periods.hour_of(end)):
            day = periods.parse_hour(hour["hour"]).astimezone(start.tzinfo).date()
            if day in totals:
                totals[day][0] += hour["rx_bytes"]
                totals[day][1] += hour["tx_bytes"]
        return [{"date": day.isoformat(), "rx_bytes": rx, "tx_bytes": tx} for day, (rx, tx) in totals.items()]

    # -- reset ------------------------------------------------------------------------------

    def reset(self, name):
        """Start a new period now: totals to zero, a throttle or traffic suspension undone (the
        request itself is in the audit log; the undoing is written there too)."""
        self._plan_row(name)
        table.start_period(self.db, name, periods.iso(self.clock()))
        self._enforce(name, rolled=True)
        return self.usage(name)

    # -- the pass ---------------------------------------------------------------------------

    def sample(self):
        """One pass (see the module's docstring): ``{"containers", "added_bytes", "kernel_changes"}``."""
        with self._pass_lock:
            instances = self.incus.instances()
            network = self.addresses.network()
            leases = self.addresses.leases_by_hwaddr(fresh=True)  # a container started a second ago counts too
            wanted = _addresses(instances, network, leases)
            snapshot = self.counters.ensure(self.counters.read())
            now = self.clock()
            rolled, added = self._account(snapshot, instances, now)
            changes = self.counters.apply(snapshot, wanted)
        for name in rolled:
            self._enforce(name, rolled=True)
        for name in table.unenforced_with_quota(self.db):
            self._enforce(name, rolled=False)
        return {"containers": len(wanted), "added_bytes": added, "kernel_changes": changes}

    def _account(self, snapshot, instances, now):
        """Add the counters' growth to the hour and the period; names whose period rolled over."""
        names = {instance["name"] for instance in instances}
        hour = periods.hour_of(now)
        rolled, added = [], 0
        with self.db.transaction() as conn:
            self._default_plans(conn, instances)
            seen = table.counters(conn)
            for name, (rx, tx) in snapshot.counters.items():
                before = seen.get(name)
                same = before is not None and before["epoch"] == snapshot.epoch
                new_rx = rx - before["rx_seen"] if same and rx >= before["rx_seen"] else rx
                new_tx = tx - before["tx_seen"] if same and tx >= before["tx_seen"] else tx
                table.save_counter(conn, name, snapshot.epoch, rx, tx)
                if not (new_rx or new_tx) or name not in names:
                    continue
                added += new_rx + new_tx
                table.add_use(conn, name, hour, new_rx, new_tx)
            for row in table.plans(conn):
                stored = datetime.fromisoformat(row["period_start"])
                start = periods.current_start(row["reset_day"], stored, now)
                if start != stored:
                    table.start_period(conn, row["container_name"], periods.iso(start))
                    rolled.append(row["container_name"])
            gone = set(seen) - names
            table.drop_counters(conn, gone)
            # A plan whose container was missing at two passes in a row was deleted behind the
            # service's back (one miss may be a create that came after this pass's list).
            missing = table.planned_names(conn) - names
            for name in missing & self._missing_before:
                table.forget(conn, name)
            self._missing_before = missing
        return rolled, added

    # -- quota actions ----------------------------------------------------------------------

    def _enforce(self, name, rolled):
        """Throttle or suspend ``name`` when its period's use reached the quota; undo the action
        when a new period started (``rolled``) or the quota no longer holds. Each action is in
        the audit log; a failed one is logged and tried again at the next pass."""
        row = table.plan(self.db, name)
        if row is None:
            return
        _start, _end, rx, tx = self._period(row, self.clock())
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


def _created(instance, now):
    """When Incus created ``instance``, in ``now``'s time zone (``now`` when it does not say)."""
    text = (instance.get("created_at") or "").replace("Z", "+00:00")
    try:
        created = datetime.fromisoformat(text[:19] + text[-6:] if "." in text else text)
    except ValueError:
        return now
    return created.astimezone(now.tzinfo) if created.tzinfo else now


def _addresses(instances, network, leases):
    """``{name: address or None}``: what Incus assigned each instance (never what it reports); an
    address two instances claim counts for neither."""
    wanted = {instance["name"]: assigned_ipv4(instance, network, leases) for instance in instances}
    taken = {}
    for name, address in wanted.items():
        if address is not None:
            taken.setdefault(address, []).append(name)
    for address, names in taken.items():
        if len(names) > 1:
            log.warning("traffic: %s claim %s; counting neither", ", ".join(names), address)
            for name in names:
                wanted[name] = None
    return wanted
