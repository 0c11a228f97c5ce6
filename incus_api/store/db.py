"""SQLite adapter: one connection per thread, explicit transactions, numbered migrations.

Migrations are the files ``migrations/NNN_name.sql``; ``PRAGMA user_version`` records the last one
applied, so running them again is a no-op and an upgrade only runs the new files.
"""
import contextlib
import os
import re
import sqlite3
import threading
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d+)_[\w-]+\.sql$")


def migrations():
    """(version, path) of every migration file, in order."""
    found = []
    for path in MIGRATIONS_DIR.iterdir():
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class Database:
    def __init__(self, path):
        self.path = str(path)
        self._local = threading.local()

    @property
    def connection(self):
        conn = getattr(self._local, "connection", None)
        if conn is None:
            conn = self._connect()
            self._local.connection = conn
        return conn

    def _connect(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        new_file = not os.path.exists(self.path)
        # isolation_level=None: no implicit transactions; ``transaction()`` opens them explicitly.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        if new_file:
            os.chmod(self.path, 0o600)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def close(self):
        conn = getattr(self._local, "connection", None)
        if conn is not None:
            conn.close()
            self._local.connection = None

    def execute(self, sql, params=()):
        return self.connection.execute(sql, params)

    def executemany(self, sql, rows):
        return self.connection.executemany(sql, rows)

    def query(self, sql, params=()):
        return self.connection.execute(sql, params).fetchall()

    def query_one(self, sql, params=()):
        return self.connection.execute(sql, params).fetchone()

    @contextlib.contextmanager
    def transaction(self):
        """A write transaction (``BEGIN IMMEDIATE``: writers queue here, not at commit time).

        Commits when the block ends, rolls back when it raises.
        """
        conn = self.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @property
    def schema_version(self):
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self):
        """Apply every migration newer than the database; returns the versions applied."""
        applied = []
        for version, path in migrations():
            with self.transaction() as conn:
                if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                    continue
                for statement in _statements(path.read_text()):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version:d}")
            applied.append(version)
        return applied


def _statements(script):
    """Split a migration into statements (``executescript`` would commit our transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            if statement.strip():
                yield statement.strip()
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {statement!r}")
