"""The ``containers`` table: the last known state of each container, served while Incus is down."""
import json

NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def remember_list(db, rows):
    """The list as Incus gave it: every row upserted, the containers no longer listed dropped."""
    with db.transaction() as conn:
        conn.executemany(
            f"""INSERT INTO containers (name, image, status, ip, created_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(name) DO UPDATE SET image = excluded.image, status = excluded.status,
                 ip = excluded.ip, created_at = excluded.created_at, last_synced = {NOW}""",
            [(r["name"], r["image"], r["status"], r["ip"], r["created_at"]) for r in rows],
        )
        names = [r["name"] for r in rows]
        conn.execute(f"DELETE FROM containers WHERE name NOT IN ({','.join('?' * len(names))})", names)


def remember_info(db, name, info):
    """A container's full ``info`` answer, kept as it was."""
    db.execute(
        f"""INSERT INTO containers (name, image, status, ip, architecture, created_at, snapshot, last_synced)
           VALUES (?, ?, ?, ?, ?, ?, ?, {NOW})
           ON CONFLICT(name) DO UPDATE SET image = excluded.image, status = excluded.status,
             ip = excluded.ip, architecture = excluded.architecture, created_at = excluded.created_at,
             snapshot = excluded.snapshot, last_synced = excluded.last_synced""",
        (name, info["description"], info["status"], info["ip"], info["architecture"], info["created_at"],
         json.dumps(info)),
    )


def remember_status(db, name, status, ip):
    db.execute(f"UPDATE containers SET status = ?, ip = ?, last_synced = {NOW} WHERE name = ?", (status, ip, name))


def forget(db, name):
    db.execute("DELETE FROM containers WHERE name = ?", (name,))


def last_known(db, name):
    """The row of ``name`` (its ``snapshot`` decoded), or None."""
    row = db.execute("SELECT * FROM containers WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    return {**dict(row), "snapshot": json.loads(row["snapshot"]) if row["snapshot"] else None}


def all_last_known(db):
    return db.execute("SELECT name, image, status, ip, created_at, last_synced FROM containers ORDER BY name").fetchall()
