"""Reconciling the kernel with the DB: ``nat sync``, at start-up, after a start, and periodically.

Repairs whatever drifted: a reboot flushed the kernel, someone deleted a rule or the FORWARD accept
rules by hand, Incus assigned the container another address (an admin changed the pinned
``ipv4.address``). The address always comes from Incus: whatever a container does to its own
interfaces changes nothing here.
"""
import logging
from dataclasses import dataclass, field

from ..exceptions import AppError, BadInput, IncusUnavailable, NotFound
from ..store import nat_rules as rules_table
from .nat_rules import forward_of

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    readdressed: list = field(default_factory=list)
    guarded: list = field(default_factory=list)
    forward_accept: list = field(default_factory=list)

    @property
    def changed(self):
        return bool(self.added or self.removed or self.readdressed or self.guarded or self.forward_accept)

    def as_dict(self):
        return {"added": self.added, "removed": self.removed, "readdressed": self.readdressed,
                "guarded": self.guarded, "forward_accept": self.forward_accept}


class NatSync:
    def __init__(self, nat_rules, audit_log=None):
        self.nat_rules = nat_rules
        self.nat = nat_rules.nat
        self.db = nat_rules.db
        self.addresses = nat_rules.addresses
        self.nic_guard = nat_rules.nic_guard
        self.audit_log = audit_log

    def sync(self, container_name=None):
        """Make the kernel's rules equal to the DB: add missing rules, remove rules tagged as ours
        that the DB does not have (or has differently), and point rules at the address Incus
        assigned. Rules not tagged as ours are never touched. Limited to one container when named."""
        report = SyncReport()
        names = None if container_name is None else [container_name]
        # Ask Incus before taking the NAT lock: other requests keep going meanwhile.
        addresses = self._assigned_addresses({row["container_name"] for row in rules_table.of_containers(self.db, names)},
                                             report)
        with self.nat_rules.lock:
            with self.db.transaction() as conn:
                wanted = {}
                for row in rules_table.of_containers(conn, names):
                    address = addresses.get(row["container_name"]) or row["container_ip"]
                    if address != row["container_ip"]:
                        rules_table.readdress(conn, row["id"], address)
                        report.readdressed.append({"rule_id": row["id"], "container": row["container_name"],
                                                   "from": row["container_ip"], "to": address})
                    wanted[row["id"]] = forward_of(row, container_ip=address)

            # The kernel after the commit, under the NAT lock: no change of the rows comes between.
            in_kernel = {}
            for rule_id, forward in self.nat.tagged():
                in_kernel.setdefault(rule_id, []).append(forward)
            for rule_id, forwards in in_kernel.items():
                if container_name is not None and rule_id not in wanted:
                    continue  # another container's rule, or nobody's: left to a full sync
                if rule_id not in wanted or forwards != [wanted[rule_id]]:
                    self.nat.remove_tagged(rule_id)
                    report.removed.append(rule_id)
            missing = [forward for rule_id, forward in wanted.items() if in_kernel.get(rule_id) != [forward]]
            self.nat.add_many(missing)
            report.added.extend(forward.rule_id for forward in missing)
            if wanted:
                report.forward_accept = self.nat_rules.ensure_forward_accept()
        self._record(report, container_name)
        return report

    def _assigned_addresses(self, names, report):
        """The address Incus assigned to each named container; the NICs of those with forwards
        are guarded (pinned and filtered) on the way, e.g. after an upgrade from a version that
        did not. Containers gone or unreachable keep their recorded address."""
        if not names:
            return {}
        try:
            assigned = self.addresses.addresses_of(names)
        except (NotFound, IncusUnavailable, BadInput) as exc:
            log.warning("NAT sync: container addresses unavailable (%s); rules keep their recorded ones", exc.message)
            return {}
        for name, (instance, address) in assigned.items():
            try:
                if self.nic_guard.guard(name, instance, address):
                    report.guarded.append(name)
            except AppError as exc:
                log.warning("NAT sync: could not guard the NIC of %s: %s", name, exc.message)
        return {name: address for name, (_, address) in assigned.items()}

    def _record(self, report, container_name):
        if not report.changed:
            return
        log.info("NAT sync%s: %s", f" ({container_name})" if container_name else "", report.as_dict())
        if self.audit_log is None:
            return
        for change in report.readdressed:
            self.audit_log.write("system", "nat_sync.readdress", target=change["container"], details=change)
        for name in report.guarded:
            self.audit_log.write("system", "nat_sync.guard", target=name, details=self.nic_guard.security)

    def follow_restart(self, container_name):
        """After a start/restart: make the container's rules point at its assigned address."""
        if not self.nat_rules.has_rules(container_name):
            return None
        return self.sync(container_name)
