"""NAT rule use cases. The DB row and the kernel rule change together or not at all."""
import contextlib
import logging
import sqlite3
import time

from ..exceptions import BadInput, Conflict, NotFound
from ..i18n import N_
from ..nat import Forward
from .addresses import container_ipv4

log = logging.getLogger(__name__)

IPV4_WAIT_SECONDS = 5
RULE_COLUMNS = "id, container_name, host_port, container_port, protocol, container_ip, created_at"


def rule_dict(row):
    rule = dict(row)
    rule["ip_at_creation"] = rule["container_ip"]  # the original project's field name
    return rule


def forward_of(row):
    return Forward(
        rule_id=row["id"], protocol=row["protocol"], host_port=row["host_port"],
        container_ip=row["container_ip"], container_port=row["container_port"],
    )


class NatRuleService:
    def __init__(self, incus, nat, db):
        self.incus = incus
        self.nat = nat
        self.db = db

    def get(self, rule_id):
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

    def add(self, container_name, host_port, container_port, protocol):
        """Forward ``host_port/protocol`` to the container. Returns ``(rule, created)``;
        ``created`` is False when exactly this rule already existed."""
        container_ip = self._running_ipv4(container_name)
        existing = self.db.query_one(
            f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE host_port = ? AND protocol = ?", (host_port, protocol)
        )
        if existing is not None:
            return self._same_or_conflict(existing, container_name, container_port)

        forward = None
        try:
            with self.db.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO nat_rules (container_name, host_port, container_port, protocol, container_ip)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (container_name, host_port, container_port, protocol, container_ip),
                )
                candidate = Forward(cursor.lastrowid, protocol, host_port, container_ip, container_port)
                self.nat.add(candidate)  # raises -> the row is rolled back
                forward = candidate
        except sqlite3.IntegrityError:
            # Another request took the port between our check and our insert.
            existing = self.db.query_one(
                f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE host_port = ? AND protocol = ?", (host_port, protocol)
            )
            if existing is None:
                raise
            return self._same_or_conflict(existing, container_name, container_port)
        except BaseException:
            if forward is not None:  # the kernel rule went in but the commit failed
                self.nat.remove(forward)
            raise
        return rule_dict(self.get(forward.rule_id)), True

    @staticmethod
    def _same_or_conflict(existing, container_name, container_port):
        if existing["container_name"] == container_name and existing["container_port"] == container_port:
            return rule_dict(existing), False
        raise Conflict(
            N_("Host port {host_port}/{protocol} is already forwarded to {container}:{container_port} (rule {rule_id})"),
            host_port=existing["host_port"], protocol=existing["protocol"], container=existing["container_name"],
            container_port=existing["container_port"], rule_id=existing["id"],
        )

    def _running_ipv4(self, container_name):
        """The container's IPv4; waits a few seconds for DHCP right after a start."""
        deadline = time.monotonic() + IPV4_WAIT_SECONDS
        while True:
            state = self.incus.instance_state(container_name)
            if state.get("status") != "Running":
                raise BadInput(
                    N_("Container {name} must be running to add a NAT rule (it is {status})"),
                    name=container_name, status=state.get("status"),
                )
            address = container_ipv4(state)
            if address:
                return address
            if time.monotonic() > deadline:
                raise BadInput(N_("Container {name} has no IPv4 address"), name=container_name)
            time.sleep(0.2)

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
