"""NAT rule use cases. The DB is the source of truth; the kernel's rules follow it.

Adding and deleting change the DB row and the kernel rule together or not at all; ``sync``
repairs whatever drifted anyway (a reboot flushed the kernel, a container got a new address,
someone deleted a rule by hand).
"""
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field

from ..exceptions import BadInput, Conflict, IncusUnavailable, NotFound
from ..i18n import N_
from ..nat import Forward
from .addresses import container_ipv4, ipv4_by_hwaddr, running_ipv4_from_leases

log = logging.getLogger(__name__)

IPV4_WAIT_SECONDS = 5
SQLITE_MAX_INTEGER = 2**63 - 1
FORWARD_CHECK_SECONDS = 60
RULE_COLUMNS = "id, container_name, host_port, host_port_end, container_port, protocol, container_ip, created_at"


def rule_dict(row):
    rule = dict(row)
    rule["container_port_end"] = rule["container_port"] + rule["host_port_end"] - rule["host_port"]
    rule["ip_at_creation"] = rule["container_ip"]  # the original project's field name
    return rule


def forward_of(row, container_ip=None):
    return Forward(
        rule_id=row["id"], protocol=row["protocol"], host_port=row["host_port"],
        host_port_end=row["host_port_end"], container_ip=container_ip or row["container_ip"],
        container_port=row["container_port"],
    )


def parse_reserved_ports(spec):
    return {int(part) for part in str(spec).replace(" ", "").split(",") if part.isdigit()}


@dataclass
class SyncReport:
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    readdressed: list = field(default_factory=list)
    forward_accept: list = field(default_factory=list)

    @property
    def changed(self):
        return bool(self.added or self.removed or self.readdressed or self.forward_accept)

    def as_dict(self):
        return {"added": self.added, "removed": self.removed, "readdressed": self.readdressed,
                "forward_accept": self.forward_accept}


