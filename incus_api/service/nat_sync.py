"""Reconciling the kernel with the DB: ``nat sync``, at start-up, after a start, and periodically.

Repairs whatever drifted: a reboot flushed the kernel, someone deleted a rule or the FORWARD accept
rules by hand, Incus assigned the container another address (an admin changed the pinned
``ipv4.address``). The address always comes from Incus: whatever a container does to its own
interfaces changes nothing here.

And no port outlives its container: a rule whose instance Incus no longer lists (deleted outside
the service, ``incus delete -f``), or lists under its name with another ``volatile.uuid`` (deleted
and made again), is orphaned at the first pass that sees it: out of the kernel, never pointed at
whoever gets the address next, kept in the DB (its host ports stay taken) until the seller deletes
it; an audit entry (actor ``system``) says so. Only a complete instance list from Incus orphans
anything: while Incus cannot answer, every rule stays as it is. The rules are read before Incus
is asked, and a rule is written only for a container Incus already lists, so a container created
meanwhile is never taken for a vanished one; a container this service is deleting (``leaving``)
has its rules deleted by that delete, not orphaned.

A port block (``ports=N``) of an instance that is gone is released at the same pass: its ports
that a rule still forwards stay taken by that orphaned rule, the others are free again (nothing
forwards them, and the customer they were sold to is gone with the container).
"""
import logging
from dataclasses import dataclass, field

from ..exceptions import AppError
from ..store import nat_rules as rules_table
from ..store import port_blocks as blocks_table
from .nat_rules import forward_of
from .suspensions import instance_uuid

log = logging.getLogger(__name__)

DELETED = "deleted"  # Incus lists no container of the rule's name
REPLACED = "replaced"  # it lists one under that name, another instance (another volatile.uuid)


def vanished(rows, found):
    """``{rule id: DELETED or REPLACED}`` for the rules (rows) whose instance is gone, judged by
    ``found`` (``{name: instance}`` as Incus lists them); nothing when ``found`` is None (Incus
    could not say). A rule without a recorded UUID (made before rules recorded theirs) belongs to
    whatever instance has its name."""
    if found is None:
        return {}
    gone = {}
    for row in rows:
        instance = found.get(row["container_name"])
        if instance is None:
            gone[row["id"]] = DELETED
        elif not same_instance(row, instance):
            gone[row["id"]] = REPLACED
    return gone


def same_instance(row, instance):
    """Whether the rule ``row`` was made for ``instance`` (either UUID unknown: yes)."""
    uuid = instance_uuid(instance)
    return None in (row["instance_uuid"], uuid) or row["instance_uuid"] == uuid


@dataclass
class SyncReport:
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    readdressed: list = field(default_factory=list)
    guarded: list = field(default_factory=list)
    forward_accept: list = field(default_factory=list)
    orphaned: list = field(default_factory=list)  # rule ids orphaned by this pass
    released: list = field(default_factory=list)  # port blocks of gone instances released by this pass

    @property
    def changed(self):
        return bool(self.added or self.removed or self.readdressed or self.guarded or self.forward_accept
                    or self.orphaned or self.released)

    def as_dict(self):
        return {"added": self.added, "removed": self.removed, "readdressed": self.readdressed,
                "guarded": self.guarded, "forward_accept": self.forward_accept, "orphaned": self.orphaned,
                "released": [_block(row) for row, _ in self.released]}


