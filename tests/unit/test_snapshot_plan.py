"""The snapshot plan fields (``snapshots``, ``snapshot_schedule``, ``snapshot_keep``) and snapshot
names: parsed strictly into what Incus is given, and the plan's config keys."""
import pytest

from incus_api.exceptions import BadInput
from incus_api.parse import snapshots as parse
from incus_api.schemas.plan import PLAN_PARAMS
from incus_api.service.plans import SNAPSHOTS_KEY, Plan
from incus_api.service.snapshots import shape, snapshot_plan


def test_the_snapshot_fields_are_plan_fields():
    assert {"snapshots", "snapshot_schedule", "snapshot_keep"} <= {param.name for param in PLAN_PARAMS}


@pytest.mark.parametrize("value, count", [("0", 0), ("1", 1), ("100", 100), ("007", 7)])
def test_snapshots_counts(value, count):
    assert parse.count(value) == count


@pytest.mark.parametrize("value", ["-1", "101", "1.5", "", "ten", "1000000"])
def test_bad_snapshot_counts_name_the_field(value):
    with pytest.raises(BadInput) as caught:
        parse.count(value)
    assert "snapshots" in caught.value.message


@pytest.mark.parametrize("value, incus", [
    ("@hourly", "@hourly"), ("@daily", "@daily"), ("@weekly", "@weekly"), ("@monthly", "@monthly"),
    ("0 3 * * *", "0 3 * * *"), ("*/15 * * * *", "*/15 * * * *"), ("0 0-6/2 1,15 1-12 0", "0 0-6/2 1,15 1-12 0"),
    ("off", ""),
])
def test_schedules(value, incus):
    assert parse.schedule(value) == incus


@pytest.mark.parametrize("value", [
    "@yearly", "daily", "0 3 * *", "0 3 * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
    "* * * * 7", "5-1 * * * *", "*/0 * * * *", "0  3 * * *", "0 3 * * *\n", "0 3 * * MON", "@daily; rm -rf /",
])
def test_bad_schedules_name_the_field(value):
    with pytest.raises(BadInput) as caught:
        parse.schedule(value)
    assert "snapshot_schedule" in caught.value.message


@pytest.mark.parametrize("value, incus", [("7d", "7d"), ("12H", "12H"), ("2w", "2w"), ("1M", "1M"), ("1y", "1y"),
                                          ("07d", "7d"), ("0", "")])
def test_keeps(value, incus):
    assert parse.keep(value) == incus


@pytest.mark.parametrize("value", ["7", "0d", "7D", "7m", "7 d", "7d 2H", "99999d", "-7d", "d"])
def test_bad_keeps_name_the_field(value):
    with pytest.raises(BadInput) as caught:
        parse.keep(value)
    assert "snapshot_keep" in caught.value.message


@pytest.mark.parametrize("value", ["before-upgrade", "snap.1", "A_2", "x" * 63])
def test_snapshot_names(value):
    assert parse.snapshot_name(value) == value


@pytest.mark.parametrize("value", ["auto1", "Auto", "-x", ".x", "a b", "a/b", "x" * 64, "é", ""])
def test_bad_snapshot_names(value):
    with pytest.raises(BadInput):
        parse.snapshot_name(value)


def test_the_plan_writes_the_snapshot_keys():
    plan = Plan.from_values(snapshots=3, snapshot_schedule="@daily", snapshot_keep="7d")
    assert plan.config() == {SNAPSHOTS_KEY: "3", "snapshots.schedule": "@daily", "snapshots.pattern": "auto%d",
                             "snapshots.expiry": "7d"}
    assert Plan.from_values(snapshot_schedule="", snapshot_keep="").config() == {
        "snapshots.schedule": "", "snapshots.pattern": "auto%d", "snapshots.expiry": ""}
    assert Plan.from_values(memory=None).config() == {}


def test_the_snapshot_plan_read_back():
    instance = {"expanded_config": {SNAPSHOTS_KEY: "4", "snapshots.schedule": "@weekly", "snapshots.expiry": "2w"}}
    assert snapshot_plan(instance) == {"snapshots": 4, "snapshot_schedule": "@weekly", "snapshot_keep": "2w"}
    assert snapshot_plan({"config": {}}) == {"snapshots": 0, "snapshot_schedule": None, "snapshot_keep": None}
    assert snapshot_plan({"config": {SNAPSHOTS_KEY: "²"}})["snapshots"] == 0


def test_a_snapshot_as_answered():
    assert shape({"name": "auto3", "created_at": "2026-01-01T00:00:00Z", "expires_at": "0001-01-01T00:00:00Z",
                  "size": -1}) == {"name": "auto3", "created_at": "2026-01-01T00:00:00Z", "expires_at": None,
                                   "size": None, "scheduled": True}
    assert shape({"name": "c1/mine", "size": 4096})["name"] == "mine"
    assert shape({"name": "mine", "size": 4096})["size"] == 4096