class NatRuleService:
    def __init__(self, incus, nat, db, config):
        self.incus = incus
        self.nat = nat
        self.db = db
        self.bridge = config.get("INCUS_BRIDGE", "incusbr0")
        self.reserved_ports = parse_reserved_ports(config.get("RESERVED_PORTS", "22"))
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
        reserved = sorted(p for p in self.reserved_ports if host_port <= p <= host_port_end)
        if reserved:
            raise Conflict(N_("Host port {port} is reserved and cannot be forwarded"), port=reserved[0])
        first_rule = not self.db.query_one("SELECT 1 FROM nat_rules WHERE container_name = ?", (container_name,))
        instance, container_ip = self._running_instance(container_name, with_devices=first_rule)

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
                    "INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol, container_ip)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (container_name, host_port, host_port_end, container_port, protocol, container_ip),
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
        if first_rule:
            self.pin_address(container_name, container_ip, instance=instance)
        self._ensure_forward_accept_now_and_then()
        return rule_dict(self.get(forward.rule_id)), True

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

    def _running_ipv4(self, container_name):
        """The container's IPv4; waits a few seconds for DHCP right after a start."""
        return self._running_instance(container_name, with_devices=False)[1]

    def _running_instance(self, container_name, with_devices):
        """``(instance, IPv4)`` of the running container; waits a few seconds for DHCP right after
        a start. ``with_devices``: fetch the whole instance (state and devices, one request, which
        ``pin_address`` needs for a first rule); else only its state (cheaper) and no instance."""
        deadline = time.monotonic() + IPV4_WAIT_SECONDS
        while True:
            if with_devices:
                instance = self.incus.instance(container_name)
                state = instance.get("state") or {}
            else:
                instance, state = None, self.incus.instance_state(container_name)
            if state.get("status") != "Running":
                raise BadInput(
                    N_("Container {name} must be running to add a NAT rule (it is {status})"),
                    name=container_name, status=state.get("status"),
                )
            address = container_ipv4(state)
            if address:
                return instance, address
            if time.monotonic() > deadline:
                raise BadInput(N_("Container {name} has no IPv4 address"), name=container_name)
            time.sleep(0.2)

    def pin_address(self, container_name, address, instance=None):
        """Fix the container's current IPv4 on its NIC (``ipv4.address``), so DHCP cannot move it
        and its forwards keep working. Only possible on a NIC of a managed Incus network.
        ``instance``: the container as just fetched (with state and devices), if the caller has it."""
        if instance is None:
            instance = self.incus.instance(container_name)
        interface = next(
            (name for name, details in ((instance.get("state") or {}).get("network") or {}).items()
             if any(a.get("address") == address for a in details.get("addresses") or [])),
            None,
        )
        for device_name, device in (instance.get("expanded_devices") or {}).items():
            if device.get("type") != "nic" or (device.get("name") or device_name) != interface:
                continue
            if not device.get("network"):
                log.info("%s: NIC %s is not on a managed network; its address is not pinned", container_name, device_name)
                return False
            if device.get("ipv4.address") == address:
                return False
            devices = dict(instance.get("devices") or {})
            devices[device_name] = {**device, "ipv4.address": address}
            self.incus.update_devices(container_name, devices)
            log.info("%s: pinned %s on %s", container_name, address, device_name)
            return True
        return False

    def _ensure_forward_accept_now_and_then(self):
        if time.monotonic() - self._forward_checked_at > FORWARD_CHECK_SECONDS:
            self.nat.ensure_forward_accept(self.bridge)
            self._forward_checked_at = time.monotonic()

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

    # -- reconcile --------------------------------------------------------------------------

    def sync(self, container_name=None):
        """Make the kernel's rules equal to the DB: add missing rules, remove rules tagged as ours
        that the DB does not have (or has differently), and follow containers to new addresses.
        Rules not tagged as ours are never touched. Limited to one container when named."""
        report = SyncReport()
        if container_name is None:
            select, params = f"SELECT {RULE_COLUMNS} FROM nat_rules", ()
        else:
            select, params = f"SELECT {RULE_COLUMNS} FROM nat_rules WHERE container_name = ?", (container_name,)
        # Ask Incus before taking the write lock: other requests keep going meanwhile.
        addresses = self._current_addresses({row["container_name"] for row in self.db.query(select, params)})
        with self.db.transaction() as conn:
            rows = conn.execute(select, params).fetchall()
            wanted = {}
            for row in rows:
                address = addresses.get(row["container_name"]) or row["container_ip"]
                if address != row["container_ip"]:
                    conn.execute("UPDATE nat_rules SET container_ip = ? WHERE id = ?", (address, row["id"]))
                    report.readdressed.append(row["id"])
                wanted[row["id"]] = forward_of(row, container_ip=address)

            in_kernel = {}
            for forward in self.nat.tagged():
                in_kernel.setdefault(forward.rule_id, []).append(forward)
            for rule_id, forwards in in_kernel.items():
                if container_name is not None and rule_id not in wanted:
                    continue  # another container's rule, or nobody's: left to a full sync
                if forwards != [wanted.get(rule_id)]:
                    self.nat.remove_tagged(rule_id)
                    report.removed.append(rule_id)
            for rule_id, forward in wanted.items():
                if in_kernel.get(rule_id) != [forward]:
                    self.nat.add(forward)
                    report.added.append(rule_id)
        if container_name is None or wanted:
            report.forward_accept = self.nat.ensure_forward_accept(self.bridge)
            self._forward_checked_at = time.monotonic()
        if report.changed:
            log.info("NAT sync%s: %s", f" ({container_name})" if container_name else "", report.as_dict())
        return report

    def follow_restart(self, container_name):
        """After a start/restart: once the container has its address again (DHCP takes a moment),
        make its rules point there."""
        if not self.db.query_one("SELECT 1 FROM nat_rules WHERE container_name = ?", (container_name,)):
            return None
        try:
            self._running_ipv4(container_name)
        except BadInput:
            log.warning("%s has no IPv4 address after starting; its NAT rules keep the recorded one", container_name)
        return self.sync(container_name)

    def _current_addresses(self, container_names):
        """Each running container's IPv4 now; containers that are stopped, gone or unreachable
        keep their recorded address."""
        if len(container_names) > 3:
            return self._addresses_from_list(container_names)
        addresses = {}
        for name in container_names:
            try:
                state = self.incus.instance_state(name)
            except (NotFound, IncusUnavailable):
                continue
            if state.get("status") == "Running":
                address = container_ipv4(state)
                if address:
                    addresses[name] = address
        return addresses

    def _addresses_from_list(self, container_names):
        """The same for many containers in two requests: the instance list and the DHCP leases."""
        try:
            instances = self.incus.instances()
            leases = self.incus.leases(self.bridge)
        except (NotFound, IncusUnavailable):
            return {}
        by_hwaddr = ipv4_by_hwaddr(leases)
        addresses = {}
        for instance in instances:
            address = running_ipv4_from_leases(instance, by_hwaddr)
            if instance["name"] in container_names and address:
                addresses[instance["name"]] = address
        return addresses

    def run_periodic_sync(self, interval, stop_event):
        """Reconcile every ``interval`` seconds until ``stop_event`` is set (catches changes made
        outside the service, e.g. ``incus restart`` with a new address, or a flushed table)."""
        while not stop_event.wait(interval):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - keep the loop alive; the next round retries
                log.exception("periodic NAT sync failed")
