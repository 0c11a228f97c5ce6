"""The customer's access (issue 19), pure logic over a real SQLite and the fake Incus: a link is
stored only as its hash, signs in once within its five minutes and only for the instance it was
made for; a session is stored as its hash, expires after CUSTOMER_SESSION_HOURS, and ends with
customer_logout or a delete; the web side takes the container from the session only."""
import hashlib

import pytest

from incus_api.exceptions import Forbidden, Gone
from incus_api.service.customers import LINK_SECONDS, TOUCH_SECONDS, CustomerAccess
from incus_api.store.db import Database
from tests.unit.fake_incus import FakeIncus
from tests.unit.test_console import Clock


@pytest.fixture
def parts(tmp_path):
    db = Database(tmp_path / "c.sqlite3")
    db.migrate()
    clock, incus = Clock(), FakeIncus()
    incus.add("web1")
    incus.add("web2")
    return CustomerAccess(incus=incus, db=db, config={"CUSTOMER_SESSION_HOURS": 2}, clock=clock), db, clock, incus


def test_a_link_is_stored_as_its_hash_and_signs_in_once(parts):
    access, db, _clock, _incus = parts
    token, seconds = access.create_link("web1")
    assert seconds == LINK_SECONDS == 300
    stored = [row[0] for row in db.query("SELECT token_hash FROM customer_links")]
    assert stored == [hashlib.sha256(token.encode()).hexdigest()] and token not in str(stored)
    session_id, name, lasts = access.redeem(token, client_address="203.0.113.5")
    assert (name, lasts) == ("web1", 2 * 3600)
    assert [row[0] for row in db.query("SELECT session_hash FROM customer_sessions")] == \
        [hashlib.sha256(session_id.encode()).hexdigest()]
    with pytest.raises(Gone, match="already been used"):
        access.redeem(token)
    customer = access.session(session_id)
    assert (customer.name, customer.actor) == ("web1", "customer:web1")


def test_unknown_expired_and_malformed_links_open_nothing(parts):
    access, _db, clock, _incus = parts
    with pytest.raises(Forbidden):
        access.redeem("A" * 43)
    for bad in ("", "short", "a" * 200, "../../etc", None, "ａ" * 43):
        with pytest.raises(Forbidden):
            access.redeem(bad)
    token, _ = access.create_link("web1")
    clock.now += LINK_SECONDS + 1
    with pytest.raises(Gone, match="expired"):
        access.redeem(token)


def test_a_link_opens_only_the_instance_it_was_made_for(parts):
    access, _db, _clock, incus = parts
    token, _ = access.create_link("web1")
    incus.change_state("web1", "stop", force=True)
    incus.delete("web1")
    incus.add("web1")  # made again under the name: another instance, another customer
    with pytest.raises(Gone, match="no longer exists"):
        access.redeem(token)
    gone, _ = access.create_link("web2")
    incus.change_state("web2", "stop", force=True)
    incus.delete("web2")
    with pytest.raises(Gone, match="no longer exists"):
        access.redeem(gone)


def test_a_session_expires_and_ends_with_logout_and_is_touched_sparingly(parts):
    access, db, clock, _incus = parts
    first = access.redeem(access.create_link("web1")[0])[0]
    second = access.redeem(access.create_link("web1")[0])[0]
    other = access.redeem(access.create_link("web2")[0])[0]
    created = db.query_one("SELECT last_seen FROM customer_sessions LIMIT 1")[0]
    clock.now += TOUCH_SECONDS / 2
    access.session(first)
    assert access.sessions_of("web1") == {"count": 2, "last_seen": created}  # not written again so soon
    clock.now += TOUCH_SECONDS
    access.session(first)
    assert access.sessions_of("web1")["last_seen"] > created
    assert access.end_sessions("web1") == 2
    assert access.session(first) is None and access.session(second) is None
    assert access.session(other).name == "web2"
    clock.now += 2 * 3600 + 1
    assert access.session(other) is None and access.sessions_of("web2")["count"] == 0


def test_links_not_opened_yet_end_with_the_sessions(parts):
    access, _db, _clock, _incus = parts
    token, _ = access.create_link("web1")
    access.end_sessions("web1")
    with pytest.raises(Forbidden):
        access.redeem(token)


def test_signing_out_ends_this_browser_only(parts):
    access, _db, _clock, _incus = parts
    first = access.redeem(access.create_link("web1")[0])[0]
    second = access.redeem(access.create_link("web1")[0])[0]
    access.sign_out(access.session(first))
    assert access.session(first) is None and access.session(second).name == "web1"


def test_a_session_cookie_that_is_not_one_names_nobody(parts):
    access, _db, _clock, _incus = parts
    for value in (None, "", "x" * 43, "a b", "é" * 43, "A" * 500):
        assert access.session(value) is None
