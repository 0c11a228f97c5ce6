"""The traffic tables: ``traffic_plans`` (each container's quota and its period's totals),
``traffic_hourly`` (the hours' totals) and ``traffic_counters`` (the kernel counters' values at the
last pass, the baseline of the next)."""


def plan(db, name):
    return db.execute("SELECT * FROM traffic_plans WHERE container_name = ?", (name,)).fetchone()


def plans(db):
    return db.execute("SELECT * FROM traffic_plans ORDER BY container_name").fetchall()


def planned_names(db):
    return {row[0] for row in db.execute("SELECT container_name FROM traffic_plans").fetchall()}


def with_quota_or_enforced(db):
    """Names of the plans with a quota, and of those with an action in force (a quota removed
    since: the action is undone at the next check)."""
    return [row[0] for row in db.execute(
        "SELECT container_name FROM traffic_plans WHERE quota_bytes IS NOT NULL OR enforced IS NOT NULL "
        "ORDER BY container_name").fetchall()]


def new_plan(db, name, quota, reset_day, direction, action, period_start):
    """A plan that starts now (a plan left by an earlier container of that name is replaced)."""
    db.execute(
        """INSERT INTO traffic_plans (container_name, quota_bytes, reset_day, direction, action, period_start)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT(container_name) DO UPDATE SET quota_bytes = excluded.quota_bytes,
             reset_day = excluded.reset_day, direction = excluded.direction, action = excluded.action,
             period_start = excluded.period_start, period_rx = 0, period_tx = 0, enforced = NULL,
             enforced_at = NULL, saved_limits = NULL""",
        (name, quota, reset_day, direction, action, period_start))


PLAN_FIELDS = ("quota_bytes", "reset_day", "direction", "action", "period_start", "period_rx", "period_tx", "enforced",
               "enforced_at", "saved_limits")


def plan_record(db, name):
    """``name``'s plan as a dict of ``PLAN_FIELDS`` (what a backup records), or None."""
    row = plan(db, name)
    return None if row is None else {field: row[field] for field in PLAN_FIELDS}


def restore_plan(db, name, record, keep_period=True, period_start=None):
    """A restored container's plan from a backup's ``record``; with ``keep_period`` False a new
    period starts at ``period_start`` with nothing used."""
    values = {field: record.get(field) for field in PLAN_FIELDS}
    if not keep_period:
        values.update(period_start=period_start, period_rx=0, period_tx=0)
    values["period_rx"], values["period_tx"] = int(values["period_rx"] or 0), int(values["period_tx"] or 0)
    db.execute("DELETE FROM traffic_plans WHERE container_name = ?", (name,))
    db.execute(f"INSERT INTO traffic_plans (container_name, {', '.join(PLAN_FIELDS)})"
               f" VALUES (?, {', '.join('?' * len(PLAN_FIELDS))})", (name, *values.values()))


def default_plans(db, rows):
    """``(name, reset_day, period_start)`` plans for containers that have none."""
    db.executemany("""INSERT INTO traffic_plans (container_name, reset_day, period_start) VALUES (?, ?, ?)
                      ON CONFLICT(container_name) DO NOTHING""", rows)


def change_plan(db, name, quota, reset_day, direction, action):
    db.execute("UPDATE traffic_plans SET quota_bytes = ?, reset_day = ?, direction = ?, action = ? WHERE container_name = ?",
               (quota, reset_day, direction, action, name))


def start_period(db, name, start):
    db.execute("UPDATE traffic_plans SET period_start = ?, period_rx = 0, period_tx = 0 WHERE container_name = ?",
               (start, name))


def set_enforced(db, name, action, at, saved_limits):
    db.execute("UPDATE traffic_plans SET enforced = ?, enforced_at = ?, saved_limits = ? WHERE container_name = ?",
               (action, at, saved_limits, name))


def save_rates(db, name, saved_limits):
    """The NIC rates to put back when ``name``'s throttle ends (``saved_limits``, JSON), only while
    it is throttled: whether it was."""
    return db.execute("UPDATE traffic_plans SET saved_limits = ? WHERE container_name = ? AND enforced = 'throttle'",
                      (saved_limits, name)).rowcount == 1


def clear_throttle(db, name, saved_limits):
    """End ``name``'s throttle whose rates to put back are still ``saved_limits``: whether it did
    (not when a plan change gave other rates meanwhile)."""
    return db.execute("UPDATE traffic_plans SET enforced = NULL, enforced_at = NULL, saved_limits = NULL "
                      "WHERE container_name = ? AND enforced = 'throttle' AND saved_limits IS ?",
                      (name, saved_limits)).rowcount == 1


def clear_enforced(db, name):
    db.execute("UPDATE traffic_plans SET enforced = NULL, enforced_at = NULL, saved_limits = NULL "
               "WHERE container_name = ?", (name,))


def forget(db, name):
    """The plan and the history of ``name`` (its hours and its folded days)."""
    db.execute("DELETE FROM traffic_plans WHERE container_name = ?", (name,))
    db.execute("DELETE FROM traffic_hourly WHERE container_name = ?", (name,))
    db.execute("DELETE FROM traffic_daily WHERE container_name = ?", (name,))


def counters(db):
    """``{name: row}`` of the counters' values at the last pass."""
    return {row["container_name"]: row for row in db.execute("SELECT * FROM traffic_counters").fetchall()}


def save_counter(db, name, epoch, rx, tx, veth=None, veth_tx=None):
    """The counters' values of this pass, and the container's veth (its key and tx_bytes, None
    when it has none) then."""
    db.execute("""INSERT INTO traffic_counters (container_name, epoch, rx_seen, tx_seen, veth, veth_tx_seen)
                  VALUES (?, ?, ?, ?, ?, ?)
                  ON CONFLICT(container_name) DO UPDATE SET epoch = excluded.epoch, rx_seen = excluded.rx_seen,
                    tx_seen = excluded.tx_seen, veth = excluded.veth, veth_tx_seen = excluded.veth_tx_seen""",
               (name, epoch, rx, tx, veth, veth_tx))


def drop_counters(db, names):
    db.executemany("DELETE FROM traffic_counters WHERE container_name = ?", [(name,) for name in names])


def add_use(db, name, hour, rx, tx):
    """Add ``rx``/``tx`` bytes to ``name``'s ``hour`` and to its period."""
    db.execute("""INSERT INTO traffic_hourly (container_name, hour, rx_bytes, tx_bytes) VALUES (?, ?, ?, ?)
                  ON CONFLICT(container_name, hour) DO UPDATE SET rx_bytes = rx_bytes + excluded.rx_bytes,
                    tx_bytes = tx_bytes + excluded.tx_bytes""", (name, hour, rx, tx))
    db.execute("UPDATE traffic_plans SET period_rx = period_rx + ?, period_tx = period_tx + ? WHERE container_name = ?",
               (rx, tx, name))
