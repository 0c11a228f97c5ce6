"""The traffic period and quota rules (pure)."""
from datetime import datetime, timedelta, timezone

import pytest

from incus_api.exceptions import BadInput
from incus_api.parse.traffic import reset_day, traffic_quota
from incus_api.traffic import periods

SHANGHAI = timezone(timedelta(hours=8))


def at(*parts):
    return datetime(*parts, tzinfo=SHANGHAI)


def test_the_reset_day_is_the_day_of_creation_and_28_past_it():
    assert periods.default_reset_day(at(2026, 3, 15, 12)) == 15
    assert [periods.default_reset_day(at(2026, 1, day)) for day in (28, 29, 30, 31)] == [28, 28, 28, 28]


def test_periods_run_from_reset_day_to_reset_day_across_years_and_short_months():
    assert periods.last_reset(15, at(2026, 3, 15, 0, 0)) == at(2026, 3, 15)
    assert periods.last_reset(15, at(2026, 3, 14, 23, 59)) == at(2026, 2, 15)
    assert periods.last_reset(5, at(2026, 1, 2)) == at(2025, 12, 5)
    assert periods.next_reset(28, at(2026, 1, 31)) == at(2026, 2, 28)
    assert periods.next_reset(1, at(2026, 12, 1)) == at(2027, 1, 1)
    assert periods.next_reset(15, at(2026, 3, 15)) == at(2026, 4, 15)


def test_a_manual_reset_lasts_until_the_next_reset_day_then_the_period_rolls_over():
    reset = at(2026, 3, 20, 10, 30)  # a reset mid-period; reset day 15
    assert periods.current_start(15, reset, at(2026, 4, 14, 23)) == reset
    assert periods.current_start(15, reset, at(2026, 4, 15, 0, 0, 1)) == at(2026, 4, 15)
    # a service that was off for months starts from the last reset, not a stale one
    assert periods.current_start(15, reset, at(2026, 9, 1)) == at(2026, 8, 15)


@pytest.mark.parametrize("direction,expected", [("both", 30), ("out", 20), ("in", 10), ("max", 20)])
def test_what_counts_against_the_quota(direction, expected):
    usage = periods.Usage(rx=10, tx=20, direction=direction, quota=25)
    assert usage.counted == expected
    assert usage.over is (expected >= 25)
    assert usage.remaining == max(0, 25 - expected)


def test_no_quota_is_never_over():
    usage = periods.Usage(rx=10**15, tx=10**15, direction="both")
    assert usage.over is False and usage.remaining is None and usage.percent is None


def test_hours_are_utc_and_days_are_local():
    assert periods.hour_of(at(2026, 3, 15, 3, 59)) == "2026-03-14T19:00:00Z"
    assert periods.parse_hour("2026-03-14T19:00:00Z").astimezone(SHANGHAI) == at(2026, 3, 15, 3)
    assert [d.day for d in periods.days_between(at(2026, 2, 27), at(2026, 3, 2))] == [27, 28, 1]


def test_quota_and_reset_day_parsing():
    assert traffic_quota("500GB") == 500 * 10**9
    assert traffic_quota("1TB") == 10**12
    assert traffic_quota("1TiB") == 2**40
    assert traffic_quota("0") == 0
    for bad in ("500", "5XB", "-1GB", "1e3GB", "0.5TB", "99999999GB", "500KB", "²GB"):
        with pytest.raises(BadInput):
            traffic_quota(bad)
    assert reset_day("28") == 28
    for bad in ("0", "29", "x", "1.5"):
        with pytest.raises(BadInput):
            reset_day(bad)
