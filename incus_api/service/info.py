"""What a container is now: its ``info`` (live from Incus, or the last known state while Incus is
down) and the host-wide list; the last known state is kept in the store as it is read."""
from ..exceptions import BadInput, IncusUnavailable, NotFound
from ..store import containers as known_state
from .addresses import assigned_ipv4
from .limits import limits_of


class ContainerInfo:
    def __init__(self, incus, db, addresses, nat_rules, suspensions, bridge):
        self.incus = incus
        self.db = db
        self.addresses = addresses
        self.nat_rules = nat_rules
        self.suspensions = suspensions
        self.bridge = bridge

    def list_all(self):
        """Every container for the dashboard: ``(rows, live)``.

        Status comes from the instance list without state and addresses from the bridge's DHCP
        leases: two cheap requests instead of a state query per container. When Incus is down,
        the rows are the DB's last known state and ``live`` is False.
        """
        nat_counts = self.nat_rules.counts()
        try:
            instances = self.incus.instances()
            leases = self.addresses.leases_by_hwaddr()
            network = self.addresses.network()
        except IncusUnavailable:
            return [dict(row, nat_rules=nat_counts.get(row["name"], 0))
                    for row in known_state.all_last_known(self.db)], False
        rows = []
        for instance in sorted(instances, key=lambda i: i["name"]):
            config = instance.get("config") or {}
            rows.append({
                "name": instance["name"],
                "status": instance.get("status"),
                "ip": assigned_ipv4(instance, network, leases) if instance.get("status") == "Running" else None,
                "image": config.get("image.description") or config.get("volatile.base_image", "")[:12],
                "created_at": instance.get("created_at"),
                "nat_rules": nat_counts.get(instance["name"], 0),
                "limits": limits_of(instance, self.bridge),
            })
        known_state.remember_list(self.db, rows)
        return rows, True

    def info_of(self, name, instance):
        """``info`` from an instance config the caller has just read (no request of its own)."""
        info = shape_info(instance, ip=self._assigned_ip(instance), bridge=self.bridge)
        info["suspended"] = self.suspensions.is_suspended(name, instance)
        known_state.remember_info(self.db, name, info)
        return info

    def info(self, name, with_state=True):
        """Live information from Incus; the last known state when Incus is unreachable.
        ``with_state=False`` leaves out what the running container reports (its ``state``:
        processes, memory, addresses), which Incus gathers from it at some cost."""
        try:
            instance = self.incus.instance(name) if with_state else self.incus.instance_config(name)
        except IncusUnavailable:
            snapshot = self.last_known(name)
            if snapshot is None:
                raise
            snapshot["suspended"] = self.suspensions.is_suspended(name)
            return snapshot
        except NotFound:
            known_state.forget(self.db, name)
            raise
        return self.info_of(name, instance)

    def _assigned_ip(self, instance):
        """The address Incus assigned (never one the container reports), while it runs."""
        if instance.get("status") != "Running":
            return None
        try:
            return self.addresses.assigned(instance)
        except BadInput:  # the bridge has no IPv4 subnet
            return None

    def last_known(self, name):
        row = known_state.last_known(self.db, name)
        if row is None:
            return None
        info = row["snapshot"] or {
            "name": name, "status": row["status"], "ip": row["ip"], "created_at": row["created_at"],
            "architecture": row["architecture"], "description": row["image"],
            "profiles": [], "config": {}, "devices": {}, "snapshots": [], "state": {},
        }
        info.update(status=row["status"], ip=row["ip"], live_data_available=False, last_synced=row["last_synced"])
        return info

    def remember_status(self, name, status, ip):
        known_state.remember_status(self.db, name, status, ip)

    def forget(self, name):
        known_state.forget(self.db, name)


def shape_info(instance, ip, bridge="incusbr0"):
    """The original project's info answer, so existing clients keep working. ``ip`` is the
    address Incus assigned; ``state`` holds what the container reports about itself; ``limits``
    what Incus enforces (``limits_of``; the NIC's are those of the NIC on ``bridge``)."""
    config = instance.get("config") or {}
    state = instance.get("state") or {}
    return {
        "name": instance["name"],
        "status": instance.get("status"),
        "status_code": instance.get("status_code"),
        "type": instance.get("type"),
        "architecture": instance.get("architecture"),
        "ephemeral": instance.get("ephemeral", False),
        "created_at": instance.get("created_at"),
        "profiles": instance.get("profiles") or [],
        "config": config,
        "devices": instance.get("devices") or {},
        "snapshots": [s.get("name") if isinstance(s, dict) else s for s in instance.get("snapshots") or []],
        "state": state,
        "description": config.get("image.description") or instance.get("description") or "",
        "image": config.get("image.description") or config.get("volatile.base_image", "")[:12],
        "ip": ip,
        "limits": limits_of(instance, bridge),
        "live_data_available": True,
    }
