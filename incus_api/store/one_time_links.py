"""One-time links: the ``console_tokens`` and ``customer_links`` tables (the same columns), each
row by the SHA-256 of its token (never the token)."""

TABLES = frozenset(("console_tokens", "customer_links"))


def _table(name):
    if name not in TABLES:  # a table name is part of the SQL: only ours
        raise ValueError(f"not a table of one-time links: {name!r}")
    return name


def add(db, table, digest, name, instance_uuid, created_at, expires_at, prune_before):
    """Store a new link (for the instance of ``name`` whose Incus UUID is ``instance_uuid``) and
    drop those expired before ``prune_before``, in one transaction."""
    table = _table(table)
    with db.transaction() as conn:
        conn.execute(f"DELETE FROM {table} WHERE expires_at < ?", (prune_before,))
        conn.execute(f"INSERT INTO {table} (token_hash, container_name, instance_uuid, created_at, expires_at)"
                     " VALUES (?, ?, ?, ?, ?)", (digest, name, instance_uuid, created_at, expires_at))


def find(db, table, digest):
    return db.execute(f"SELECT container_name, instance_uuid, expires_at, used_at FROM {_table(table)} WHERE token_hash = ?",
                      (digest,)).fetchone()


def spend(db, table, digest, now):
    """Mark the link used; False when it was used or expired meanwhile (another open was faster).
    ``db`` may be a connection inside a transaction."""
    return db.execute(f"UPDATE {_table(table)} SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                      (now, digest, now)).rowcount == 1
