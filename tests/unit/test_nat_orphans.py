"""No port outlives its container (issue 18, point 6): the NAT sync's orphaning of rules whose
instance is gone, over a real SQLite database with Incus and the kernel faked."""
import pytest

from incus_api.exceptions import Conflict, IncusUnavailable
from incus_api.service.audit import AuditLogService
from incus_api.service.bridge import BridgeAddresses
from incus_api.service.containers import ContainerService
from incus_api.service.nat_rules import NatRuleService
from incus_api.service.nat_sync import DELETED, REPLACED, NatSync, vanished
from incus_api.service.suspensions import Suspensions
from incus_api.store import audit as audit_table
from incus_api.store import nat_rules as rules_table
from incus_api.store.db import Database
from tests.unit.fake_incus import BRIDGE, FakeIncus


class FakeNat:
    """The kernel's tagged DNAT rules: ``{rule id: [Forward]}``."""

    def __init__(self):
        self.rules = {}

    def add(self, forward):
        self.rules.setdefault(forward.rule_id, []).append(forward)

    def add_many(self, forwards):
        for forward in forwards:
            self.add(forward)

    def remove(self, forward):
        if forward in self.rules.get(forward.rule_id, []):
            self.rules[forward.rule_id].remove(forward)
            if not self.rules[forward.rule_id]:
                del self.rules[forward.rule_id]
            return True
        return False

    def remove_tagged(self, rule_id):
        self.rules.pop(rule_id, None)

    def tagged(self):
        return [(rule_id, forward) for rule_id, forwards in sorted(self.rules.items()) for forward in forwards]

    def ensure_forward_accept(self):
        return []

    def destinations(self):
        return {rule_id: forwards[0].container_ip for rule_id, forwards in self.rules.items()}


class NoGuard:
    security = {}

    def __init__(self):
        self.guarded = []

    def guard(self, name, instance, address=None):
        self.guarded.append((name, instance["config"]["volatile.uuid"]))
        return False


class AnyPort:
    def check(self, host_port, host_port_end, protocol):
        pass


class Forgets:
    def forget(self, name):
        pass


def add_container(incus, name, address, uuid):
    return incus.add(name, volatile_uuid=uuid,
                     devices={"eth0": {"type": "nic", "network": BRIDGE, "name": "eth0", "ipv4.address": address}})


@pytest.fixture
def host(tmp_path):
    db = Database(tmp_path / "nat.sqlite3")
    db.migrate()
    incus, nat, guard = FakeIncus(), FakeNat(), NoGuard()
    rules = NatRuleService(nat, db, BridgeAddresses(incus, BRIDGE), guard, AnyPort())
    sync = NatSync(rules, audit_log=AuditLogService(db, {}))
    add_container(incus, "web1", "10.10.10.5", "uuid-a")
    return rules, sync, incus, nat, db, guard


def audit_of(db, action):
    return [entry for entry in audit_table.newest(db, 100) if entry["action"] == action]


def test_a_rule_whose_container_vanished_is_orphaned_at_the_first_pass(host):
    rules, sync, incus, nat, db, _ = host
    rule, _ = rules.add("web1", 20080, 80, "tcp")
    assert nat.destinations() == {rule["id"]: "10.10.10.5"} and not rule["orphaned"]
    assert sync.sync().orphaned == []

    incus.by_name.pop("web1")  # incus delete -f, behind the service's back
    report = sync.sync()
    assert report.orphaned == [rule["id"]] and report.removed == [rule["id"]]
    assert nat.rules == {}
    (listed,) = rules.list_all()
    assert listed["orphaned"] is True and listed["orphaned_at"] and "instance_uuid" not in listed
    assert rules.orphaned() == [listed] and rules.list_for("web1") == [] and rules.counts() == {}
    (entry,) = audit_of(db, "nat_sync.orphan")
    assert entry["actor"] == "system" and entry["target"] == "web1"
    assert entry["details"] == {"reason": DELETED, "rules": [rule["id"]], "instance_uuid": "uuid-a",
                                "address": "10.10.10.5", "host_ports": ["20080/tcp"]}

    again = sync.sync()  # stays orphaned, out of the kernel, and is not recorded twice
    assert again.orphaned == [] and not again.changed and nat.rules == {}
    assert len(audit_of(db, "nat_sync.orphan")) == 1


def test_a_container_made_again_under_its_name_never_gets_the_old_rules(host):
    rules, sync, incus, nat, db, guard = host
    rule, _ = rules.add("web1", 20080, 80, "tcp")
    incus.by_name.pop("web1")
    add_container(incus, "web1", "10.10.10.5", "uuid-b")  # same name, same address, another instance
    guard.guarded.clear()

    report = sync.sync()
    assert report.orphaned == [rule["id"]] and nat.rules == {}
    assert guard.guarded == []  # the new instance is not this service's to guard for an old rule
    assert audit_of(db, "nat_sync.orphan")[0]["details"]["reason"] == REPLACED
    assert sync.follow_restart("web1") is None  # the new instance has no rules
    assert sync.sync(container_name="web1").added == [] and nat.rules == {}

    # Its ports stay taken: by the new instance of the name too, which is not told it "exists".
    with pytest.raises(Conflict) as refused:
        rules.add("web1", 20080, 80, "tcp")
    assert "orphaned rule" in refused.value.message and str(rule["id"]) in refused.value.message


