"""The customer's forwards (issue 19): the port block recorded with a sale, the customer's scope
over the NAT service (every refusal changes nothing), the pool and the admin's rules kept off a
block, the block's end with its container; then the routes (CSRF, session) through the Flask test
client. Over a real SQLite database with Incus and the kernel faked."""
import re

import pytest

from incus_api.exceptions import Conflict, Forbidden, NotFound
from incus_api.host import sockets as host_sockets
from incus_api.service.audit import AuditLogService
from incus_api.service.bridge import BridgeAddresses
from incus_api.service.containers import ContainerService
from incus_api.service.customer_forwards import CustomerForwards
from incus_api.service.customers import Customer
from incus_api.service.nat_rules import NatRuleService
from incus_api.service.nat_sync import NatSync
from incus_api.service.ports import PortPolicy, PortPool, PortRequest
from incus_api.service.suspensions import Suspensions
from incus_api.store import audit as audit_table
from incus_api.store import port_blocks as blocks_table
from incus_api.store.db import Database, _statements, migrations
from tests.unit.fake_incus import FakeIncus
from tests.unit.test_nat_orphans import AnyPort, FakeNat, Forgets, NoGuard, add_container

POOL = "30000-30099"
PUBLIC = "203.0.113.7"


class Host:
    """A host with two sold containers: web1 (SSH + a block of 3) and web2 (SSH + a block of 2)."""

    def __init__(self, tmp_path, monkeypatch):
        monkeypatch.setattr(host_sockets, "listeners", lambda protocol: {})
        self.db = Database(tmp_path / "forwards.sqlite3")
        self.db.migrate()
        self.incus, self.nat = FakeIncus(), FakeNat()
        self.config = {"PORT_POOL": POOL, "PUBLIC_HOST": PUBLIC}
        self.rules = NatRuleService(self.nat, self.db, BridgeAddresses(self.incus, "incusbr0"), NoGuard(), AnyPort())
        self.pool = PortPool(self.config, PortPolicy({}))
        self.suspensions = Suspensions(self.db, self.incus)
        self.forwards = CustomerForwards(self.rules, self.suspensions, self.config)
        self.sync = NatSync(self.rules, audit_log=AuditLogService(self.db, {}))
        self.sold = {}
        self.sell("web1", "10.10.10.5", "uuid-a", 3)
        self.sell("web2", "10.10.10.6", "uuid-b", 2)

    def sell(self, name, address, uuid, count):
        """What a sale with ssh_port=auto and ports=count writes (Provisioner's requests)."""
        add_container(self.incus, name, address, uuid)
        rules = self.rules.add_many(name, [PortRequest(container_port=22),
                                           PortRequest(count=count, protocols=("tcp", "udp"), block=True)],
                                    pool=self.pool)
        self.sold[name] = {rule["protocol"] + ("-ssh" if rule["container_port"] == 22 else ""): rule for rule in rules}
        return rules

    def customer(self, name="web1", uuid=None):
        return Customer(name=name, instance_uuid=uuid or self.incus.by_name[name]["config"]["volatile.uuid"],
                        session_hash="h")

    def state(self):
        """Every rule and block as stored, and the kernel's rules: what a refusal must leave alone."""
        return (self.rules.list_all(), [tuple(row) for row in blocks_table.of_containers(self.db)], self.nat.tagged())


@pytest.fixture
def host(tmp_path, monkeypatch):
    return Host(tmp_path, monkeypatch)


def test_a_sale_records_its_block_and_the_customer_sees_block_and_ssh(host):
    ssh, tcp = host.sold["web1"]["tcp-ssh"], host.sold["web1"]["tcp"]
    assert (ssh["host_port"], tcp["host_port"], tcp["host_port_end"]) == (30000, 30001, 30003)
    assert host.rules.block_of("web1", "uuid-a") == {"start": 30001, "end": 30003, "count": 3}
    assert host.rules.block_of("web2") == {"start": 30005, "end": 30006, "count": 2}

    listed = host.forwards.forwards(host.customer())
    assert listed["public_host"] == PUBLIC
    assert listed["port_block"] == {"start": 30001, "end": 30003, "count": 3, "free": {"tcp": [], "udp": []}}
    shown = {(rule["kind"], rule["protocol"], rule["public"], rule["editable"]) for rule in listed["forwards"]}
    assert shown == {("ssh", "tcp", f"{PUBLIC}:30000", False), ("block", "tcp", f"{PUBLIC}:30001-30003", True),
                     ("block", "udp", f"{PUBLIC}:30001-30003", True)}
    assert all("container_ip" not in rule for rule in listed["forwards"])  # nothing but what the customer needs
    # another container's rules are not there
    assert {rule["id"] for rule in listed["forwards"]}.isdisjoint(rule["id"] for rule in host.sold["web2"].values())


