"""The console's pure logic: one-time tokens (hash-only, once, expiry), tickets, the relay's
control messages, idle timeout and end, the audit entry, and the Incus exec request."""
import hashlib
import json
import queue
import threading

import pytest

from incus_api.exceptions import Conflict, Forbidden, Gone, NotFound, TooManyRequests
from incus_api.incus import console as incus_console
from incus_api.service.audit import AuditLogService
from incus_api.service.console import (
    TOKEN_SECONDS,
    ConsoleService,
    Disconnected,
    parse_control,
)
from incus_api.store.db import Database
from tests.unit.fake_incus import FakeIncus


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


class FakeSuspensions:
    def __init__(self):
        self.names = set()

    def is_suspended(self, name, instance=None):
        return name in self.names


class FakeBrowser:
    def __init__(self):
        self.incoming = queue.Queue()
        self.sent = []

    def receive(self, timeout):
        try:
            message = self.incoming.get(timeout=timeout)
        except queue.Empty:
            return None
        if message is Disconnected:
            raise Disconnected()
        return message

    def send(self, data):
        self.sent.append(data)


@pytest.fixture
def parts(tmp_path):
    db = Database(tmp_path / "c.sqlite3")
    db.migrate()
    clock = Clock()
    incus, suspensions = FakeIncus(), FakeSuspensions()
    incus.add("web1")
    incus.add("off1", status="Stopped")
    audit = AuditLogService(db, {})
    service = ConsoleService(incus=incus, db=db, suspensions=suspensions, audit_log=audit,
                             config={"CONSOLE_IDLE_TIMEOUT": 900}, clock=clock, max_sessions=2)
    return service, db, clock, incus, suspensions


def open_count(service, name=None):
    """The console sessions open now (of ``name``'s container)."""
    with service.lock:
        return sum(1 for s in service.sessions.values() if s is not None and (name is None or s.name == name))


def test_a_token_is_stored_only_as_its_hash_and_opens_once(parts):
    service, db, clock, incus, _suspensions = parts
    token, seconds = service.create_token("web1")
    assert seconds == TOKEN_SECONDS == 60
    rows = [dict(row) for row in db.query("SELECT * FROM console_tokens")]
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(rows)
    name, ticket, token_id = service.redeem(token)
    assert name == "web1" and token_id == rows[0]["token_hash"][:12]
    with pytest.raises(Gone):
        service.redeem(token)
    assert service.take_ticket(ticket) == ("web1", f"token:{token_id}", rows[0]["instance_uuid"])
    assert rows[0]["instance_uuid"] == incus.instance_config("web1")["config"]["volatile.uuid"]
    with pytest.raises(Forbidden):
        service.take_ticket(ticket)  # a ticket works once too


def test_a_token_expires_and_unknown_ones_are_refused(parts):
    service, _db, clock, *_ = parts
    token, _ = service.create_token("web1")
    clock.now += TOKEN_SECONDS + 1
    with pytest.raises(Gone):
        service.redeem(token)
    for bad in ("x" * 43, "short", "../../etc", None):
        with pytest.raises(Forbidden):
            service.redeem(bad)


def test_a_link_opens_only_the_instance_it_was_made_for(parts):
    """Deleted and made again under the same name, within the link's minute: the link, and a
    ticket taken before, open nothing on the new container."""
    service, _db, _clock, incus, _suspensions = parts
    token, _ = service.create_token("web1")
    _name, ticket, _id = service.redeem(service.create_token("web1")[0])
    incus.change_state("web1", "stop", force=True)
    incus.delete("web1")
    incus.add("web1")  # made again: another instance, another volatile.uuid
    with pytest.raises(Gone, match="deleted"):
        service.redeem(token)
    name, actor, uuid = service.take_ticket(ticket)
    with pytest.raises(Gone, match="deleted"):
        service.start(name, actor, 80, 24, uuid=uuid)
    assert open_count(service) == 0 and incus.consoles == []
    fresh, _ = service.create_token("web1")  # a new link opens the new container
    assert service.redeem(fresh)[0] == "web1"


def test_suspended_stopped_and_unknown_containers_open_nothing(parts):
    service, _db, _clock, incus, suspensions = parts
    with pytest.raises(Conflict):
        service.create_token("off1")
    with pytest.raises(NotFound):
        service.create_token("nope")
    token, _ = service.create_token("web1")
    suspensions.names.add("web1")
    with pytest.raises(Conflict):
        service.redeem(token)
    suspensions.names.clear()  # not spent by the refusal: it opens once the container may run
    assert service.redeem(token)[0] == "web1"


def run_relay(service, session, browser):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("reason", service.relay(session, browser)))
    thread.start()
    return thread, result