def test_nothing_is_orphaned_while_incus_cannot_answer(host, monkeypatch):
    rules, sync, incus, nat, _db, _ = host
    rule, _ = rules.add("web1", 20080, 80, "tcp")
    incus.by_name.pop("web1")

    def down():
        raise IncusUnavailable("Incus is unreachable")

    monkeypatch.setattr(incus, "instances", down)
    nat.rules.clear()  # and the kernel lost it meanwhile (a reboot): it comes back from the DB
    report = sync.sync()
    assert report.orphaned == [] and report.added == [rule["id"]]
    assert nat.destinations() == {rule["id"]: "10.10.10.5"} and not rules.list_all()[0]["orphaned"]

    monkeypatch.undo()  # Incus answers again: now it is known to be gone
    assert sync.sync().orphaned == [rule["id"]] and nat.rules == {}


def test_an_orphaned_rule_keeps_its_ports_until_deleted_and_then_frees_them(host):
    rules, sync, incus, nat, _db, _ = host
    rule, _ = rules.add("web1", 20080, 80, "tcp", host_port_end=20081)
    incus.by_name.pop("web1")
    sync.sync()
    add_container(incus, "web2", "10.10.10.5", "uuid-c")  # the next sale, on the same address

    with pytest.raises(Conflict):
        rules.add("web2", 20081, 22, "tcp")
    assert rules_table.taken_between(rules.db, 20000, 20100) == [(20080, 20081)]

    deleted, kernel_had_it = rules.delete(rule["id"])
    assert deleted["orphaned"] and not kernel_had_it
    moved, created = rules.add("web2", 20081, 22, "tcp")
    assert created and nat.destinations() == {moved["id"]: "10.10.10.5"}
    assert sync.sync().orphaned == []


def test_the_services_own_delete_deletes_the_rules_and_a_sync_meanwhile_orphans_nothing(host):
    rules, sync, incus, nat, db, _ = host
    rule, _ = rules.add("web1", 20080, 80, "tcp")
    reports = []
    incus_delete = incus.delete

    def delete_with_a_sync_right_after(name):
        incus_delete(name)
        reports.append(sync.sync())  # the scheduler's pass, between Incus's delete and the rows'

    incus.delete = delete_with_a_sync_right_after
    containers = ContainerService(incus, None, None, None, rules, Forgets(), Suspensions(db, incus))
    assert containers.delete("web1") == 1
    assert reports[0].orphaned == [] and reports[0].added == []  # neither orphaned nor put back
    assert rules.list_all() == [] and nat.rules == {} and rules.leaving == set()
    assert audit_of(db, "nat_sync.orphan") == []


def test_the_services_delete_of_a_new_container_leaves_the_old_ones_orphans(host):
    rules, sync, incus, nat, db, _ = host
    old, _ = rules.add("web1", 20080, 80, "tcp")
    incus.by_name.pop("web1")
    sync.sync()
    add_container(incus, "web1", "10.10.10.6", "uuid-b")
    new, _ = rules.add("web1", 20090, 80, "tcp")
    assert [r["id"] for r in rules.list_for("web1")] == [new["id"]]

    containers = ContainerService(incus, None, None, None, rules, Forgets(), Suspensions(db, incus))
    assert containers.delete("web1") == 1
    assert [r["id"] for r in rules.list_all()] == [old["id"]] and rules.list_all()[0]["orphaned"]


def test_a_rule_made_before_rules_recorded_their_instance_is_bound_to_the_one_found(host):
    rules, sync, incus, nat, db, _ = host
    with db.transaction() as conn:
        rule_id = rules_table.insert(conn, "web1", 20080, 20080, 80, "tcp", "10.10.10.5")  # no UUID
    assert sync.sync().added == [rule_id]
    assert rules_table.get(db, rule_id)["instance_uuid"] == "uuid-a"

    incus.by_name.pop("web1")
    add_container(incus, "web1", "10.10.10.5", "uuid-b")
    assert sync.sync().orphaned == [rule_id] and nat.rules == {}


def test_a_rule_written_after_incus_was_asked_is_not_taken_for_a_vanished_one(host, monkeypatch):
    """A container created (and given a rule) between the sync's read of the rules and Incus's
    list is missing from that list: its rule must not be orphaned."""
    rules, sync, incus, nat, _db, _ = host
    first, _ = rules.add("web1", 20080, 80, "tcp")
    listed = BridgeAddresses.addresses_of
    made = []

    def list_then_sell(self, names):
        found = listed(self, names)
        add_container(incus, "web2", "10.10.10.7", "uuid-new")  # the sale, right after the list
        made.append(rules.add("web2", 20090, 80, "tcp")[0])
        return found

    monkeypatch.setattr(BridgeAddresses, "addresses_of", list_then_sell)
    report = sync.sync()
    assert report.orphaned == []
    assert nat.destinations() == {first["id"]: "10.10.10.5", made[0]["id"]: "10.10.10.7"}


def test_vanished_judges_only_a_complete_list():
    rows = [{"id": 1, "container_name": "a", "instance_uuid": "u1"},
            {"id": 2, "container_name": "b", "instance_uuid": "u2"},
            {"id": 3, "container_name": "c", "instance_uuid": None},
            {"id": 4, "container_name": "d", "instance_uuid": "u4"}]
    found = {"a": {"config": {"volatile.uuid": "u1"}}, "b": {"config": {"volatile.uuid": "u9"}},
             "c": {"config": {"volatile.uuid": "u3"}}, "d": {"config": {}}}
    assert vanished(rows, found) == {2: REPLACED}
    assert vanished(rows, {}) == {1: DELETED, 2: DELETED, 3: DELETED, 4: DELETED}
    assert vanished(rows, None) == {}
