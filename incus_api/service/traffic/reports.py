"""A container's traffic this period as the API answers it: the totals against the quota and,
for one container, each day's."""
from datetime import date, datetime, timedelta

from ...store import traffic_history as history
from ...traffic import periods

SUMMARY_FIELDS = ("rx_bytes", "tx_bytes", "counted_bytes", "quota_bytes", "percent", "over_quota", "enforced")


def period(row, now):
    """``(start, end, rx, tx)`` of the period ``now`` is in (zero totals when the stored one is over)."""
    stored = datetime.fromisoformat(row["period_start"])
    start = periods.current_start(row["reset_day"], stored, now)
    rx, tx = (row["period_rx"], row["period_tx"]) if start == stored else (0, 0)
    return start, periods.next_reset(row["reset_day"], start), rx, tx


def report(db, row, now, with_days):
    """The answer of ``GET /container/<name>/traffic`` for a plan row (``days`` read from ``db``)."""
    start, end, rx, tx = period(row, now)
    usage = periods.Usage(rx, tx, row["direction"], row["quota_bytes"])
    answer = {
        "period": {"start": periods.iso(start), "end": periods.iso(end)},
        "rx_bytes": rx, "tx_bytes": tx, "counted_bytes": usage.counted, "quota_bytes": usage.quota,
        "remaining_bytes": usage.remaining, "over_quota": usage.over, "percent": usage.percent,
        "reset_day": row["reset_day"], "direction": row["direction"], "action": row["action"],
        "enforced": row["enforced"],
    }
    if with_days:
        answer["days"] = days(db, row["container_name"], start, end)
    return answer


def summary(row, now):
    """The period's totals for the container list and info."""
    answer = report(None, row, now, with_days=False)
    return {**{key: answer[key] for key in SUMMARY_FIELDS}, "period_end": answer["period"]["end"]}


def days(db, name, start, end):
    """Each local day of the period with its totals: the sums of its hours, or its folded row
    (``history``: hours older than 90 days are kept as days; such a day counts whole)."""
    totals = {day: [0, 0] for day in periods.days_between(start, end)}
    if not totals:
        return []
    first, last = min(totals), max(totals)
    rows = history.use(db, name, periods.hour_of(start), periods.hour_of(end), first.isoformat(),
                       (last + timedelta(days=1)).isoformat())
    for row in rows:
        moment = row["moment"]
        if len(moment) == len("YYYY-MM-DD"):  # a folded day
            day = date.fromisoformat(moment)
        else:
            day = periods.parse_hour(moment).astimezone(start.tzinfo).date()
        if day in totals:
            totals[day][0] += row["rx_bytes"]
            totals[day][1] += row["tx_bytes"]
    return [{"date": day.isoformat(), "rx_bytes": rx, "tx_bytes": tx} for day, (rx, tx) in totals.items()]