def test_the_customer_points_a_block_port_elsewhere_deletes_it_and_adds_it_again(host):
    customer = host.customer()
    tcp = host.sold["web1"]["tcp"]
    deleted = host.forwards.delete(customer, tcp["id"])
    assert deleted["public"] == f"{PUBLIC}:30001-30003" and tcp["id"] not in dict(host.nat.tagged())
    assert host.forwards.forwards(customer)["port_block"]["free"] == {"tcp": [30001, 30002, 30003], "udp": []}

    rule = host.forwards.add(customer, 30002, 80, "tcp")
    assert (rule["host_port"], rule["container_port"], rule["protocol"], rule["kind"]) == (30002, 80, "tcp", "block")
    assert rule["public"] == f"{PUBLIC}:30002"
    assert host.nat.destinations()[rule["id"]] == "10.10.10.5"  # in the kernel, to web1's address
    host.forwards.delete(customer, rule["id"])
    again = host.forwards.add(customer, 30002, 8080, "tcp")
    assert again["container_port"] == 8080
    # the block stays web1's all along, and the pool never offers its ports
    assert host.rules.block_of("web1") == {"start": 30001, "end": 30003, "count": 3}
    assert host.pool.free_block(host.db.connection, 1) == (30007, 30007)  # web2 has 30004-30006


def refused(host, call, error, words):
    before = host.state()
    with pytest.raises(error) as raised:
        call()
    assert re.search(words, raised.value.message), raised.value.message
    assert host.state() == before, "a refusal changed something"
    return raised.value


def test_every_refused_add_changes_nothing(host):
    customer = host.customer()
    host.forwards.delete(customer, host.sold["web1"]["tcp"]["id"])  # 30001-30003/tcp free for the customer
    outside = refused(host, lambda: host.forwards.add(customer, 30005, 80, "tcp"), Forbidden,
                      r"30005 is not in your port block \(30001-30003\)")
    assert outside.http_status == 403 and "web2" not in outside.message  # another's block: not named
    refused(host, lambda: host.forwards.add(customer, 30099, 80, "tcp"), Forbidden, "not in your port block")
    ssh = refused(host, lambda: host.forwards.add(customer, 30000, 2222, "tcp"), Forbidden, "30000 is your SSH port")
    assert ssh.http_status == 403
    # udp: every port of the block forwards it already (the sale's range rule)
    full = refused(host, lambda: host.forwards.add(customer, 30002, 53, "udp"), Conflict,
                   "All 3 ports of your block already forward udp")
    assert full.http_status == 409

    host.forwards.add(customer, 30001, 80, "tcp")
    refused(host, lambda: host.forwards.add(customer, 30001, 81, "tcp"), Conflict,
            r"30001/tcp already forwards to port 80 of your container \(rule \d+\): delete that rule first")
    host.forwards.add(customer, 30002, 81, "tcp")
    host.forwards.add(customer, 30003, 82, "tcp")
    refused(host, lambda: host.forwards.add(customer, 30003, 83, "tcp"), Conflict,
            "All 3 ports of your block already forward tcp")
    assert len([r for r in host.forwards.forwards(customer)["forwards"] if r["protocol"] == "tcp"]) == 4  # 3 + SSH


