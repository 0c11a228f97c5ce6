"""The ``settings`` table: small named values the service keeps (the stored API secret)."""


def get(db, key, default=None):
    row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else default


def put(db, key, value):
    db.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def put_if_missing(db, key, value):
    db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
