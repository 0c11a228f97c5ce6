"""The ``customer_links`` and ``customer_sessions`` tables: one-time links to a container's customer
panel and the browsers they signed in, each by the SHA-256 of its token (never the token)."""


def add_link(db, digest, name, instance_uuid, created_at, expires_at, prune_before):
    """Store a new link and drop those expired before ``prune_before``, in one transaction."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM customer_links WHERE expires_at < ?", (prune_before,))
        conn.execute("INSERT INTO customer_links (token_hash, container_name, instance_uuid, created_at, expires_at)"
                     " VALUES (?, ?, ?, ?, ?)", (digest, name, instance_uuid, created_at, expires_at))


def find_link(db, digest):
    return db.execute("SELECT container_name, instance_uuid, expires_at, used_at FROM customer_links WHERE token_hash = ?",
                      (digest,)).fetchone()


def spend_link_for_session(db, digest, now, session_digest, expires_at, client_address):
    """Mark the link used and open its session, in one transaction; False when the link was used
    or expired meanwhile (another open was faster)."""
    with db.transaction() as conn:
        row = conn.execute("SELECT container_name, instance_uuid FROM customer_links WHERE token_hash = ? "
                           "AND used_at IS NULL AND expires_at > ?", (digest, now)).fetchone()
        if row is None:
            return False
        conn.execute("UPDATE customer_links SET used_at = ? WHERE token_hash = ?", (now, digest))
        conn.execute("DELETE FROM customer_sessions WHERE expires_at <= ?", (now,))
        conn.execute("INSERT INTO customer_sessions (session_hash, container_name, instance_uuid, created_at, last_seen,"
                     " expires_at, client_address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (session_digest, row["container_name"], row["instance_uuid"], now, now, expires_at, client_address))
        return True


def find_session(db, digest, now):
    """A session that has not expired, or None."""
    return db.execute("SELECT session_hash, container_name, instance_uuid, last_seen, expires_at FROM customer_sessions "
                      "WHERE session_hash = ? AND expires_at > ?", (digest, now)).fetchone()


def touch_session(db, digest, now):
    db.execute("UPDATE customer_sessions SET last_seen = ? WHERE session_hash = ?", (now, digest))


def end_session(db, digest):
    db.execute("DELETE FROM customer_sessions WHERE session_hash = ?", (digest,))


def end_sessions(db, name):
    """End every session of ``name``'s customer, and the links not opened yet; how many sessions ended."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM customer_links WHERE container_name = ?", (name,))
        return conn.execute("DELETE FROM customer_sessions WHERE container_name = ?", (name,)).rowcount


def sessions_of(db, name, now):
    """``(count, last seen)`` of ``name``'s open customer sessions."""
    row = db.execute("SELECT COUNT(*) AS count, MAX(last_seen) AS last_seen FROM customer_sessions "
                     "WHERE container_name = ? AND expires_at > ?", (name, now)).fetchone()
    return row["count"], row["last_seen"]