class NatSync:
    def __init__(self, nat_rules, audit_log=None):
        self.nat_rules = nat_rules
        self.nat = nat_rules.nat
        self.db = nat_rules.db
        self.addresses = nat_rules.addresses
        self.nic_guard = nat_rules.nic_guard
        self.audit_log = audit_log

    def sync(self, container_name=None):
        """Make the kernel's rules equal to the DB's live rules: orphan those whose instance is
        gone, add missing rules, remove rules tagged as ours that the DB does not have live (or has
        differently), and point rules at the address Incus assigned. Rules not tagged as ours are
        never touched. Limited to one container when named."""
        report = SyncReport()
        names = None if container_name is None else [container_name]
        # The rules before Incus's list: each was written while Incus listed its container, so
        # one missing from the list was deleted since (not yet created is impossible).
        before = rules_table.of_containers(self.db, names, live=True)
        blocks = blocks_table.of_containers(self.db, names)
        # Ask Incus before taking the NAT lock: other requests keep going meanwhile.
        found = self._assigned_addresses(before, report, {row["container_name"] for row in blocks})
        listed = None if found is None else {name: instance for name, (instance, _) in found.items()}
        gone = vanished(before, listed)
        gone_blocks = vanished(blocks, listed)
        orphans = []
        with self.nat_rules.lock:
            with self.db.transaction() as conn:
                leaving = set(self.nat_rules.leaving)  # this service is deleting them, rules and all
                by_id = {row["id"]: row for row in before}
                marked = set(rules_table.orphan(conn, [rule_id for rule_id in gone
                                                       if by_id[rule_id]["container_name"] not in leaving]))
                orphans = [(by_id[rule_id], gone[rule_id]) for rule_id in sorted(marked)]
                for block in blocks:
                    if block["container_name"] in leaving:
                        continue
                    if block["id"] in gone_blocks:
                        blocks_table.delete(conn, block["id"])
                        report.released.append((block, gone_blocks[block["id"]]))
                    elif block["instance_uuid"] is None and listed and block["container_name"] in listed \
                            and instance_uuid(listed[block["container_name"]]):
                        blocks_table.bind(conn, block["id"], instance_uuid(listed[block["container_name"]]))
                wanted = {}
                for row in rules_table.of_containers(conn, names, live=True):
                    if row["container_name"] in leaving:
                        continue
                    instance, assigned = (found or {}).get(row["container_name"], (None, None))
                    if instance is not None and not same_instance(row, instance):
                        assigned = None  # a rule newer than the list: its instance is not the one listed
                    elif instance is not None and row["instance_uuid"] is None and instance_uuid(instance):
                        rules_table.bind(conn, row["id"], instance_uuid(instance))
                    address = assigned or row["container_ip"]
                    if address != row["container_ip"]:
                        rules_table.readdress(conn, row["id"], address)
                        report.readdressed.append({"rule_id": row["id"], "container": row["container_name"],
                                                   "from": row["container_ip"], "to": address})
                    wanted[row["id"]] = forward_of(row, container_ip=address)
                # A named sync touches the kernel rules of that name's rows only (orphaned included).
                scope = None if names is None else {row["id"] for row in rules_table.of_containers(conn, names)}
            report.orphaned = [row["id"] for row, _ in orphans]

            # The kernel after the commit, under the NAT lock: no change of the rows comes between.
            in_kernel = {}
            for rule_id, forward in self.nat.tagged():
                in_kernel.setdefault(rule_id, []).append(forward)
            for rule_id, forwards in in_kernel.items():
                if scope is not None and rule_id not in scope:
                    continue  # another container's rule, or nobody's: left to a full sync
                if rule_id not in wanted or forwards != [wanted[rule_id]]:
                    self.nat.remove_tagged(rule_id)
                    report.removed.append(rule_id)
            missing = [forward for rule_id, forward in wanted.items() if in_kernel.get(rule_id) != [forward]]
            self.nat.add_many(missing)
            report.added.extend(forward.rule_id for forward in missing)
            if wanted:
                report.forward_accept = self.nat_rules.ensure_forward_accept()
        self._record(report, container_name, orphans)
        return report

    def _assigned_addresses(self, rows, report, more_names=()):
        """``{name: (instance, address or None)}`` of the rules' containers that Incus lists, or
        None when Incus could not answer (the rules then keep their recorded addresses and none
        is orphaned). The NICs of those whose rules were made for them are guarded (pinned and
        filtered) on the way, e.g. after an upgrade from a version that did not. ``more_names``:
        containers to look for besides the rules' (those of the port blocks)."""
        names = {row["container_name"] for row in rows} | set(more_names)
        if not names:
            return {}
        try:
            found = self.addresses.addresses_of(names)
        except AppError as exc:
            log.warning("NAT sync: container addresses unavailable (%s); rules keep their recorded ones", exc.message)
            return None
        for name, (instance, address) in found.items():
            if not address or not any(row["container_name"] == name and same_instance(row, instance) for row in rows):
                continue
            try:
                if self.nic_guard.guard(name, instance, address):
                    report.guarded.append(name)
            except AppError as exc:
                log.warning("NAT sync: could not guard the NIC of %s: %s", name, exc.message)
        return found

    def _record(self, report, container_name, orphans):
        if not report.changed:
            return
        log.info("NAT sync%s: %s", f" ({container_name})" if container_name else "", report.as_dict())
        for block, reason in report.released:
            log.warning("NAT sync: container %s was %s outside this service: its port block %s is released",
                        block["container_name"], reason, _block(block))
        for (name, reason), rows in _by_container(orphans).items():
            log.warning("NAT sync: container %s was %s outside this service: its NAT rules %s are orphaned "
                        "(out of the kernel, their host ports kept until deleted)", name, reason,
                        [row["id"] for row in rows])
        if self.audit_log is None:
            return
        for change in report.readdressed:
            self.audit_log.write("system", "nat_sync.readdress", target=change["container"], details=change)
        for name in report.guarded:
            self.audit_log.write("system", "nat_sync.guard", target=name, details=self.nic_guard.security)
        for (name, reason), rows in _by_container(orphans).items():
            self.audit_log.write("system", "nat_sync.orphan", target=name, details={
                "reason": reason, "rules": [row["id"] for row in rows], "instance_uuid": rows[0]["instance_uuid"],
                "address": rows[0]["container_ip"],
                "host_ports": [_ports(row) for row in rows]})
        for block, reason in report.released:
            self.audit_log.write("system", "nat_sync.release_block", target=block["container_name"], details={
                "reason": reason, "port_block": _block(block), "instance_uuid": block["instance_uuid"]})

    def follow_restart(self, container_name):
        """After a start/restart: make the container's rules point at its assigned address."""
        if not self.nat_rules.has_rules(container_name):
            return None
        return self.sync(container_name)


def _by_container(orphans):
    """``{(container, reason): [rows]}`` of ``[(row, reason)]``."""
    grouped = {}
    for row, reason in orphans:
        grouped.setdefault((row["container_name"], reason), []).append(row)
    return grouped


def _ports(row):
    ports = str(row["host_port"]) if row["host_port"] == row["host_port_end"] else f"{row['host_port']}-{row['host_port_end']}"
    return f"{ports}/{row['protocol']}"


def _block(row):
    return f"{row['first_port']}-{row['last_port']}"
