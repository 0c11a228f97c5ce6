"""NAT rule use cases. The DB is the source of truth; the kernel's rules follow it (``nat_sync``).

Adding and deleting change the DB row and the kernel rule together or not at all. A rule always
points at the address Incus assigned to the container (``nic_guard``), never at one the container
claims, and the container's NIC is pinned and filtered before its first forward.
"""
import contextlib
import logging
import sqlite3
import time

from ..exceptions import BadInput, Conflict, NotFound
from ..i18n import N_
from ..nat import Forward

log = logging.getLogger(__name__)

SQLITE_MAX_INTEGER = 2**63 - 1
FORWARD_CHECK_SECONDS = 60
RULE_COLUMNS = ("id, container_name, host_port, host_port_end, container_port, protocol, container_ip,"
                " ip_at_creation, created_at")


def rule_dict(row):
    rule = dict(row)
    rule["container_port_end"] = rule["container_port"] + rule["host_port_end"] - rule["host_port"]
    return rule


def forward_of(row, container_ip=None):
    return Forward(
        rule_id=row["id"], protocol=row["protocol"], host_port=row["host_port"],
        host_port_end=row["host_port_end"], container_ip=container_ip or row["container_ip"],
        container_port=row["container_port"],
    )


class NatRuleService:
    def __init__(self, nat, db, nic_guard, port_policy):
        self.nat = nat
        self.db = db
        self.nic_guard = nic_guard
        self.port_policy = port_policy
        self._forward_checked_at = 0.0

    # -- reading ----------------------------------------------------------------------------

    def get(self, rule_id):
        if not 0 < rule_id <= SQLITE_MAX_INTEGER:
            raise NotFound(N_("NAT rule {rule_id} does not exist"), rule_id=rule_id)
        row = self.db.query_one(f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE id = ?", (rule_id,))
        if row is None:
            raise NotFound(N_("NAT rule {rule_id} does not exist"), rule_id=rule_id)
        return row

    def list_for(self, container_name):
        rows = self.db.query(
            f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE container_name = ? ORDER BY host_port, protocol",
            (container_name,),
        )
        return [rule_dict(row) for row in rows]

    def list_all(self):
        return [rule_dict(row) for row in self.db.query(f"SELECT {RULE_COLUMNS} FROM nat_rules ORDER BY id")]

    # -- add --------------------------------------------------------------------------------

    def add(self, container_name, host_port, container_port, protocol, host_port_end=None):
        """Forward ``host_port[..host_port_end]/protocol`` to the container. Returns
        ``(rule, created)``; ``created`` is False when exactly this rule already existed."""
        host_port_end = host_port_end or host_port
        self.port_policy.check(host_port, host_port_end, protocol)
        instance, container_ip = self._assigned_address(container_name)
        # Before the rule exists: the address cannot move and the container cannot claim another's.
        self.nic_guard.guard(container_name, instance, container_ip)

        forward = None
        try:
            with self.db.transaction() as conn:
                # Inside the write transaction, so two requests cannot both see the ports free.
                overlapping = conn.execute(
                    f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE protocol = ? AND host_port <= ? AND host_port_end >= ?"
                    " ORDER BY host_port LIMIT 1",
                    (protocol, host_port_end, host_port),
                ).fetchone()
                if overlapping is not None:
                    return self._same_or_conflict(overlapping, container_name, host_port, host_port_end, container_port)
                cursor = conn.execute(
                    "INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol,"
                    " container_ip, ip_at_creation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (container_name, host_port, host_port_end, container_port, protocol, container_ip, container_ip),
                )
                candidate = Forward(cursor.lastrowid, protocol, host_port, container_ip, container_port, host_port_end)
                self.nat.add(candidate)  # raises -> the row is rolled back
                forward = candidate
        except sqlite3.IntegrityError as exc:
            raise Conflict(N_("Host port {host_port}/{protocol} is already forwarded"), host_port=host_port, protocol=protocol) from exc
        except BaseException:
            if forward is not None:  # the kernel rule went in but the commit failed
                self.nat.remove(forward)
            raise
        self._ensure_forward_accept_now_and_then()
        return rule_dict(self.get(forward.rule_id)), True

    def add_many(self, container_name, requests, pool=None, assigned=None):
        """Several forwards for one container, all or nothing: one DB write transaction and one
        kernel write. Returns the new rules.

        Each request is a ``PortRequest`` (``service.ports``): a fixed ``host_port`` is checked as
        ``add`` checks it (reserved, listened on, already forwarded: 409); ``host_port=None`` takes
        ``count`` consecutive free ports of ``pool``, chosen inside the transaction that inserts
        the rows, so two concurrent calls never get the same ports. ``container_port=None``
        forwards to the same port numbers in the container. Any rule already forwarding one of
        the ports (whatever its container) is a conflict: nothing is written. ``assigned``:
        ``(instance, address)`` when the caller has just read them (a sale, from its create).
        """
        fixed = [r for r in requests if r.host_port is not None]
        pooled = [r for r in requests if r.host_port is None]
        if pooled and pool is None:
            raise ValueError("add_many: a request without host_port needs a pool")
        for request in fixed:
            for protocol in request.protocols:
                self.port_policy.check(request.host_port, request.host_port + request.count - 1, protocol)
        instance, container_ip = assigned or self._assigned_address(container_name)
        self.nic_guard.guard(container_name, instance, container_ip)

        forwards = []
        written = False
        trying = (None, None)  # the host port and protocol being inserted, for an IntegrityError
        listening = pool.listening() if pooled else None
        try:
            with self.db.transaction() as conn:
                for request in fixed + pooled:
                    if request.host_port is None:
                        host_port, host_port_end = pool.free_block(conn, request.count, listening)
                    else:
                        host_port, host_port_end = request.host_port, request.host_port + request.count - 1
                    container_port = request.container_port or host_port
                    for protocol in request.protocols:
                        overlapping = conn.execute(
                            f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE protocol = ? AND host_port <= ?"
                            " AND host_port_end >= ? ORDER BY host_port LIMIT 1",
                            (protocol, host_port_end, host_port),
                        ).fetchone()
                        if overlapping is not None:  # never "the same rule": every forward here is new
                            self._same_or_conflict(overlapping, None, host_port, host_port_end, container_port)
                        trying = (host_port, protocol)
                        cursor = conn.execute(
                            "INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol,"
                            " container_ip, ip_at_creation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (container_name, host_port, host_port_end, container_port, protocol, container_ip,
                             container_ip),
                        )
                        forwards.append(Forward(cursor.lastrowid, protocol, host_port, container_ip, container_port,
                                                host_port_end))
                self.nat.add_many(forwards)  # one write of the table; raises -> every row is rolled back
                written = True
        except sqlite3.IntegrityError as exc:
            raise Conflict(N_("Host port {host_port}/{protocol} is already forwarded"),
                           host_port=trying[0], protocol=trying[1]) from exc
        except BaseException:
            if written:  # the kernel rules went in but the commit failed
                for forward in forwards:
                    self.nat.remove(forward)
            raise
        if forwards:
            self._ensure_forward_accept_now_and_then()
        ids = [forward.rule_id for forward in forwards]
        rows = self.db.query(
            f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE id IN ({','.join('?' * len(ids))}) ORDER BY host_port, protocol",
            ids,
        ) if ids else []
        return [rule_dict(row) for row in rows]

    @staticmethod
    def _same_or_conflict(existing, container_name, host_port, host_port_end, container_port):
        same = (existing["container_name"], existing["host_port"], existing["host_port_end"], existing["container_port"])
        if same == (container_name, host_port, host_port_end, container_port):
            return rule_dict(existing), False
        rule = rule_dict(existing)
        ports = str(rule["host_port"]) if rule["host_port"] == rule["host_port_end"] else f"{rule['host_port']}-{rule['host_port_end']}"
        raise Conflict(
            N_("Host port {ports}/{protocol} is already forwarded to {container}:{container_port} (rule {rule_id})"),
            ports=ports, protocol=rule["protocol"], container=rule["container_name"],
            container_port=rule["container_port"], rule_id=rule["id"],
        )

    def _assigned_address(self, container_name):
        """``(instance, address)`` of the running container, the address as Incus assigned it."""
        instance, address = self.nic_guard.address_of(container_name)
        if instance.get("status") != "Running":
            raise BadInput(
                N_("Container {name} must be running to add a NAT rule (it is {status})"),
                name=container_name, status=instance.get("status"),
            )
        if not address:
            raise BadInput(N_("Container {name} has no IPv4 address assigned by Incus"), name=container_name)
        return instance, address

    def _ensure_forward_accept_now_and_then(self):
        """The FORWARD accept rules stand while a forward exists (a sync repairs them too)."""
        if time.monotonic() - self._forward_checked_at > FORWARD_CHECK_SECONDS:
            self.ensure_forward_accept()

    def ensure_forward_accept(self):
        changed = self.nat.ensure_forward_accept()
        self._forward_checked_at = time.monotonic()
        return changed

    # -- delete -----------------------------------------------------------------------------

    def delete(self, rule_id):
        """Remove the kernel rule and the row. Returns ``(rule, kernel_had_it)``."""
        row = self.get(rule_id)
        forward = forward_of(row)
        removed = False
        try:
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM nat_rules WHERE id = ?", (rule_id,))
                kernel_had_it = self.nat.remove(forward)
                removed = kernel_had_it
        except BaseException:
            if removed:  # the commit failed after the kernel rule went: put it back
                self.nat.add(forward)
            raise
        return rule_dict(row), kernel_had_it

    @contextlib.contextmanager
    def removing_all_for(self, container_name):
        """Remove the container's rules (rows and kernel) for the duration of the block.

        Commits when the block succeeds; when it raises, the rows are rolled back and the kernel
        rules put back, so a failed container delete leaves its forwards working.
        """
        removed = []
        try:
            with self.db.transaction() as conn:
                rows = conn.execute(
                    f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE container_name = ?", (container_name,)
                ).fetchall()
                conn.execute("DELETE FROM nat_rules WHERE container_name = ?", (container_name,))
                for row in rows:
                    forward = forward_of(row)
                    if self.nat.remove(forward):
                        removed.append(forward)
                yield rows
        except BaseException:
            for forward in removed:
                try:
                    self.nat.add(forward)
                except Exception:  # noqa: BLE001 - restoring is best effort; the sync repairs the rest
                    log.exception("could not restore NAT rule %s", forward.rule_id)
            raise
