"""The ``backups`` table: one row per backup file, its state, where it is stored (``BACKUP_DIR``,
S3) and what went wrong."""

COLUMNS = ("id, container_name, instance_uuid, file, trigger, state, created_at, finished_at, size, sha256, error, "
           "local, s3_key, s3_state, s3_error")


def insert(db, name, instance_uuid, file, trigger, state="running", created_at=None):
    return db.execute(
        "INSERT INTO backups (container_name, instance_uuid, file, trigger, state, created_at)"
        " VALUES (?, ?, ?, ?, ?, COALESCE(?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))",
        (name, instance_uuid, file, trigger, state, created_at)).lastrowid


def get(db, backup_id):
    return db.execute(f"SELECT {COLUMNS} FROM backups WHERE id = ?", (backup_id,)).fetchone()


def by_file(db, file):
    return db.execute(f"SELECT {COLUMNS} FROM backups WHERE file = ?", (file,)).fetchone()


def listing(db, name=None):
    """Newest first; of one container with ``name``."""
    if name is None:
        return db.execute(f"SELECT {COLUMNS} FROM backups ORDER BY id DESC").fetchall()
    return db.execute(f"SELECT {COLUMNS} FROM backups WHERE container_name = ? ORDER BY id DESC", (name,)).fetchall()


def running(db, name):
    return db.execute(f"SELECT {COLUMNS} FROM backups WHERE container_name = ? AND state = 'running'",
                      (name,)).fetchone()


def finish(db, backup_id, size, sha256):
    db.execute("UPDATE backups SET state = 'ok', size = ?, sha256 = ?, error = NULL,"
               " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?", (size, sha256, backup_id))


def fail(db, backup_id, error):
    db.execute("UPDATE backups SET state = 'failed', error = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
               " WHERE id = ?", (error, backup_id))


def fail_running(db, error):
    """Backups left ``running`` by a service that stopped mid-way: failed."""
    return db.execute("UPDATE backups SET state = 'failed', error = ?, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ',"
                      " 'now') WHERE state = 'running'", (error,)).rowcount


def set_s3(db, backup_id, state, key=None, error=None):
    db.execute("UPDATE backups SET s3_state = ?, s3_key = COALESCE(?, s3_key), s3_error = ? WHERE id = ?",
               (state, key, error, backup_id))


def set_local(db, backup_id, local):
    db.execute("UPDATE backups SET local = ? WHERE id = ?", (1 if local else 0, backup_id))


def delete(db, backup_id):
    db.execute("DELETE FROM backups WHERE id = ?", (backup_id,))


def last_scheduled(db):
    """The newest scheduled backup of each container: ``{name: row}``."""
    rows = db.execute(f"SELECT {COLUMNS} FROM backups WHERE trigger = 'schedule' AND id IN"
                      " (SELECT MAX(id) FROM backups WHERE trigger = 'schedule' GROUP BY container_name)").fetchall()
    return {row["container_name"]: row for row in rows}


def failed_since(db, since):
    """Backups that failed (or whose S3 copy failed) since ``since`` (ISO UTC), newest first."""
    return db.execute(f"SELECT {COLUMNS} FROM backups WHERE (state = 'failed' OR s3_state = 'failed')"
                      " AND created_at >= ? ORDER BY id DESC", (since,)).fetchall()
