"""NAT rule use cases. The DB is the source of truth; the kernel's rules follow it (``nat_sync``).

Adding and deleting change the DB row and the kernel rule together or not at all. A rule always
points at the address Incus assigned to the container (``bridge``), never at one the container
claims, and the container's NIC is pinned and filtered before its first forward.

Every change of the forwards (rows and kernel rules) holds ``NatRuleService.lock``, the NAT
table's lock: the row is committed first, then the kernel written, and the row taken back when
the kernel refuses. So the SQLite write transaction never waits on the kernel (the xtables lock),
and a sync, which takes the same lock, never sees a row whose kernel write is still under way.

A rule is bound to the instance it was made for (its Incus ``volatile.uuid``). When that instance
is gone (deleted outside the service, or made again under its name), a sync orphans the rule
(``nat_sync``): it leaves the kernel and is nobody's forward, but the row stays, shown with
``orphaned``, and its host ports stay taken until it is deleted.

A sale's port block (``ports=N``) is recorded beside its rules, in the same transaction
(``port_blocks``): its ports stay the container's whatever its rules are now, so no other
container's rule may take one (409) and the pool never hands one out. The service's delete of the
container drops its block with its rules; a sync drops the block of an instance that is gone.
"""
import contextlib
import logging
import sqlite3
import threading
import time

from ..exceptions import BadInput, Conflict, NotFound
from ..i18n import N_
from ..nat import Forward
from ..store import nat_rules as rules_table
from ..store import port_blocks as blocks_table
from .suspensions import instance_uuid

log = logging.getLogger(__name__)

SQLITE_MAX_INTEGER = 2**63 - 1
FORWARD_CHECK_SECONDS = 60

def rule_dict(row):
    rule = dict(row)
    rule.pop("instance_uuid", None)
    rule["container_port_end"] = rule["container_port"] + rule["host_port_end"] - rule["host_port"]
    rule["orphaned"] = rule.get("orphaned_at") is not None
    return rule


def block_dict(row):
    """A port block as the API and the panels show it."""
    return {"start": row["first_port"], "end": row["last_port"], "count": row["last_port"] - row["first_port"] + 1}


def same_owner(row, container_name, uuid):
    """Whether ``row`` (a rule's or a block's) is of this container's instance ``uuid`` (either
    UUID unknown: the name decides)."""
    return row["container_name"] == container_name and (
        None in (uuid, row["instance_uuid"]) or uuid == row["instance_uuid"])


def forward_of(row, container_ip=None):
    return Forward(
        rule_id=row["id"], protocol=row["protocol"], host_port=row["host_port"],
        host_port_end=row["host_port_end"], container_ip=container_ip or row["container_ip"],
        container_port=row["container_port"],
    )