def test_every_refused_delete_changes_nothing_and_another_containers_rule_is_unknown(host):
    customer = host.customer()
    other = host.sold["web2"]["tcp"]["id"]
    unknown = refused(host, lambda: host.forwards.delete(customer, other), NotFound, f"NAT rule {other} does not exist")
    none = refused(host, lambda: host.forwards.delete(customer, 999), NotFound, "NAT rule 999 does not exist")
    assert unknown.http_status == none.http_status == 404 and unknown.template == none.template  # the same answer
    refused(host, lambda: host.forwards.delete(customer, 2**70), NotFound, "does not exist")
    refused(host, lambda: host.forwards.delete(customer, host.sold["web1"]["tcp-ssh"]["id"]), Forbidden, "SSH port")

    seller, _ = host.rules.add("web1", 30050, 3306, "tcp")  # the seller's own rule for web1, outside the block
    kinds = {rule["id"]: rule["kind"] for rule in host.forwards.forwards(customer)["forwards"]}
    assert kinds[seller["id"]] == "provider"
    refused(host, lambda: host.forwards.delete(customer, seller["id"]), Forbidden, "set by your provider")


def test_a_suspended_container_and_a_container_without_block_change_nothing(host):
    customer = host.customer()
    host.suspensions.mark("web1", "uuid-a", "billing")
    refused(host, lambda: host.forwards.delete(customer, host.sold["web1"]["tcp"]["id"]), Conflict, "suspended")
    refused(host, lambda: host.forwards.add(customer, 30001, 80, "tcp"), Conflict, "suspended")
    host.suspensions.clear("web1")

    add_container(host.incus, "plain", "10.10.10.7", "uuid-p")
    host.rules.add_many("plain", [PortRequest(container_port=22)], pool=host.pool)
    plain = host.customer("plain")
    listed = host.forwards.forwards(plain)
    assert listed["port_block"] is None and [rule["kind"] for rule in listed["forwards"]] == ["ssh"]
    refused(host, lambda: host.forwards.add(plain, 30090, 80, "tcp"), Forbidden, "no port block")


def test_a_session_of_an_earlier_instance_of_the_name_reaches_nothing(host):
    stale = host.customer(uuid="uuid-old")
    listed = host.forwards.forwards(stale)
    assert listed["port_block"] is None and listed["forwards"] == []
    refused(host, lambda: host.forwards.delete(stale, host.sold["web1"]["tcp"]["id"]), NotFound, "does not exist")
    # a block the stale session would see (recorded without a UUID) still adds nothing to the new instance
    host.forwards.delete(host.customer(), host.sold["web1"]["tcp"]["id"])
    host.db.execute("UPDATE port_blocks SET instance_uuid = NULL WHERE container_name = 'web1'")
    refused(host, lambda: host.forwards.add(stale, 30001, 80, "tcp"), NotFound, "Container web1 does not exist")


def test_the_pool_and_the_admins_rules_keep_off_a_block_without_rules(host):
    customer = host.customer()
    for rule in (host.sold["web1"]["tcp"], host.sold["web1"]["udp"]):
        host.forwards.delete(customer, rule["id"])
    assert [r["kind"] for r in host.forwards.forwards(customer)["forwards"]] == ["ssh"]  # no rule in the block now
    assert host.pool.free_block(host.db.connection, 1) == (30007, 30007)  # web2 has 30004-30006
    rules = host.sell("web3", "10.10.10.8", "uuid-c", 3)
    assert {(r["host_port"], r["host_port_end"]) for r in rules} == {(30007, 30007), (30008, 30010)}
    with pytest.raises(Conflict) as taken:
        host.rules.add("web3", 30002, 80, "tcp")  # the admin, for another container
    assert "port block 30001-30003 sold with container web1" in taken.value.message
    with pytest.raises(Conflict):
        host.rules.add_many("web3", [PortRequest(host_port=30001, container_port=22)])
    rule, created = host.rules.add("web1", 30002, 80, "tcp")  # the admin, for the block's container
    assert created and rule["container_name"] == "web1"


def test_the_services_delete_drops_the_block_and_a_sync_releases_one_of_a_vanished_instance(host):
    containers = ContainerService(host.incus, None, None, None, host.rules, Forgets(), host.suspensions)
    containers.delete("web1")
    assert host.rules.block_of("web1") is None
    assert host.pool.free_block(host.db.connection, 4) == (30000, 30003)

    # web2 deleted behind the service's back: its rules are orphaned (their ports kept), its block released
    host.forwards.delete(host.customer("web2"), host.sold["web2"]["udp"]["id"])
    host.incus.by_name.pop("web2")
    report = host.sync.sync()
    assert report.released and host.rules.block_of("web2") is None
    assert host.rules.orphaned() and host.pool.free_block(host.db.connection, 5) == (30007, 30011)
    (entry,) = [e for e in audit_table.newest(host.db, 50) if e["action"] == "nat_sync.release_block"]
    assert entry["target"] == "web2" and entry["details"]["port_block"] == "30005-30006"
    assert not host.sync.sync().released  # once


