"""One-time links (the console's and the customer panel's share them): stored as the token's
hash, opened and spent once, refused with the caller's words when never made, used or expired,
and only on their own two tables."""
import hashlib

import pytest

from incus_api.exceptions import Forbidden, Gone
from incus_api.service.one_time_links import OneTimeLinks, Refusals
from incus_api.store import one_time_links as table
from incus_api.store.db import Database
from tests.unit.test_console import Clock

WORDS = Refusals(invalid="never made", used="used", expired="expired after {minutes} min")


@pytest.fixture
def links(tmp_path):
    db = Database(tmp_path / "l.sqlite3")
    db.migrate()
    clock = Clock()
    return OneTimeLinks(db, "customer_links", 120, WORDS, clock), db, clock


def test_a_link_is_its_hash_opens_and_is_spent_once(links):
    made, db, _clock = links
    token, seconds = made.create("web1", "uuid-1")
    assert seconds == 120
    assert [row[0] for row in db.query("SELECT token_hash FROM customer_links")] == [hashlib.sha256(token.encode()).hexdigest()]
    digest, row = made.open(token)
    assert (row["container_name"], row["instance_uuid"]) == ("web1", "uuid-1")
    made.spend(digest)
    with pytest.raises(Gone) as used:
        made.open(token)
    assert used.value.message == "used"
    with pytest.raises(Gone):  # a second spend (two opens at once): the slower one is refused
        made.spend(digest)


def test_never_made_malformed_and_expired_links_are_refused(links):
    made, _db, clock = links
    for token in ("x" * 43, "short", None, "a b" * 15):
        with pytest.raises(Forbidden) as refused:
            made.open(token)
        assert refused.value.message == "never made"
    token, _ = made.create("web1", None)
    clock.now += 121
    with pytest.raises(Gone) as expired:
        made.open(token)
    assert expired.value.message == "expired after 2 min"


def test_only_the_tables_of_links(tmp_path):
    db = Database(tmp_path / "t.sqlite3")
    db.migrate()
    with pytest.raises(ValueError):
        table.find(db, "users", "x")