def test_the_relay_passes_input_resizes_and_output_then_ends_with_the_browser(parts):
    service, db, _clock, incus, _s = parts
    session = service.start("web1", "admin:root", 100, 30, client_address="127.0.0.1")
    assert session.console.size == (100, 30) and open_count(service, "web1") == 1
    browser = FakeBrowser()
    thread, result = run_relay(service, session, browser)
    session.console.output.put(b"hello")
    browser.incoming.put(b"cat /etc/secret-file\r")
    browser.incoming.put(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
    browser.incoming.put("not json")
    browser.incoming.put(Disconnected)
    thread.join(timeout=10)
    assert result["reason"] == "closed"
    assert session.console.typed == [b"cat /etc/secret-file\r"] and session.console.sizes == [(120, 40)]
    assert browser.sent == [b"hello"]
    assert incus.ended == [session.console] and open_count(service) == 0
    entry = dict(db.query_one("SELECT * FROM audit_log"))
    details = json.loads(entry["details"])
    assert (entry["actor"], entry["action"], entry["target"], entry["result"]) == ("admin:root", "console.session",
                                                                                   "web1", "closed")
    assert set(details) == {"started", "ended", "end"} and details["end"] == "closed"
    assert "secret-file" not in json.dumps(entry)  # never what was typed


def test_idle_sessions_end_and_the_shell_exiting_ends_the_session(parts):
    service, _db, clock, incus, _s = parts
    session = service.start("web1", "token:abc", 80, 24)
    clock.now += 901  # no input for longer than CONSOLE_IDLE_TIMEOUT
    thread, result = run_relay(service, session, FakeBrowser())
    thread.join(timeout=10)
    assert result["reason"] == "idle" and incus.ended == [session.console]
    session = service.start("web1", "token:abc", 80, 24)
    thread, result = run_relay(service, session, FakeBrowser())
    session.console.output.put(b"")  # the shell ended
    thread.join(timeout=10)
    assert result["reason"] == "exited"


def test_too_many_consoles_and_a_stop(parts):
    service, _db, _clock, incus, _s = parts
    first, second = service.start("web1", "admin:a", 80, 24), service.start("web1", "admin:a", 80, 24)
    with pytest.raises(TooManyRequests):
        service.start("web1", "admin:a", 80, 24)
    service.end_all()
    assert {id(c) for c in incus.ended} == {id(first.console), id(second.console)} and open_count(service) == 0
    with pytest.raises(Conflict):
        service.start("web1", "admin:a", 80, 24)


def test_control_messages():
    assert parse_control('{"type": "resize", "cols": 80, "rows": 24}') == ("resize", 80, 24)
    assert parse_control('{"type": "input", "data": "é"}') == ("input", "é".encode())
    for bad in ('{"type": "resize", "cols": true, "rows": 2}', '{"type": "resize", "cols": -1, "rows": 2}',
                "[]", "{", '{"type": "other"}'):
        assert parse_control(bad) is None


def test_the_incus_exec_request_is_an_interactive_login_shell_with_the_kill_tag():
    body = incus_console.exec_body(5000, 1, "abc")
    assert body["interactive"] is True and body["wait-for-websocket"] is True
    assert (body["width"], body["height"]) == (incus_console.MAX_COLUMNS, incus_console.MIN_SIZE)
    assert body["environment"]["INCUS_API_EXEC"] == "abc" and body["environment"]["TERM"] == "xterm-256color"
    assert "bash -l" in body["command"][-1] and "sh -l" in body["command"][-1]
    assert json.loads(incus_console.resize_message(120, 40)) == {
        "command": "window-resize", "args": {"width": "120", "height": "40"}}


# -- CONSOLE_PER_CONTAINER (issue 18) -----------------------------------------------------------------

@pytest.fixture
def roomy(parts):
    """The same parts with 16 consoles on the host, 2 (the default) per container."""
    service, db, clock, incus, suspensions = parts
    incus.add("web2")
    service = ConsoleService(incus=incus, db=db, suspensions=suspensions, audit_log=service.audit_log,
                             config={"CONSOLE_IDLE_TIMEOUT": 900}, clock=clock)
    assert service.per_container == 2 and service.max_sessions == 16
    return service, incus


def test_at_most_two_consoles_on_one_container(roomy):
    service, incus = roomy
    first, _second = service.start("web1", "admin:a", 80, 24), service.start("web1", "token:abc", 80, 24)
    with pytest.raises(TooManyRequests) as refused:
        service.start("web1", "admin:a", 80, 24)
    assert refused.value.http_status == 429 and refused.value.params == {"count": 2, "name": "web1"}
    assert "web1" in refused.value.to_dict()["message"]
    assert service.start("web2", "admin:a", 80, 24).name == "web2"  # the limit is per container
    service.end(first, "closed")
    assert service.start("web1", "admin:a", 80, 24).name == "web1"  # a place freed
    assert len(incus.consoles) == 4


def test_a_full_container_refuses_links_and_keeps_the_unspent_ones(roomy):
    """The link is refused when made; one made before is refused on opening without being spent,
    and a ticket taken before is refused and kept: both open once a place is free."""
    service, _incus = roomy
    early = service.create_token("web1")[0]
    _name, ticket, _id = service.redeem(service.create_token("web1")[0])
    sessions = [service.start("web1", "admin:a", 80, 24) for _ in range(2)]
    with pytest.raises(TooManyRequests):
        service.create_token("web1")
    with pytest.raises(TooManyRequests):
        service.redeem(early)
    with pytest.raises(TooManyRequests):
        service.check_open("web1")  # what the admin's console page and the WebSocket's guard ask
    with pytest.raises(TooManyRequests):
        service.take_ticket(ticket)
    service.check_open("web2")
    service.end(sessions[0], "closed")
    assert service.redeem(early)[0] == "web1"
    assert service.take_ticket(ticket)[0] == "web1"


def test_a_console_that_fails_to_start_gives_its_place_back(roomy):
    service, incus = roomy
    service.start("web1", "admin:a", 80, 24)
    incus.change_state("web1", "stop", force=True)
    for _ in range(3):
        with pytest.raises(Conflict):
            service.start("web1", "admin:a", 80, 24)
    assert service.open_on == {"web1": 1}
    incus.change_state("web1", "start")
    service.start("web1", "admin:a", 80, 24)
    assert service.open_on == {"web1": 2}
    service.end_all()
    assert service.open_on == {} and service.sessions == {}


def test_console_per_container_is_a_setting():
    from incus_api.config import load_config

    assert load_config(environ={})["CONSOLE_PER_CONTAINER"] == 2
    assert load_config(environ={"CONSOLE_PER_CONTAINER": "5"})["CONSOLE_PER_CONTAINER"] == 5
