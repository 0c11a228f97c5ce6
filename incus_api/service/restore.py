"""A backup file brought back as a container: on this host after the container is gone, or on
another host whose database has never seen it.

Under its own name a restore loses nothing: the files (Incus's import of the export), the plan
and limits (they ride in the export's config), its address when it is still free here (else a
free one), the forwards on the same host ports (409 listing those taken here, or ``ports=auto``
takes free pool ports), the port block, the traffic plan and this period's use, a suspension.
Under a new name it is a copy: a new Incus identity (``volatile.uuid``), new MAC, new address, its
plan, no forwards unless ``ports=auto``, the traffic plan with a new period.

All or nothing: the file is verified before anything changes; a step that fails undoes the
steps before it in reverse (the imported instance is deleted last).
"""
import contextlib
import logging
import uuid as uuids

from .. import backup_file
from ..exceptions import BadInput, Conflict, NotFound
from ..i18n import N_
from ..parse.names import container_name
from ..store import traffic as traffic_table
from .addresses import bridge_nic
from .limits import root_disk
from .provisioning import undo_steps
from .suspensions import instance_uuid

log = logging.getLogger(__name__)

PORTS_AUTO = "auto"


class Restorer:
    def __init__(self, incus, db, addresses, nic_guard, nat_rules, pool, traffic, suspensions, power, info):
        self.incus = incus
        self.db = db
        self.addresses = addresses
        self.nic_guard = nic_guard
        self.nat_rules = nat_rules
        self.pool = pool  # ports.PortPool: where ports=auto takes its ports
        self.traffic = traffic
        self.suspensions = suspensions
        self.power = power
        self.info = info

    def restore(self, path, name=None, ports=None, verified=None):
        """Bring back the backup file at ``path`` as ``name`` (default: its own container's);
        ``ports="auto"`` takes free pool ports for its forwards. Returns ``{"name", "status",
        "ip", "copy", "nat_rules", "suspended"}``."""
        # 400 for a damaged file; nothing changed. ``verified``: the caller has just read it so.
        record, offset, size, _, _ = verified or backup_file.verify(path, whole_file=False)
        target = name or container_name(record["container"])
        copy = target != record["container"]
        if self.incus.exists(target):
            raise Conflict(N_("Container {name} exists: delete it first, or restore the backup under another name "
                              "(name=...)"), name=target)
        rules = record.get("forwards") or [] if (not copy or ports == PORTS_AUTO) else []
        blocks = record.get("port_blocks") or [] if (not copy or ports == PORTS_AUTO) else []
        pool = self.pool if ports == PORTS_AUTO else None
        if rules and pool is None:
            self.nat_rules.refuse_taken(rules, blocks)  # 409 before the import, listing every taken port
        undo = []
        try:
            address = self._import(path, offset, size, record, target, copy)
            undo.append(("container", lambda: self._delete(target)))
            instance = self.incus.instance_config(target)
            uuid = instance_uuid(instance)
            suspension = record.get("suspension")
            if suspension:
                self.suspensions.mark(target, uuid, suspension.get("reason") or "billing")
                undo.append(("suspension", lambda: self.suspensions.clear(target)))
            self._restore_traffic(target, record.get("traffic"), copy)
            undo.append(("traffic plan", lambda: self.traffic.forget(target)))
            restored_rules = []
            if rules or blocks:
                restored_rules = self.nat_rules.restore_forwards(target, uuid, address, rules, blocks, pool)
                undo.append(("forwards", lambda: self.nat_rules.delete_all_for(target, uuid)))
            status = instance.get("status")
            if record.get("status") == "Running" and not suspension:
                status, _ = self.power.start(target)
            self.traffic.track(target, address)
        except BaseException:
            undo_steps(target, undo)
            raise
        log.info("backup of %s restored as %s (%s)", record["container"], target, "copy" if copy else "same name")
        return {"name": target, "status": status, "ip": address, "copy": copy, "nat_rules": restored_rules,
                "suspended": bool(suspension), "from": record["container"], "backup_created_at": record.get("created_at")}

    def _import(self, path, offset, size, record, target, copy):
        """Import the export as ``target`` (stopped), with a new identity for a copy and its NIC's
        address pinned: the recorded one when still free here (same name), else a free one."""
        prefer = None if copy else record.get("address")
        with self.addresses.reserved(prefer=prefer, own_hwaddr=record.get("hwaddr")) as address:
            with contextlib.closing(backup_file.ExportReader(path, offset, size)) as source:
                self.incus.import_backup(source, target, pool=self._pool_here(record.get("pool")))
            try:
                instance = self.incus.instance_config(target)
                config = {}
                if copy:  # another instance: Incus keeps the original's identity and MACs in the export
                    new = str(uuids.uuid4())
                    config = {"volatile.uuid": new, "volatile.uuid.generation": new}
                    config.update({key: "" for key in instance.get("config") or {}
                                   if key.startswith("volatile.") and key.endswith(".hwaddr")})
                device_name, device = bridge_nic(instance, self.addresses.bridge)
                devices = None
                if device is not None:
                    devices = {device_name: {**device, "ipv4.address": address, **self.nic_guard.security}}
                if config:  # first: Incus checks a device change against the MACs as they are
                    self.incus.update(target, config=config)
                if devices:
                    self.incus.update(target, devices=devices)
            except BaseException:
                self._delete(target)
                raise
        return address if device is not None else None

    def _pool_here(self, pool):
        """Where the root disk goes: the recorded pool when this host has it (None: as the export
        says), else the pool of this host's ``default`` profile's root disk (another host may name
        its pool otherwise)."""
        if not pool:
            return None
        try:
            self.incus.storage_pool(pool)
            return None
        except NotFound:
            here = (root_disk(self.incus.profile("default").get("devices"))[1] or {}).get("pool")
            if not here:
                raise BadInput(N_("This host has no storage pool {pool}, and its default profile names none: create "
                                  "one (incus storage create {pool} dir) and restore again"), pool=pool) from None
            log.info("restore: storage pool %s is not on this host: the root disk goes to %s", pool, here)
            return here

    def _restore_traffic(self, name, traffic, copy):
        """The traffic plan as recorded; its period and use too unless a copy (a new period now)."""
        if not traffic:
            return
        with self.db.transaction() as conn:
            traffic_table.restore_plan(conn, name, traffic, keep_period=not copy,
                                       period_start=None if not copy else self.traffic.period_start_now())

    def _delete(self, name):
        with contextlib.suppress(Exception):
            self.incus.change_state(name, "stop", force=True)
        self.incus.delete(name)
        self.info.forget(name)
