"""The ``audit_log`` table: one row per state-changing request or system event."""
import json

TIME_FORMAT = "%Y-%m-%dT%H:%M:%fZ"  # as the table's created_at default writes it


def insert(db, actor, client_address, method, action, target, details, status_code, result):
    """Add one entry; returns its id."""
    return db.execute(
        "INSERT INTO audit_log (actor, client_address, method, action, target, details, status_code, result)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (actor, client_address, method, action, target, json.dumps(details, ensure_ascii=False) if details else None,
         status_code, result),
    ).lastrowid


def complete(db, entry_id, details, result):
    db.execute("UPDATE audit_log SET details = ?, result = ? WHERE id = ?",
               (json.dumps(details, ensure_ascii=False) if details else None, result, entry_id))


def delete_older_than(db, days):
    return db.execute("DELETE FROM audit_log WHERE created_at < strftime(?, 'now', ?)",
                      (TIME_FORMAT, f"-{days:d} days")).rowcount


def delete_all_but_newest(db, actor, keep):
    """Drop ``actor``'s entries but the newest ``keep``: the newest row beyond them, then every
    row of that actor at or below it (both use the (actor, id) index)."""
    boundary = db.execute("SELECT id FROM audit_log WHERE actor = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                          (actor, keep)).fetchone()
    if boundary is None:
        return 0
    return db.execute("DELETE FROM audit_log WHERE actor = ? AND id <= ?", (actor, boundary["id"])).rowcount


def newest(db, limit, target=None, before_id=None):
    """The newest ``limit`` entries (of one ``target``, or older than ``before_id``), details decoded."""
    clauses, params = [], []
    if target:
        clauses.append("target = ?")
        params.append(target)
    if before_id:
        clauses.append("id < ?")
        params.append(before_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
    return [{**dict(row), "details": json.loads(row["details"]) if row["details"] else {}} for row in rows]