class NatRuleService:
    def __init__(self, nat, db, addresses, nic_guard, port_policy):
        self.nat = nat
        self.db = db
        self.addresses = addresses
        self.nic_guard = nic_guard
        self.port_policy = port_policy
        self.lock = threading.Lock()  # the NAT table's: held by every change of rows + kernel rules
        self.leaving = set()  # containers this service is deleting (see ``withdrawn``); under the lock
        self._forward_checked_at = 0.0

    # -- reading ----------------------------------------------------------------------------

    def get(self, rule_id):
        if not 0 < rule_id <= SQLITE_MAX_INTEGER:
            raise NotFound(N_("NAT rule {rule_id} does not exist"), rule_id=rule_id)
        row = rules_table.get(self.db, rule_id)
        if row is None:
            raise NotFound(N_("NAT rule {rule_id} does not exist"), rule_id=rule_id)
        return row

    def list_for(self, container_name, uuid=None):
        """The container's rules (not the orphaned ones of an earlier container of its name); with
        ``uuid``, only those of that instance (or of none recorded)."""
        return [rule_dict(row) for row in rules_table.of_container(self.db, container_name)
                if uuid is None or same_owner(row, container_name, uuid)]

    def list_all(self):
        """Every rule, orphaned ones included (``orphaned``), oldest first."""
        return [rule_dict(row) for row in rules_table.of_containers(self.db)]

    def list_live(self):
        """Every rule that should be in the kernel (not orphaned)."""
        return [rule_dict(row) for row in rules_table.of_containers(self.db, live=True)]

    def orphaned(self):
        """The orphaned rules, oldest first: their containers are gone; their ports stay taken."""
        return [rule_dict(row) for row in rules_table.orphaned(self.db)]

    def counts(self):
        """``{container: number of its rules}`` (orphaned ones not counted)."""
        return rules_table.counts(self.db)

    def has_rules(self, container_name):
        return rules_table.has_any(self.db, container_name)

    def free_ports(self, pool, count, listening=None):
        """``(start, end)`` of the next ``count`` consecutive free ports of ``pool`` (reads only)."""
        return pool.free_block(self.db, count, listening)

    def forwarded(self, host_port, protocol):
        """The rule forwarding ``host_port/protocol``, or None."""
        return rules_table.overlapping(self.db, protocol, host_port, host_port)

    def block_of(self, container_name, uuid=None):
        """The port block of the container (of its instance ``uuid`` when given) as ``block_dict``,
        or None: a container sold without ``ports``, or before blocks were recorded and whose
        rules did not show one (migration 014)."""
        rows = [row for row in blocks_table.of_container(self.db, container_name)
                if same_owner(row, container_name, uuid)]
        exact = [row for row in rows if uuid is not None and row["instance_uuid"] == uuid]
        return block_dict((exact or rows)[0]) if rows else None

    def check_blocks(self, container_name, host_port, host_port_end, uuid=None, db=None):
        """409 when a port of ``host_port..host_port_end`` is in another container's port block
        (or in one of an earlier instance of this name)."""
        for row in blocks_table.overlapping(db or self.db, host_port, host_port_end):
            if not same_owner(row, container_name, uuid):
                raise Conflict(N_("Host port {port} is in the port block {block} sold with container {container}: "
                                  "it is not free for another container"),
                               port=max(host_port, row["first_port"]), container=row["container_name"],
                               block=f"{row['first_port']}-{row['last_port']}")

    # -- add --------------------------------------------------------------------------------

    def add(self, container_name, host_port, container_port, protocol, host_port_end=None, for_instance=None):
        """Forward ``host_port[..host_port_end]/protocol`` to the container. Returns
        ``(rule, created)``; ``created`` is False when exactly this rule already existed.
        ``for_instance``: the instance UUID the caller acts for (a customer's session): 404 when
        the container of that name is another instance now."""
        host_port_end = host_port_end or host_port
        self.port_policy.check(host_port, host_port_end, protocol)
        instance, container_ip = self._assigned_address(container_name)
        if for_instance is not None and instance_uuid(instance) not in (None, for_instance):
            raise NotFound(N_("Container {name} does not exist"), name=container_name)
        # Before the rule exists: the address cannot move and the container cannot claim another's.
        self.nic_guard.guard(container_name, instance, container_ip)

        with self.lock:
            try:
                with self.db.transaction() as conn:
                    # Inside the write transaction, so two requests cannot both see the ports free.
                    overlapping = rules_table.overlapping(conn, protocol, host_port, host_port_end)
                    if overlapping is not None:
                        return self._same_or_conflict(overlapping, container_name, host_port, host_port_end,
                                                      container_port, instance_uuid(instance))
                    self.check_blocks(container_name, host_port, host_port_end, instance_uuid(instance), db=conn)
                    rule_id = rules_table.insert(conn, container_name, host_port, host_port_end, container_port,
                                                 protocol, container_ip, instance_uuid(instance))
            except sqlite3.IntegrityError as exc:
                raise Conflict(N_("Host port {host_port}/{protocol} is already forwarded"), host_port=host_port,
                               protocol=protocol) from exc
            forward = Forward(rule_id, protocol, host_port, container_ip, container_port, host_port_end)
            self._into_kernel(lambda: self.nat.add(forward), [rule_id])
        self._ensure_forward_accept_now_and_then()
        return rule_dict(self.get(rule_id)), True

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

        forwards, block_ids = [], []
        trying = (None, None)  # the host port and protocol being inserted, for an IntegrityError
        listening = pool.listening() if pooled else None
        with self.lock:
            try:
                with self.db.transaction() as conn:
                    for request in fixed + pooled:
                        if request.host_port is None:
                            host_port, host_port_end = pool.free_block(conn, request.count, listening)
                        else:
                            host_port, host_port_end = request.host_port, request.host_port + request.count - 1
                        container_port = request.container_port or host_port
                        self.check_blocks(container_name, host_port, host_port_end, instance_uuid(instance), db=conn)
                        if request.block:
                            block_ids.append(blocks_table.insert(conn, container_name, instance_uuid(instance),
                                                                 host_port, host_port_end))
                        for protocol in request.protocols:
                            overlapping = rules_table.overlapping(conn, protocol, host_port, host_port_end)
                            if overlapping is not None:  # never "the same rule": every forward here is new
                                self._same_or_conflict(overlapping, None, host_port, host_port_end, container_port)
                            trying = (host_port, protocol)
                            rule_id = rules_table.insert(conn, container_name, host_port, host_port_end,
                                                         container_port, protocol, container_ip,
                                                         instance_uuid(instance))
                            forwards.append(Forward(rule_id, protocol, host_port, container_ip, container_port,
                                                    host_port_end))
            except sqlite3.IntegrityError as exc:
                raise Conflict(N_("Host port {host_port}/{protocol} is already forwarded"),
                               host_port=trying[0], protocol=trying[1]) from exc
            self._into_kernel(lambda: self.nat.add_many(forwards), [forward.rule_id for forward in forwards],
                              block_ids)
        if forwards:
            self._ensure_forward_accept_now_and_then()
        return [rule_dict(row) for row in rules_table.by_ids(self.db, [forward.rule_id for forward in forwards])]

    def restore_forwards(self, container_name, uuid, container_ip, rules, blocks, pool=None):
        """A restored container's forwards and port blocks (``rules``: ``{"host_port",
        "host_port_end", "container_port", "protocol"}``; ``blocks``: ``{"first_port", "last_port"}``),
        all or nothing: one DB write transaction and one kernel write. Without ``pool`` they take the
        recorded host ports, and any that is reserved, listened on, forwarded or in another's block
        is a 409 listing them all (``data["ports"]``); with ``pool`` each block and each other range
        takes free pool ports of its size (a rule inside a block moves with it). Returns the rules."""
        rules = sorted(rules, key=lambda r: (r["host_port"], r["protocol"]))
        if pool is None:
            self.refuse_taken(rules, blocks)
        listening = pool.listening() if pool is not None else None
        forwards, block_ids = [], []
        with self.lock:
            try:
                with self.db.transaction() as conn:
                    moves = {}  # recorded (first, last) -> the (first, last) taken for it here
                    for block in blocks:
                        first, last = block["first_port"], block["last_port"]
                        if pool is not None:
                            first, last = moves[(block["first_port"], last)] = \
                                pool.free_block(conn, last - first + 1, listening)
                        elif blocks_table.overlapping(conn, first, last):
                            self.refuse_taken(rules, blocks, conn)
                        block_ids.append(blocks_table.insert(conn, container_name, uuid, first, last))
                    for rule in rules:
                        host_port, host_port_end = self._moved(rule, moves, conn, pool, listening)
                        shift = host_port - rule["host_port"]
                        container_port = rule["container_port"] + (shift if rule["container_port"] == rule["host_port"]
                                                                   else 0)
                        if rules_table.overlapping(conn, rule["protocol"], host_port, host_port_end) is not None:
                            self.refuse_taken(rules, blocks, conn)
                        rule_id = rules_table.insert(conn, container_name, host_port, host_port_end, container_port,
                                                     rule["protocol"], container_ip, uuid)
                        forwards.append(Forward(rule_id, rule["protocol"], host_port, container_ip, container_port,
                                                host_port_end))
            except sqlite3.IntegrityError:
                self.refuse_taken(rules, blocks)
                raise
            self._into_kernel(lambda: self.nat.add_many(forwards), [f.rule_id for f in forwards], block_ids)
        if forwards:
            self._ensure_forward_accept_now_and_then()
        return [rule_dict(row) for row in rules_table.by_ids(self.db, [forward.rule_id for forward in forwards])]

    @staticmethod
    def _moved(rule, moves, conn, pool, listening):
        """The host ports ``rule`` takes: as recorded, shifted with its block, or new pool ports
        (the same for the tcp and udp rules of one range)."""
        first, last = rule["host_port"], rule["host_port_end"]
        if pool is None:
            return first, last
        for (old_first, old_last), (new_first, _) in moves.items():
            if old_first <= first and last <= old_last:
                return first - old_first + new_first, last - old_first + new_first
        if (first, last) not in moves:
            moves[(first, last)] = pool.free_block(conn, last - first + 1, listening)
        return moves[(first, last)]

    def refuse_taken(self, rules, blocks, db=None):
        """409 naming every recorded host port that cannot be had here (reserved, listened on,
        forwarded, in a block); nothing when all are free."""
        db = db or self.db
        taken = set()
        for rule in rules:
            taken.update(self.port_policy.unavailable(rule["host_port"], rule["host_port_end"], rule["protocol"]))
            if rules_table.overlapping(db, rule["protocol"], rule["host_port"], rule["host_port_end"]) is not None:
                taken.update(self._forwarded_ports(db, rule))
        for block in blocks:
            for row in blocks_table.overlapping(db, block["first_port"], block["last_port"]):
                taken.update(range(max(row["first_port"], block["first_port"]), min(row["last_port"], block["last_port"]) + 1))
        if taken:
            ports = sorted(taken)
            shown = ", ".join(map(str, ports[:20])) + (" ..." if len(ports) > 20 else "")
            raise Conflict(N_("Host ports {ports} are taken on this host: free them, or restore with ports=auto to "
                              "take free ports of the pool"), ports=shown, data={"ports": ports})

    @staticmethod
    def _forwarded_ports(db, rule):
        return [port for port in range(rule["host_port"], rule["host_port_end"] + 1)
                if rules_table.overlapping(db, rule["protocol"], port, port) is not None]

    def _into_kernel(self, write, rule_ids, block_ids=()):
        """``write`` the kernel rules of rows just committed; when it fails, the rows (and the
        blocks recorded with them) go again. Called with the NAT lock held."""
        try:
            write()
        except BaseException:
            with self.db.transaction() as conn:
                for rule_id in rule_ids:
                    rules_table.delete(conn, rule_id)
                for block_id in block_ids:
                    blocks_table.delete(conn, block_id)
            raise

    @staticmethod
    def _same_or_conflict(existing, container_name, host_port, host_port_end, container_port, uuid=None):
        same = (existing["container_name"], existing["host_port"], existing["host_port_end"], existing["container_port"])
        same_instance = None in (uuid, existing["instance_uuid"]) or uuid == existing["instance_uuid"]
        if same == (container_name, host_port, host_port_end, container_port) and same_instance \
                and existing["orphaned_at"] is None:
            return rule_dict(existing), False
        rule = rule_dict(existing)
        ports = str(rule["host_port"]) if rule["host_port"] == rule["host_port_end"] else f"{rule['host_port']}-{rule['host_port_end']}"
        if rule["orphaned"]:
            raise Conflict(
                N_("Host port {ports}/{protocol} is held by orphaned rule {rule_id}: its container {container} was "
                   "deleted outside this service. Delete that rule to free the port"),
                ports=ports, protocol=rule["protocol"], container=rule["container_name"], rule_id=rule["id"],
            )
        raise Conflict(
            N_("Host port {ports}/{protocol} is already forwarded to {container}:{container_port} (rule {rule_id})"),
            ports=ports, protocol=rule["protocol"], container=rule["container_name"],
            container_port=rule["container_port"], rule_id=rule["id"],
        )

    def _assigned_address(self, container_name):
        """``(instance, address)`` of the running container, the address as Incus assigned it."""
        instance, address = self.addresses.address_of(container_name)
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
            with self.lock:
                self.ensure_forward_accept()

    def ensure_forward_accept(self):
        """Called with the NAT lock held."""
        changed = self.nat.ensure_forward_accept()
        self._forward_checked_at = time.monotonic()
        return changed

    # -- delete -----------------------------------------------------------------------------

    def delete(self, rule_id, allowed=None):
        """Remove the kernel rule and the row (an orphaned one too). Returns ``(rule, kernel_had_it)``;
        an orphaned rule has none in the kernel. ``allowed(row)``, when given, is called under the
        NAT lock before anything changes and raises to refuse (a customer's scope)."""
        with self.lock:
            row = self.get(rule_id)
            if allowed is not None:
                allowed(row)
            forward = forward_of(row)
            kernel_had_it = self.nat.remove(forward)
            try:
                with self.db.transaction() as conn:
                    rules_table.delete(conn, rule_id)
            except BaseException:
                if kernel_had_it:  # the row stays: so does its kernel rule
                    self.nat.add(forward)
                raise
        return rule_dict(row), kernel_had_it

    @contextlib.contextmanager
    def withdrawn(self, container_name):
        """The container's kernel rules out for the block (while it is deleted, say); the rows
        stay. When the block raises, the rules are put back, so a failed container delete leaves
        its forwards working. The NAT lock is held only to take them out and to put them back.

        From here until ``delete_all_for`` (or until the block raises) the container is
        ``leaving``: a sync neither puts its rules back nor orphans them when it finds the
        container gone: this service is deleting it, and then its rules."""
        with self.lock:
            self.leaving.add(container_name)
            removed = [forward for forward in map(forward_of, rules_table.of_container(self.db, container_name))
                       if self.nat.remove(forward)]
        try:
            yield
        except BaseException:
            with self.lock:
                self.leaving.discard(container_name)
                for forward in removed:
                    try:
                        self.nat.add(forward)
                    except Exception:  # noqa: BLE001 - restoring is best effort; the sync repairs the rest
                        log.exception("could not restore NAT rule %s", forward.rule_id)
            raise

    def delete_all_for(self, container_name, uuid=None):
        """Delete the container's rows (with ``uuid``: those of that instance) and its port block,
        and whatever kernel rules of theirs still stand; the orphaned rules of an earlier
        container of the name stay. The container is no longer ``leaving``. The rules deleted."""
        with self.lock:
            try:
                with self.db.transaction() as conn:
                    rows = rules_table.delete_of_container(conn, container_name, uuid)
                    blocks_table.delete_of_container(conn, container_name, uuid)
                for row in rows:
                    self.nat.remove(forward_of(row))
            finally:
                self.leaving.discard(container_name)
        return [rule_dict(row) for row in rows]

    def drop_blocks(self, container_name, uuid=None):
        """Forget the container's port block (with ``uuid``: that instance's), its rules left as
        they are: a sale undoing its forwards."""
        with self.lock:
            with self.db.transaction() as conn:
                return len(blocks_table.delete_of_container(conn, container_name, uuid))
