"""The sampling pass: the host's counters read and added to the hours and periods in the store.

``sample()`` runs every TRAFFIC_INTERVAL seconds in the scheduler. One pass: list the instances
(one Incus request) and the addresses Incus assigned them; read every kernel counter (one ``nft``
call) and what each running container's veth delivered into it (``/sys``, one file pair each);
add what is new since the last pass to the hour's and the period's totals (one transaction); make
the kernel count the addresses of now (one ``nft`` call, only when something changed); then hold
every quota: throttle or suspend what went over it, put an action undone behind the service's back
in force again while still over, and undo it where a period started again or the quota no longer
holds.

What a pass adds is the counter's growth since the value stored with the last pass, so a service
restart neither loses nor counts twice; a container restart does not touch the host's counters.
When the kernel's counters started again from zero (a reboot, the table flushed: another
``epoch``), a pass adds their whole value: what passed between the last pass and the reset is the
at most one interval's worth that is lost.

Only delivered bytes are billed as received: the forward hook counts a packet before it reaches
the container, also one that the NIC's ingress limit (tc on the host side of its veth) then drops
and one for a container that is stopped. So a pass counts no more received bytes than the host
side of the container's veth transmitted since the last pass (``delivered``): nothing for a
stopped container (it has no veth), what got through for a limited one. A restarted container has
a new veth (new counters): what the old one delivered after the last pass is read from the
kernel's notice of its deletion (``host.links.Departures``). The cap only ever lowers the count:
the veth also carries what comes over the bridge and from the host, which the forward hook never
counts. Sent bytes need no cap: the forward hook sees them after the NIC's egress limit (policed
as they enter the host) and the host's firewall let them through.
"""
import logging
import threading
from datetime import datetime

from ...host.links import HostLinks
from ...store import traffic as table
from ...traffic import periods
from ...traffic.nft_counters import NftError
from ..addresses import assigned_ipv4, bridge_nic

log = logging.getLogger(__name__)


class Sampler:
    def __init__(self, db, incus, addresses, counters, quotas, clock, enabled, links=None):
        self.db = db
        self.incus = incus
        self.addresses = addresses
        self.counters = counters  # traffic.nft_counters.NftCounters: the kernel's counters
        self.links = links or HostLinks()  # host.links: the veths' counters
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
            veths, departed = self._veths(instances)  # after the forward hook's counters: packets pass it first
            now = self.clock()
            rolled, added = self._account(snapshot, instances, now, veths, departed)
            changes = self.counters.apply(snapshot, wanted)
        by_name = {instance["name"]: instance for instance in instances}
        for name in rolled:
            self.quotas.enforce(name, rolled=True, instance=by_name.get(name))
        for name in table.with_quota_or_enforced(self.db):
            if name not in rolled:
                self.quotas.enforce(name, rolled=False, instance=by_name.get(name))
        return {"containers": len(wanted), "added_bytes": added, "kernel_changes": changes}

    def _veths(self, instances):
        """``({name: host.links.Link, None (no veth: stopped) or UNKNOWN}, {key: tx_bytes})``: the
        host side of each instance's veth on the bridge, read now, and the last tx_bytes of the
        veths of the last pass that the kernel deleted since (read after: a veth gone between its
        listing and its read has sent its notice by then)."""
        bridge = self.addresses.bridge
        veths = {}
        for instance in instances:
            veth = host_veth(instance, bridge)
            veths[instance["name"]] = self.links.read(veth) if isinstance(veth, str) else veth
        self.links.drain()
        current = {veth.key for veth in veths.values() if veth is not None and veth is not UNKNOWN}
        last = {row["veth"] for row in table.counters(self.db).values() if row["veth"]} - current
        return veths, {key: self.links.departed(key) for key in last}

    def _account(self, snapshot, instances, now, veths, departed):
        """Add the counters' growth to the hour and the period (received bytes no more than the
        container's veth delivered); names whose period rolled over."""
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
                veth = veths.get(name)
                if veth is not UNKNOWN:
                    new_rx = min(new_rx, delivered(before, veth, departed.get))
                link = None if veth is None or veth is UNKNOWN else veth
                table.save_counter(conn, name, snapshot.epoch, rx, tx, link and link.key, link and link.tx_bytes)
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


class _Unknown:
    def __repr__(self):
        return "UNKNOWN"


UNKNOWN = _Unknown()  # a running instance whose veth Incus did not record: its received bytes are not capped


def host_veth(instance, bridge):
    """The host-side name of ``instance``'s veth on ``bridge`` as Incus recorded it when it
    started the container (``volatile.<nic>.host_name``; never what the container says), None
    when it has none (stopped: Incus clears it), UNKNOWN when it runs and none is recorded."""
    nic_name, _ = bridge_nic(instance, bridge)
    if nic_name is None or instance.get("status") == "Stopped":
        return None
    recorded = (instance.get("config") or {}).get(f"volatile.{nic_name}.host_name")
    if recorded:
        return recorded
    return UNKNOWN if instance.get("status") in ("Running", "Frozen") else None


def delivered(before, veth, departed):
    """What a container's veth transmitted into it since the last pass: ``before`` is its row of
    the last pass (None: not seen yet), ``veth`` its ``Link`` now (None: no veth), ``departed(key)``
    the last tx_bytes of a veth the kernel deleted since (None: not known).

    The same veth as at the last pass: its growth. Another one (the container restarted, or
    started since, or no veth was recorded yet: the first pass after an upgrade): all the new one
    sent (its counters began at zero) plus what the old one sent after the last pass and before it
    went, when its deletion was seen; unseen (the service was not running then), that part counts
    nothing."""
    known = before is not None and before["veth"] is not None
    if known and veth is not None and veth.key == before["veth"]:
        grown = veth.tx_bytes - before["veth_tx_seen"]
        return grown if grown >= 0 else veth.tx_bytes
    total = veth.tx_bytes if veth is not None else 0
    if known:
        last = departed(before["veth"])
        if last is not None and last >= before["veth_tx_seen"]:
            total += last - before["veth_tx_seen"]
    return total


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
