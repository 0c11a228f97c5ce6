"""The ``console_tokens`` table: one-time console links, by the hash of the token (never the token)."""


def add(db, digest, name, instance_uuid, created_at, expires_at, prune_before):
    """Store a new link (for the instance of ``name`` whose Incus UUID is ``instance_uuid``) and
    drop those expired before ``prune_before``, in one transaction."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM console_tokens WHERE expires_at < ?", (prune_before,))
        conn.execute("INSERT INTO console_tokens (token_hash, container_name, instance_uuid, created_at, expires_at)"
                     " VALUES (?, ?, ?, ?, ?)", (digest, name, instance_uuid, created_at, expires_at))


def find(db, digest):
    return db.execute("SELECT container_name, instance_uuid, expires_at, used_at FROM console_tokens WHERE token_hash = ?",
                      (digest,)).fetchone()


def spend(db, digest, now):
    """Mark the link used; False when it was used or expired meanwhile (another open was faster)."""
    return db.execute("UPDATE console_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                      (now, digest, now)).rowcount == 1
