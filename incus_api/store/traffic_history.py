"""The traffic history kept for long: ``traffic_daily``, the days that ``traffic_hourly``'s hours
older than 90 days were folded into (``service/traffic/history.py`` decides when), and the read of
a container's days from both tables."""


def names(db):
    """Every container with a plan or any history."""
    return [row[0] for row in db.execute(
        "SELECT container_name FROM traffic_plans UNION SELECT container_name FROM traffic_daily").fetchall()]


def has_hours_before(db, name, hour):
    return db.execute("SELECT 1 FROM traffic_hourly WHERE container_name = ? AND hour < ? LIMIT 1",
                      (name, hour)).fetchone() is not None


def has_days_before(db, name, day):
    return db.execute("SELECT 1 FROM traffic_daily WHERE container_name = ? AND day < ? LIMIT 1",
                      (name, day)).fetchone() is not None


def fold(db, name, before_hour, offset):
    """Add ``name``'s hours before ``before_hour`` to their local days (``offset``: the UTC
    offset as an SQLite modifier, ``'+480 minutes'``) and delete them: how many hours were folded."""
    db.execute("""INSERT INTO traffic_daily (container_name, day, rx_bytes, tx_bytes)
                  SELECT container_name, date(hour, ?), SUM(rx_bytes), SUM(tx_bytes) FROM traffic_hourly
                  WHERE container_name = ? AND hour < ? GROUP BY container_name, date(hour, ?)
                  ON CONFLICT(container_name, day) DO UPDATE SET rx_bytes = rx_bytes + excluded.rx_bytes,
                    tx_bytes = tx_bytes + excluded.tx_bytes""", (offset, name, before_hour, offset))
    return db.execute("DELETE FROM traffic_hourly WHERE container_name = ? AND hour < ?", (name, before_hour)).rowcount


def delete_days_before(db, name, day):
    """``name``'s days before ``day`` ('YYYY-MM-DD'): how many."""
    return db.execute("DELETE FROM traffic_daily WHERE container_name = ? AND day < ?", (name, day)).rowcount


def use(db, name, start_hour, end_hour, start_day, end_day):
    """``(hour or day, rx, tx)`` of ``name``: its hours in ``start_hour``..``end_hour`` and its
    folded days in ``start_day``..``end_day`` (ends excluded), in one statement (one snapshot: a
    fold between two reads would count its hours twice or not at all). A day is 'YYYY-MM-DD', an
    hour 'YYYY-MM-DDTHH:00:00Z'."""
    return db.execute("""SELECT hour AS moment, rx_bytes, tx_bytes FROM traffic_hourly
                         WHERE container_name = ? AND hour >= ? AND hour < ?
                         UNION ALL
                         SELECT day, rx_bytes, tx_bytes FROM traffic_daily
                         WHERE container_name = ? AND day >= ? AND day < ?""",
                      (name, start_hour, end_hour, name, start_day, end_day)).fetchall()


def days(db, name):
    """Every folded day of ``name``: ``(day, rx, tx)``, oldest first."""
    return db.execute("SELECT day, rx_bytes, tx_bytes FROM traffic_daily WHERE container_name = ? ORDER BY day",
                      (name,)).fetchall()
