"""Monthly traffic per container: counted on the host (``sampler``), kept per hour in the store,
held against each container's quota (``quotas``) and reported (``reports``). ``TrafficService``
is what the rest of the service calls: a plan made, changed, reset or forgotten, its use read,
a pass run."""
from dataclasses import dataclass, replace

from ...exceptions import BadInput
from ...i18n import N_
from ...store import traffic as table
from ...traffic import periods
from ...traffic.nft_counters import NftCounters
from . import history, reports
from .quotas import Quotas
from .sampler import Sampler, default_plans


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
        self.clock = clock
        self.quotas = Quotas(db, limits, lifecycle, audit_log, clock, config.get("TRAFFIC_THROTTLE_RATE", "1Mbit"))
        self.sampler = Sampler(db, incus, addresses, counters or NftCounters(config.get("INCUS_BRIDGE", "incusbr0")),
                               self.quotas, clock, enabled=int(config.get("TRAFFIC_INTERVAL", 60)) > 0)

    @property
    def counters(self):
        return self.sampler.counters

    @property
    def enabled(self):
        return self.sampler.enabled

    def sample(self):
        """One sampling pass (``sampler``): ``{"containers", "added_bytes", "kernel_changes"}``."""
        return self.sampler.sample()

    # -- plans ------------------------------------------------------------------------------

    def check(self, plan, current=None):
        """409 when the plan would throttle on a kernel that cannot (``Quotas.check``)."""
        self.quotas.check(plan, current)

    def create_plan(self, name, plan):
        """The plan of a container created now: the day of creation is its reset day unless given."""
        now = self.clock()
        self.check(plan)
        table.new_plan(self.db, name, plan.quota or None, plan.reset_day or periods.default_reset_day(now),
                       plan.direction or "both", plan.action or "throttle", periods.iso(now))

    def period_start_now(self):
        """A period starting now, as plans record it."""
        return periods.iso(self.clock())

    def plan_record(self, name):
        """``name``'s plan, period and use as a backup records them (None: no plan yet)."""
        return table.plan_record(self.db, name)

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
        self.quotas.enforce(name, rolled=False)
        return self.usage(name)

    def hold_rates(self, name, plan):
        """``plan`` (a ``plans.Plan``) as it may change ``name``'s NIC now: while a throttle holds,
        its ``ingress``/``egress`` are kept as the rates the throttle's end puts back, and left out."""
        rates = {field: getattr(plan, field).text for field in ("ingress", "egress") if getattr(plan, field) is not None}
        if rates and self.quotas.hold_rates(name, rates):
            return replace(plan, ingress=None, egress=None)
        return plan

    def _plan_row(self, name):
        """``name``'s plan row, made with the defaults (reset on the day it was created) when the
        sampler has not seen it yet; 404 for a container that does not exist."""
        row = table.plan(self.db, name)
        if row is not None:
            return row
        instance = self.incus.instance_config(name)  # 404 for an unknown container
        default_plans(self.db, [instance], self.clock())
        return table.plan(self.db, name)

    def forget(self, name):
        """A deleted container's plan and history go with it, and its address leaves the maps."""
        with self.db.transaction() as conn:
            table.forget(conn, name)
        self.sampler.unmap(name)

    def track(self, name, address):
        """Count ``name`` at ``address`` from now on (``Sampler.track``)."""
        self.sampler.track(name, address)

    def fold_history(self):
        """Hours older than 90 days into days, days older than 400 deleted (``history``); the
        scheduler runs it every hour."""
        return history.fold(self.db, self.clock())

    # -- reports ----------------------------------------------------------------------------

    def usage(self, name, with_days=True):
        """This period's use of ``name``: the answer of ``GET /container/<name>/traffic``."""
        return reports.report(self.db, self._plan_row(name), self.clock(), with_days=with_days)

    def all_usage(self):
        """Every container's current period (``GET /traffic``), by name."""
        now = self.clock()
        return [{"name": row["container_name"], **reports.report(self.db, row, now, with_days=False)}
                for row in table.plans(self.db)]

    def summaries(self):
        """``{name: period totals}`` for the container list and info (one DB read)."""
        now = self.clock()
        return {row["container_name"]: reports.summary(row, now) for row in table.plans(self.db)}

    def summary(self, name):
        row = table.plan(self.db, name)
        return None if row is None else reports.summary(row, self.clock())

    # -- reset ------------------------------------------------------------------------------

    def reset(self, name):
        """Start a new period now: totals to zero, a throttle or traffic suspension undone (the
        request itself is in the audit log; the undoing is written there too)."""
        self._plan_row(name)
        table.start_period(self.db, name, periods.iso(self.clock()))
        self.quotas.enforce(name, rolled=True)
        return self.usage(name)
