"""The ``suspended`` table: the containers a billing system (or a traffic quota) suspended, with the
Incus UUID of the instance that was suspended and why."""


def get(db, name):
    return db.execute("SELECT instance_uuid, suspended_at, reason FROM suspended WHERE container_name = ?",
                      (name,)).fetchone()


def all_marks(db):
    return db.execute("SELECT container_name, instance_uuid FROM suspended ORDER BY container_name").fetchall()


def mark(db, name, uuid, reason):
    db.execute(
        """INSERT INTO suspended (container_name, instance_uuid, reason) VALUES (?, ?, ?)
           ON CONFLICT(container_name) DO UPDATE SET instance_uuid = excluded.instance_uuid,
             reason = excluded.reason, suspended_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')""",
        (name, uuid, reason),
    )


def clear(db, name):
    db.execute("DELETE FROM suspended WHERE container_name = ?", (name,))
