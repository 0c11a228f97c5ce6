"""The ``nat_rules`` table: the forwards, the service's truth (the kernel's rules follow it)."""

COLUMNS = ("id, container_name, host_port, host_port_end, container_port, protocol, container_ip,"
           " ip_at_creation, created_at")


def get(db, rule_id):
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE id = ?", (rule_id,)).fetchone()


def of_container(db, name):
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE container_name = ? ORDER BY host_port, protocol",
                      (name,)).fetchall()


def of_containers(db, names=None):
    """The rules of the named containers (every rule with None)."""
    if names is None:
        return db.execute(f"SELECT {COLUMNS} FROM nat_rules ORDER BY id").fetchall()
    names = list(names)
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE container_name IN ({','.join('?' * len(names))})"
                      " ORDER BY id", names).fetchall()


def by_ids(db, ids):
    ids = list(ids)
    if not ids:
        return []
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE id IN ({','.join('?' * len(ids))})"
                      " ORDER BY host_port, protocol", ids).fetchall()


def has_any(db, name):
    return db.execute("SELECT 1 FROM nat_rules WHERE container_name = ? LIMIT 1", (name,)).fetchone() is not None


def counts(db):
    """``{container: number of rules}``."""
    return dict(db.execute("SELECT container_name, COUNT(*) FROM nat_rules GROUP BY container_name").fetchall())


def overlapping(db, protocol, host_port, host_port_end):
    """The first rule of ``protocol`` whose host ports overlap ``host_port..host_port_end``."""
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE protocol = ? AND host_port <= ? AND host_port_end >= ?"
                      " ORDER BY host_port LIMIT 1", (protocol, host_port_end, host_port)).fetchone()


def taken_between(db, start, end):
    """``[(host_port, host_port_end)]`` of every rule (either protocol) that touches ``start..end``."""
    return [(row[0], row[1]) for row in db.execute(
        "SELECT host_port, host_port_end FROM nat_rules WHERE host_port <= ? AND host_port_end >= ?",
        (end, start)).fetchall()]


def insert(db, name, host_port, host_port_end, container_port, protocol, container_ip):
    """A new rule; its id. ``sqlite3.IntegrityError`` when its first host port is taken."""
    return db.execute(
        "INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol,"
        " container_ip, ip_at_creation) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (name, host_port, host_port_end, container_port, protocol, container_ip, container_ip)).lastrowid


def readdress(db, rule_id, container_ip):
    db.execute("UPDATE nat_rules SET container_ip = ? WHERE id = ?", (container_ip, rule_id))


def delete(db, rule_id):
    db.execute("DELETE FROM nat_rules WHERE id = ?", (rule_id,))


def delete_of_container(db, name):
    """Delete the container's rules; the rows deleted."""
    rows = db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE container_name = ?", (name,)).fetchall()
    db.execute("DELETE FROM nat_rules WHERE container_name = ?", (name,))
    return rows
