"""The ``port_blocks`` table: the consecutive host ports sold with a container (``ports=N``).

A block's ports are its container's whether or not a rule forwards them now; the pool counts them
taken. Bound to the instance it was sold with (``instance_uuid``, Incus's ``volatile.uuid``; None
for a block recorded from rules that had none)."""

COLUMNS = "id, container_name, instance_uuid, first_port, last_port, created_at"


def insert(db, name, instance_uuid, first_port, last_port):
    return db.execute("INSERT INTO port_blocks (container_name, instance_uuid, first_port, last_port)"
                      " VALUES (?, ?, ?, ?)", (name, instance_uuid, first_port, last_port)).lastrowid


def of_container(db, name):
    """The container's blocks (of any instance of its name), oldest first."""
    return db.execute(f"SELECT {COLUMNS} FROM port_blocks WHERE container_name = ? ORDER BY id", (name,)).fetchall()


def of_containers(db, names=None):
    """The blocks of the named containers (every block with None), oldest first."""
    if names is None:
        return db.execute(f"SELECT {COLUMNS} FROM port_blocks ORDER BY id").fetchall()
    names = list(names)
    return db.execute(f"SELECT {COLUMNS} FROM port_blocks WHERE container_name IN ({','.join('?' * len(names))})"
                      " ORDER BY id", names).fetchall()


def overlapping(db, first_port, last_port):
    """Every block holding a port of ``first_port..last_port``, lowest first."""
    return db.execute(f"SELECT {COLUMNS} FROM port_blocks WHERE first_port <= ? AND last_port >= ?"
                      " ORDER BY first_port", (last_port, first_port)).fetchall()


def taken_between(db, start, end):
    """``[(first_port, last_port)]`` of every block that touches ``start..end``."""
    return [(row[0], row[1]) for row in db.execute(
        "SELECT first_port, last_port FROM port_blocks WHERE first_port <= ? AND last_port >= ?",
        (end, start)).fetchall()]


def bind(db, block_id, instance_uuid):
    """Record the instance of a block recorded from rules that had none."""
    db.execute("UPDATE port_blocks SET instance_uuid = ? WHERE id = ? AND instance_uuid IS NULL",
               (instance_uuid, block_id))


def delete(db, block_id):
    db.execute("DELETE FROM port_blocks WHERE id = ?", (block_id,))


def delete_of_container(db, name, instance_uuid=None):
    """Delete the container's blocks (with ``instance_uuid``: those of that instance, or of none
    recorded); the rows deleted."""
    where, params = "container_name = ?", [name]
    if instance_uuid is not None:
        where += " AND (instance_uuid IS NULL OR instance_uuid = ?)"
        params.append(instance_uuid)
    rows = db.execute(f"SELECT {COLUMNS} FROM port_blocks WHERE {where}", params).fetchall()
    db.execute(f"DELETE FROM port_blocks WHERE {where}", params)
    return rows
