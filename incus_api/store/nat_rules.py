"""The ``nat_rules`` table: the forwards, the service's truth (the kernel's rules follow it).

A rule is bound to the instance it was made for (``instance_uuid``, Incus's ``volatile.uuid``).
An orphaned rule (``orphaned_at`` set) is one whose instance is gone: it stays, and its host ports
stay taken, but it is nobody's forward (``live`` rules are the others)."""

COLUMNS = ("id, container_name, host_port, host_port_end, container_port, protocol, container_ip,"
           " ip_at_creation, created_at, instance_uuid, orphaned_at")
LIVE = "orphaned_at IS NULL"


def get(db, rule_id):
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE id = ?", (rule_id,)).fetchone()


def of_container(db, name):
    """The container's live rules (not those of an earlier instance of its name, orphaned)."""
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE container_name = ? AND {LIVE}"
                      " ORDER BY host_port, protocol", (name,)).fetchall()


def of_containers(db, names=None, live=False):
    """The rules of the named containers (every rule with None); only the live ones with ``live``."""
    where = [LIVE] if live else []
    params = []
    if names is not None:
        names = list(names)
        where.append(f"container_name IN ({','.join('?' * len(names))})")
        params = names
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules{clause} ORDER BY id", params).fetchall()


def orphaned(db):
    """Every orphaned rule, oldest first."""
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE orphaned_at IS NOT NULL ORDER BY id").fetchall()


def by_ids(db, ids):
    ids = list(ids)
    if not ids:
        return []
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE id IN ({','.join('?' * len(ids))})"
                      " ORDER BY host_port, protocol", ids).fetchall()


def has_any(db, name):
    return db.execute(f"SELECT 1 FROM nat_rules WHERE container_name = ? AND {LIVE} LIMIT 1",
                      (name,)).fetchone() is not None


def counts(db):
    """``{container: number of live rules}``."""
    return dict(db.execute(f"SELECT container_name, COUNT(*) FROM nat_rules WHERE {LIVE}"
                           " GROUP BY container_name").fetchall())


def overlapping(db, protocol, host_port, host_port_end):
    """The first rule of ``protocol`` whose host ports overlap ``host_port..host_port_end``
    (an orphaned one too: its ports stay taken until it is deleted)."""
    return db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE protocol = ? AND host_port <= ? AND host_port_end >= ?"
                      " ORDER BY host_port LIMIT 1", (protocol, host_port_end, host_port)).fetchone()


def taken_between(db, start, end):
    """``[(host_port, host_port_end)]`` of every rule (either protocol, orphaned ones too) that
    touches ``start..end``."""
    return [(row[0], row[1]) for row in db.execute(
        "SELECT host_port, host_port_end FROM nat_rules WHERE host_port <= ? AND host_port_end >= ?",
        (end, start)).fetchall()]


def insert(db, name, host_port, host_port_end, container_port, protocol, container_ip, instance_uuid=None):
    """A new rule for the instance ``instance_uuid`` of ``name``; its id. ``sqlite3.IntegrityError``
    when its first host port is taken."""
    return db.execute(
        "INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol,"
        " container_ip, ip_at_creation, instance_uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, host_port, host_port_end, container_port, protocol, container_ip, container_ip,
         instance_uuid)).lastrowid


def readdress(db, rule_id, container_ip):
    db.execute("UPDATE nat_rules SET container_ip = ? WHERE id = ?", (container_ip, rule_id))


def bind(db, rule_id, instance_uuid):
    """Record the instance of a rule made before rules recorded theirs."""
    db.execute("UPDATE nat_rules SET instance_uuid = ? WHERE id = ? AND instance_uuid IS NULL", (instance_uuid, rule_id))


def orphan(db, rule_ids):
    """Mark the live ones of ``rule_ids`` orphaned (now); the ids marked."""
    ids = list(rule_ids)
    if not ids:
        return []
    marks = ','.join('?' * len(ids))
    marked = [row[0] for row in db.execute(
        f"SELECT id FROM nat_rules WHERE id IN ({marks}) AND {LIVE} ORDER BY id", ids).fetchall()]
    db.execute(f"UPDATE nat_rules SET orphaned_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
               f" WHERE id IN ({marks}) AND {LIVE}", ids)
    return marked


def delete(db, rule_id):
    db.execute("DELETE FROM nat_rules WHERE id = ?", (rule_id,))


def delete_of_container(db, name, instance_uuid=None):
    """Delete the container's live rules (with ``instance_uuid``: those of that instance, or of
    none recorded); the rows deleted. Orphaned rules of an earlier instance of the name stay."""
    where, params = f"container_name = ? AND {LIVE}", [name]
    if instance_uuid is not None:
        where += " AND (instance_uuid IS NULL OR instance_uuid = ?)"
        params.append(instance_uuid)
    rows = db.execute(f"SELECT {COLUMNS} FROM nat_rules WHERE {where}", params).fetchall()
    db.execute(f"DELETE FROM nat_rules WHERE {where}", params)
    return rows
