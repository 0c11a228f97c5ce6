"""The ``customer_sessions`` table: the browsers a customer's one-time link (``customer_links``,
``one_time_links``) signed in, each by the SHA-256 of its session id (never the id)."""


def open_session(conn, session_digest, name, instance_uuid, now, expires_at, client_address):
    """A new session (``conn``: inside the transaction that spent its link); the expired ones go."""
    conn.execute("DELETE FROM customer_sessions WHERE expires_at <= ?", (now,))
    conn.execute("INSERT INTO customer_sessions (session_hash, container_name, instance_uuid, created_at, last_seen,"
                 " expires_at, client_address) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (session_digest, name, instance_uuid, now, now, expires_at, client_address))


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