def test_a_block_survives_a_sync_of_its_living_container_and_a_failed_kernel_write_takes_it_back(host, monkeypatch):
    assert not host.sync.sync().released and host.rules.block_of("web1") is not None
    add_container(host.incus, "web4", "10.10.10.9", "uuid-d")

    def kernel_refuses(forwards):
        raise RuntimeError("the kernel said no")

    monkeypatch.setattr(host.nat, "add_many", kernel_refuses)
    with pytest.raises(RuntimeError):
        host.rules.add_many("web4", [PortRequest(count=2, protocols=("tcp", "udp"), block=True)], pool=host.pool)
    assert host.rules.block_of("web4") is None and host.rules.list_for("web4") == []


def test_containers_sold_before_get_the_block_their_sale_wrote(tmp_path):
    db = Database(tmp_path / "old.sqlite3")
    for version, path in migrations():
        if version >= 14:
            break
        with db.transaction() as conn:
            for statement in _statements(path.read_text()):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
    rows = [  # id, container, host ports, container port, protocol, uuid, orphaned
        (1, "a", 20000, 20000, 22, "tcp", "u1", None), (2, "a", 20001, 20003, 20001, "tcp", "u1", None),
        (3, "a", 20001, 20003, 20001, "udp", "u1", None), (4, "a", 21000, 21000, 21000, "tcp", "u1", None),
        (5, "a", 21000, 21000, 21000, "udp", "u1", None),  # the seller's pair, after the sale's: not the block
        (6, "b", 20010, 20011, 20010, "tcp", None, None), (7, "b", 20010, 20011, 20010, "udp", None, None),
        (8, "c", 20020, 20021, 20020, "tcp", "u3", None), (9, "c", 20020, 20021, 20020, "udp", "u3", "2026-01-01"),
        (10, "d", 20030, 20031, 20030, "tcp", "u4", None),  # its udp rule was deleted: no block
        (12, "e", 20040, 20041, 20041, "tcp", "u5", None), (13, "e", 20040, 20041, 20041, "udp", "u5", None),
    ]
    for row in rows:
        db.execute("INSERT INTO nat_rules (id, container_name, host_port, host_port_end, container_port, protocol,"
                   " container_ip, instance_uuid, orphaned_at) VALUES (?, ?, ?, ?, ?, ?, '10.0.0.2', ?, ?)",
                   (row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]))
    assert db.migrate() == [version for version, _ in migrations() if version >= 14]
    blocks = [(row["container_name"], row["instance_uuid"], row["first_port"], row["last_port"])
              for row in blocks_table.of_containers(db)]
    assert blocks == [("a", "u1", 20001, 20003), ("b", None, 20010, 20011)]


# -- the routes --------------------------------------------------------------------------------

@pytest.fixture
def panel(app, host, monkeypatch):
    """The app with the customer's forwards over the faked host; the cookie ``good-session-...``
    is web1's customer."""
    services = app.extensions["incus_api"].services
    monkeypatch.setattr(services, "customer_forwards", host.forwards)
    session = "good-session-" + "x" * 20
    monkeypatch.setattr(services.customers, "session",
                        lambda value: host.customer() if value == session else None)
    return session


def csrf_token(client):
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def signed_in(client, session):
    client.set_cookie("customer_session", session, path="/customer")
    return {"X-CSRFToken": csrf_token(client), "Accept": "application/json", "Accept-Language": "en"}


