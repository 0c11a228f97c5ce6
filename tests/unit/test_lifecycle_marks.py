"""The suspended marks and their guard (pure logic over a real SQLite database; Incus faked)."""
import pytest

from incus_api.exceptions import Conflict
from incus_api.service.suspensions import Suspensions
from incus_api.store.db import Database
from tests.unit.fake_incus import FakeIncus


@pytest.fixture
def marks(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    db.migrate()
    incus = FakeIncus()
    incus.add("web1", volatile_uuid="u-1")
    incus.add("web2", volatile_uuid="u-2")
    return Suspensions(db, incus), incus


def test_refuse_reads_only_the_db_for_a_container_that_is_not_suspended(marks):
    suspensions, incus = marks
    suspensions.refuse("web1", "start")
    assert incus.reads == []


def test_a_marked_container_is_refused_with_409_naming_it(marks):
    suspensions, _ = marks
    suspensions.mark("web1", "u-1")
    with pytest.raises(Conflict) as refused:
        suspensions.refuse("web1", "exec")
    assert "web1" in refused.value.message and "exec" in refused.value.message
    assert suspensions.is_suspended("web1") and not suspensions.is_suspended("web2")


def test_a_mark_for_another_instance_of_the_name_is_dropped(marks):
    suspensions, incus = marks
    suspensions.mark("web1", "u-old")
    suspensions.mark("gone", "u-9")
    assert suspensions.names(incus.instances()) == set()  # neither is the instance listed now
    assert suspensions.names() == {"web1", "gone"}  # the DB alone (Incus down) keeps them
    suspensions.refuse("web1", "start")  # not refused: stale, and dropped
    suspensions.refuse("gone", "start")  # no such container: dropped
    assert suspensions.names() == set()


def test_names_with_the_instance_list_keeps_current_marks(marks):
    suspensions, incus = marks
    suspensions.mark("web2", "u-2")
    assert suspensions.names(incus.instances()) == {"web2"}
    assert suspensions.is_suspended("web2", incus.instance_config("web2"))
    suspensions.clear("web2")
    assert not suspensions.is_suspended("web2")
