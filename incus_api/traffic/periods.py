"""A traffic period and its quota: pure rules, no I/O.

A period starts at 00:00 (the host's local time) on the plan's reset day of a month and ends at
the same time a month later; a manual reset starts one at that moment, ending at the next reset
day. Reset days are 1-28, so every month has one (a container bought on the 29th-31st resets on
the 28th).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DIRECTIONS = ("both", "out", "in", "max")
ACTIONS = ("throttle", "suspend")


def default_reset_day(moment):
    """The reset day of a container created at ``moment``: its day of the month, 28 past the 28th."""
    return min(moment.day, 28)


def _boundary(year, month, day, tz):
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, day, tzinfo=tz)


def last_reset(reset_day, now):
    """The latest reset-day midnight at or before ``now`` (an aware datetime)."""
    this_month = _boundary(now.year, now.month, reset_day, now.tzinfo)
    return this_month if this_month <= now else _boundary(now.year, now.month - 1, reset_day, now.tzinfo)


def next_reset(reset_day, after):
    """The first reset-day midnight strictly after ``after``."""
    this_month = _boundary(after.year, after.month, reset_day, after.tzinfo)
    return this_month if this_month > after else _boundary(after.year, after.month + 1, reset_day, after.tzinfo)


def current_start(reset_day, period_start, now):
    """The start of the period ``now`` is in, for a period that began at ``period_start``: that
    start while it lasts, else the last reset before ``now`` (the period rolled over)."""
    if now < next_reset(reset_day, period_start):
        return period_start
    return last_reset(reset_day, now)


def counted(direction, rx, tx):
    """The bytes that count against the quota (rx: received by the container)."""
    return {"both": rx + tx, "out": tx, "in": rx, "max": max(rx, tx)}[direction]


@dataclass(frozen=True)
class Usage:
    """A period's totals against a quota (``quota`` None: unlimited)."""

    rx: int
    tx: int
    direction: str
    quota: int = None

    @property
    def counted(self):
        return counted(self.direction, self.rx, self.tx)

    @property
    def remaining(self):
        return None if self.quota is None else max(0, self.quota - self.counted)

    @property
    def over(self):
        return self.quota is not None and self.counted >= self.quota

    @property
    def percent(self):
        """Percent of the quota used (may pass 100), or None when unlimited."""
        return None if not self.quota else round(100 * self.counted / self.quota, 1)


def local_now():
    return datetime.now().astimezone()


def hour_of(moment):
    """The UTC hour ``moment`` is in, as stored: ``YYYY-MM-DDTHH:00:00Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")


def parse_hour(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def iso(moment):
    return moment.isoformat(timespec="seconds")


def days_between(start, end):
    """The local dates from ``start``'s to the one before ``end`` (the period's days)."""
    day = start.date()
    last = (end - timedelta(microseconds=1)).date()
    while day <= last:
        yield day
        day += timedelta(days=1)

