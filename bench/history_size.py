"""How large the traffic history grows per container (README: "traffic history"), measured on the
service's own schema and fold: ``N`` containers get one hourly row per hour for ``DAYS`` days, the
fold (``service/traffic/history.fold``) runs once a day as it does in the service, then the
database is VACUUMed and its size measured, against the same database with no history at all.

    .venv/bin/python bench/history_size.py               # 100 containers, 1 and 2 years
    .venv/bin/python bench/history_size.py --containers 20 --days 365

Nothing but a temporary SQLite file: no Incus, no root, no kernel. Also prints what one fold of
every container's day costs (the bench's "traffic history fold" row measures it in its run).
"""
import argparse
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from incus_api.service.traffic import history  # noqa: E402
from incus_api.store import traffic as table  # noqa: E402
from incus_api.store.db import Database  # noqa: E402
from incus_api.traffic import periods  # noqa: E402

TZ = timezone(timedelta(hours=8))
START = datetime(2025, 1, 1, tzinfo=TZ)


def names(count):
    return [f"vps-{index:05d}" for index in range(count)]  # a 9-character name, as sales make them


def size_after(days, count, fold=True, seed=1):
    """Bytes of the VACUUMed database after ``days`` days of ``count`` containers' hours (folded
    once a day), the number of hourly and daily rows, and the median time of a day's fold."""
    random.seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "history.sqlite3")
        db.migrate()
        with db.transaction() as conn:
            for name in names(count):
                table.new_plan(conn, name, None, 1, "both", "throttle", periods.iso(START))
        empty = _vacuumed_size(db)
        folds = []
        for day in range(days):
            midnight = START + timedelta(days=day)
            rows = [(name, periods.hour_of(midnight + timedelta(hours=hour)),
                     random.randrange(2_000_000_000), random.randrange(500_000_000))
                    for name in names(count) for hour in range(24)]
            with db.transaction() as conn:
                conn.executemany("INSERT INTO traffic_hourly (container_name, hour, rx_bytes, tx_bytes) VALUES (?, ?, ?, ?)",
                                 rows)
            if fold:
                started = time.perf_counter()
                history.fold(db, midnight + timedelta(days=1, minutes=30))
                folds.append((time.perf_counter() - started) * 1000)
        hours = db.query_one("SELECT COUNT(*) FROM traffic_hourly")[0]
        daily = db.query_one("SELECT COUNT(*) FROM traffic_daily")[0]
        size = _vacuumed_size(db)
        db.close()
    busy = sorted(ms for ms in folds[history.HOURLY_DAYS + 1:]) or [0.0]
    return size - empty, hours, daily, busy[len(busy) // 2]


def _vacuumed_size(db):
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(db.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--days", type=lambda text: [int(v) for v in text.split(",")], default=[365, 730])
    args = parser.parse_args()
    for days in args.days:
        grown, hours, daily, fold_ms = size_after(days, args.containers)
        print(f"{days} days, {args.containers} containers: {grown / args.containers / 1024:.1f} KiB per container "
              f"({hours / args.containers:.0f} hourly rows, {daily / args.containers:.0f} daily rows each); "
              f"a day's fold of every container: {fold_ms:.1f} ms")
    grown, hours, _daily, _ms = size_after(args.days[0], args.containers, fold=False)
    print(f"{args.days[0]} days unfolded, for comparison: {grown / args.containers / 1024:.1f} KiB per container "
          f"({hours / args.containers:.0f} hourly rows each)")


if __name__ == "__main__":
    main()
