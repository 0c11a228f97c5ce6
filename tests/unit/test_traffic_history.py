"""The traffic history is bounded (issue 18, point 8): hours older than 90 days fold into local
days, days are kept at least 400 days; totals and reports do not change by folding. Real SQLite
(the migrations), no Incus, no kernel."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from incus_api.scheduler import Scheduler
from incus_api.service.traffic import history, reports
from incus_api.store import traffic as table
from incus_api.store import traffic_history
from incus_api.store.db import Database
from incus_api.traffic import periods

TZ = timezone(timedelta(hours=8))  # the host's zone: a local day starts at 16:00 UTC the day before
NOW = datetime(2026, 6, 15, 10, 30, tzinfo=TZ)


@pytest.fixture
def db(tmp_path):
    db = Database(tmp_path / "traffic.sqlite3")
    db.migrate()
    with db.transaction() as conn:
        for name in ("web1", "web2"):
            table.new_plan(conn, name, None, 15, "both", "throttle", periods.iso(NOW - timedelta(days=500)))
    return db


def fill(db, name, first, last, rx=lambda hour: 1000 + hour.hour, tx=lambda hour: 7 * hour.day):
    """One row per UTC hour of ``name`` from ``first`` to ``last`` (aware datetimes, included)."""
    hour = first.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    with db.transaction() as conn:
        while hour <= last:
            table.add_use(conn, name, periods.hour_of(hour), rx(hour), tx(hour))
            hour += timedelta(hours=1)


def totals(db, name):
    hours = db.query_one("SELECT COUNT(*), COALESCE(SUM(rx_bytes), 0), COALESCE(SUM(tx_bytes), 0) FROM traffic_hourly "
                         "WHERE container_name = ?", (name,))
    days = db.query_one("SELECT COUNT(*), COALESCE(SUM(rx_bytes), 0), COALESCE(SUM(tx_bytes), 0) FROM traffic_daily "
                        "WHERE container_name = ?", (name,))
    return {"hours": hours[0], "days": days[0], "rx": hours[1] + days[1], "tx": hours[2] + days[2]}


def local_midnight(day):
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def test_hours_before_the_local_day_90_days_ago_fold_into_their_local_days(db):
    fill(db, "web1", NOW - timedelta(days=100), NOW)
    boundary = local_midnight(NOW.date() - timedelta(days=90))  # 2026-03-17 00:00 +08:00 = 03-16T16:00Z
    assert periods.hour_of(boundary) == "2026-03-16T16:00:00Z"
    older = db.query_one("SELECT COUNT(*) FROM traffic_hourly WHERE hour < '2026-03-16T16:00:00Z'")[0]
    assert history.fold(db, NOW) == {"containers": 1, "folded_hours": older, "deleted_days": 0}
    first_hour = db.query_one("SELECT MIN(hour) FROM traffic_hourly WHERE container_name = 'web1'")[0]
    assert first_hour == "2026-03-16T16:00:00Z"  # the day 90 days ago keeps its hours
    days = {row["day"]: row for row in traffic_history.days(db, "web1")}
    assert max(days) == "2026-03-16" and min(days) == (NOW - timedelta(days=100)).date().isoformat() == "2026-03-07"
    # a local day is the 24 UTC hours from 16:00 the day before: its row is their sum
    assert days["2026-03-15"]["rx_bytes"] == sum(1000 + hour for hour in range(24))
    assert days["2026-03-15"]["tx_bytes"] == 8 * 7 * 14 + 16 * 7 * 15  # 16:00-23:00 UTC of the 14th, 00:00-15:00 of the 15th
    assert totals(db, "web2") == {"hours": 0, "days": 0, "rx": 0, "tx": 0}


def test_folding_changes_no_total_and_a_second_fold_changes_nothing(db):
    fill(db, "web1", NOW - timedelta(days=120), NOW)
    fill(db, "web2", NOW - timedelta(days=95), NOW - timedelta(days=93), rx=lambda hour: 5_000_000_000, tx=lambda hour: 3)
    before = {name: totals(db, name) for name in ("web1", "web2")}
    plans = [dict(row) for row in table.plans(db)]
    result = history.fold(db, NOW)
    after = {name: totals(db, name) for name in ("web1", "web2")}
    for name in ("web1", "web2"):
        assert (after[name]["rx"], after[name]["tx"]) == (before[name]["rx"], before[name]["tx"])
    assert after["web2"] == {"hours": 0, "days": 3, "rx": before["web2"]["rx"], "tx": before["web2"]["tx"]}
    assert result["containers"] == 2
    assert result["folded_hours"] == (before["web1"]["hours"] - after["web1"]["hours"]) + before["web2"]["hours"]
    assert [dict(row) for row in table.plans(db)] == plans  # the period totals, which quotas act on, untouched
    assert history.fold(db, NOW) == {"containers": 0, "folded_hours": 0, "deleted_days": 0}
    assert {name: totals(db, name) for name in ("web1", "web2")} == after


def test_a_report_over_folded_days_and_hours_is_what_it_was_before_the_fold(db):
    fill(db, "web1", NOW - timedelta(days=100), NOW)
    start = local_midnight(NOW.date() - timedelta(days=95))  # 5 folded days, then hours
    end = local_midnight(NOW.date() + timedelta(days=1))
    row = table.plan(db, "web1")
    before, period_before = reports.days(db, "web1", start, end), reports.report(db, row, NOW, with_days=True)
    history.fold(db, NOW)
    assert traffic_history.days(db, "web1")  # something was folded
    after = reports.days(db, "web1", start, end)
    assert after == before and len(after) == 96
    assert after[0]["date"] == start.date().isoformat() and after[0]["rx_bytes"] == sum(1000 + h for h in range(24))
    # the container's current period (GET /container/<name>/traffic and the page's day chart) is unchanged
    assert reports.report(db, table.plan(db, "web1"), NOW, with_days=True) == period_before
    assert len(period_before["days"]) >= 28 and sum(day["rx_bytes"] for day in period_before["days"]) > 0


def test_the_period_report_of_a_container_reads_hours_and_days_in_one_statement(db, monkeypatch):
    """A fold between two reads would count its hours twice or not at all: one SELECT reads both."""
    fill(db, "web1", NOW - timedelta(days=92), NOW - timedelta(days=90))
    start, end = local_midnight(NOW.date() - timedelta(days=92)), local_midnight(NOW.date() - timedelta(days=89))
    history.fold(db, NOW)
    statements = []
    db.connection.set_trace_callback(statements.append)
    try:
        days = reports.days(db, "web1", start, end)
    finally:
        db.connection.set_trace_callback(None)
    assert len(statements) == 1 and "UNION ALL" in statements[0]
    assert [day["rx_bytes"] > 0 for day in days] == [True, True, True]


def test_a_day_is_kept_400_days_then_deleted(db):
    day = NOW.date() - timedelta(days=200)
    fill(db, "web1", local_midnight(day), local_midnight(day + timedelta(days=1)) - timedelta(hours=1))
    history.fold(db, NOW)
    kept = [tuple(row) for row in traffic_history.days(db, "web1")]
    assert [row[0] for row in kept] == [day.isoformat()]
    for later in (200, 399, 400):  # days after ``day`` (its last hour ended ``later`` days before that date's midnight)
        assert history.fold(db, local_midnight(day + timedelta(days=later)) + timedelta(hours=23))["deleted_days"] == 0
        assert [tuple(row) for row in traffic_history.days(db, "web1")] == kept
    assert history.fold(db, local_midnight(day + timedelta(days=401)))["deleted_days"] == 1
    assert traffic_history.days(db, "web1") == [] and totals(db, "web1")["hours"] == 0


def test_a_year_and_more_of_history_stays_bounded(db):
    """Hourly rows for 500 days, folded once a day as they came: at most 91 days of hours and 310
    days remain, and every remaining day is the sum of its hours."""
    first = local_midnight(NOW.date() - timedelta(days=500))
    moment = first
    while moment < NOW:
        fill(db, "web1", moment, min(moment + timedelta(days=1), NOW) - timedelta(hours=1))
        moment += timedelta(days=1)
        history.fold(db, moment)
    counts = totals(db, "web1")
    assert counts["hours"] <= 91 * 24 and counts["days"] == history.DAILY_DAYS - history.HOURLY_DAYS == 310
    oldest = traffic_history.days(db, "web1")[0]
    assert oldest["day"] == (moment.date() - timedelta(days=history.DAILY_DAYS)).isoformat()


def test_forgetting_a_container_forgets_its_days(db):
    fill(db, "web1", NOW - timedelta(days=93), NOW - timedelta(days=92))
    history.fold(db, NOW)
    assert traffic_history.days(db, "web1")
    with db.transaction() as conn:
        table.forget(conn, "web1")
    assert traffic_history.days(db, "web1") == [] and totals(db, "web1")["hours"] == 0


def test_the_boundaries_follow_the_hosts_offset():
    first_hour, first_day, offset = history.boundaries(NOW)
    assert (first_hour, first_day, offset) == ("2026-03-16T16:00:00Z", "2025-05-11", "+480 minutes")
    west = datetime(2026, 6, 15, 10, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    # hours are UTC hours: the one the local midnight falls in is the first kept (it counts for the day before)
    assert history.boundaries(west) == ("2026-03-17T05:00:00Z", "2025-05-11", "-330 minutes")


def test_a_scheduler_job_can_start_before_its_first_interval():
    scheduler, ran = Scheduler(), threading.Event()
    scheduler.every(3600, "soon", ran.set, first=0.05)
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop()
    assert scheduler.jobs[0].due > time.monotonic() + 3000
