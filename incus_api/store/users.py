"""The ``users`` table: the dashboard's admins (name and password hash)."""

COLUMNS = "id, username, password_hash"


def by_name(db, username):
    return db.execute(f"SELECT {COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()


def by_id(db, user_id):
    return db.execute(f"SELECT {COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()


def save(db, username, password_hash):
    """Add the user, or give an existing one this password hash."""
    db.execute("INSERT INTO users (username, password_hash) VALUES (?, ?) "
               "ON CONFLICT(username) DO UPDATE SET password_hash = excluded.password_hash", (username, password_hash))
