"""The sampling pass: the host's counters read and added to the hours and periods in the store.

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
import logging
import threading
from datetime import datetime

from ...store import traffic as table
from ...traffic import periods
from ...traffic.nft_counters import NftError
from ..addresses import assigned_ipv4

log = logging.getLogger(__name__)


class Sampler:
    def __init__(self, db, incus, addresses, counters, quotas, clock, enabled):
        self.db = db
        self.incus = incus
        self.addresses = addresses
        self.counters = counters  # traffic.nft_counters.NftCounters: the kernel's counters
        self.quotas = quotas
        self.clock = clock
        self.enabled = enabled
        self._pass_lock = threading.Lock()  # the counters table's: one pass, or one container mapped, at a time
        self._missing_before = set()  # plans whose container was not in Incus at the last pass

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
            self.quotas.enforce(name, rolled=True)
        for name in table.unenforced_with_quota(self.db):
            self.quotas.enforce(name, rolled=False)
        return {"containers": len(wanted), "added_bytes": added, "kernel_changes": changes}

    def _account(self, snapshot, instances, now):
        """Add the counters' growth to the hour and the period; names whose period rolled over."""
        names = {instance["name"] for instance in instances}
        hour = periods.hour_of(now)
        rolled, added = [], 0
        with self.db.transaction() as conn:
            default_plans(conn, instances, now)
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

    def unmap(self, name):
        """``name``'s address leaves the maps at once (free for the next container); its counters
        stay until the next pass (their last value is the baseline, so a new container of that
        name starts at 0)."""
        if self.enabled:
            with self._pass_lock:
                self._map(name, None)

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


def default_plans(db, instances, now):
    """Plans with the defaults (reset on the day of creation, no quota) for ``instances`` that
    have none."""
    rows = []
    for instance in instances:
        created = _created(instance, now)
        day = periods.default_reset_day(created)
        rows.append((instance["name"], day, periods.iso(max(created, periods.last_reset(day, now)))))
    table.default_plans(db, rows)


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