def test_the_routes_list_add_and_delete_for_the_sessions_container_only(app, client, host, panel):
    headers = signed_in(client, panel)
    listed = client.get("/customer/forwards", headers=headers).get_json()
    assert listed["status"] == "success" and listed["port_block"]["start"] == 30001
    tcp = host.sold["web1"]["tcp"]["id"]
    deleted = client.delete(f"/customer/forwards/{tcp}", headers=headers)
    assert deleted.status_code == 200 and deleted.get_json()["rule"]["id"] == tcp
    added = client.post("/customer/forwards", headers=headers, data={
        "host_port": "30002", "container_port": "80", "protocol": "TCP", "name": "web2"})  # name: never read
    body = added.get_json()
    assert added.status_code == 200, body
    assert body["rule"]["public"] == f"{PUBLIC}:30002" and body["message"] == f"{PUBLIC}:30002/tcp now forwards to port 80 of your container"
    assert {r["id"] for r in host.rules.list_for("web2")} == {r["id"] for r in host.sold["web2"].values()}
    assert host.nat.destinations()[body["rule"]["id"]] == "10.10.10.5"
    audit = audit_table.newest(app.extensions["incus_api"].db, 10)
    assert [(e["actor"], e["action"]) for e in audit[:2]] == [("customer:web1", "customer.add_forward"),
                                                              ("customer:web1", "customer.delete_forward")]
    assert audit[0]["details"] == {"host_port": "30002", "container_port": "80", "protocol": "TCP"}


def test_the_routes_refuse_with_clear_4xx_and_change_nothing(client, host, panel):
    headers = signed_in(client, panel)
    before = host.state()
    answers = {
        "outside": client.post("/customer/forwards", headers=headers,
                               data={"host_port": "30005", "container_port": "80", "protocol": "tcp"}),
        "ssh": client.post("/customer/forwards", headers=headers,
                           data={"host_port": "30000", "container_port": "80", "protocol": "tcp"}),
        "duplicate": client.post("/customer/forwards", headers=headers,
                                 data={"host_port": "30001", "container_port": "80", "protocol": "udp"}),
        "other": client.delete(f"/customer/forwards/{host.sold['web2']['tcp']['id']}", headers=headers),
        "huge": client.delete("/customer/forwards/99999999999999999999999", headers=headers),
        "bad_port": client.post("/customer/forwards", headers=headers,
                                data={"host_port": "30001", "container_port": "65536", "protocol": "tcp"}),
        "bad_protocol": client.post("/customer/forwards", headers=headers,
                                    data={"host_port": "30001", "container_port": "80", "protocol": "sctp"}),
        "missing": client.post("/customer/forwards", headers=headers, data={"host_port": "30001"}),
    }
    codes = {key: answer.status_code for key, answer in answers.items()}
    assert codes == {"outside": 403, "ssh": 403, "duplicate": 409, "other": 404, "huge": 404, "bad_port": 400,
                     "bad_protocol": 400, "missing": 400}, {k: a.get_json() for k, a in answers.items()}
    for answer in answers.values():
        assert answer.get_json()["status"] != "success" and answer.get_json()["message"]
    assert "web2" not in answers["outside"].get_json()["message"] + answers["other"].get_json()["message"]
    assert host.state() == before


def test_no_csrf_token_is_400_and_no_session_is_401(client, host, panel):
    headers = signed_in(client, panel)
    before = host.state()
    no_token = {key: value for key, value in headers.items() if key != "X-CSRFToken"}
    tcp = host.sold["web1"]["tcp"]["id"]
    assert client.delete(f"/customer/forwards/{tcp}", headers=no_token).status_code == 400
    assert client.post("/customer/forwards", headers=no_token,
                       data={"host_port": "30002", "container_port": "80", "protocol": "tcp"}).status_code == 400

    client.delete_cookie("customer_session", path="/customer")
    for answer in (client.get("/customer/forwards", headers=headers),
                   client.delete(f"/customer/forwards/{tcp}", headers=headers),
                   client.post("/customer/forwards", headers=headers,
                               data={"host_port": "30002", "container_port": "80", "protocol": "tcp"})):
        assert answer.status_code == 401 and answer.get_json()["status"] == "error", answer.get_data(as_text=True)
    client.set_cookie("customer_session", "another-session-" + "y" * 20, path="/customer")
    assert client.get("/customer/forwards", headers=headers).status_code == 401
    assert host.state() == before


def test_the_partial_carries_its_own_texts_and_urls(app):
    with app.test_request_context("/customer"):
        from flask import render_template_string

        html = render_template_string('{% include "_customer_forwards.html" %}')
    assert 'data-url="/customer/forwards"' in html and 'data-delete-url="/customer/forwards/__ID__"' in html
    assert 'src="/static/js/customer-forwards.js"' in html and "<script>" not in html
