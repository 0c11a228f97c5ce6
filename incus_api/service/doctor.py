"""Health checks for ``python3 -m incus_api doctor`` and the dashboard's notice.

Each check is a ``Check``: ``detail`` and ``hint`` are English templates marked with ``N_`` and
filled from ``params``; the CLI prints them as they are, the dashboard translates them.
"""
from dataclasses import dataclass, field

from ..exceptions import AppError
from ..i18n import N_
from ..nat import forward_drops, iptables_backend
from .addresses import BridgeNetwork

LEGACY_LISTING = "iptables-legacy -t nat -S PREROUTING"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    params: dict = field(default_factory=dict)

    def render(self, translate=str):
        detail = translate(self.detail).format(**self.params)
        hint = translate(self.hint).format(**self.params) if self.hint and not self.ok else ""
        return {"name": self.name, "ok": self.ok, "detail": detail, "hint": hint}


class Doctor:
    def __init__(self, incus, nat_rules, nic_guard, traffic=None, backups=None):
        self.incus = incus
        self.nat_rules = nat_rules
        self.nic_guard = nic_guard
        self.traffic = traffic  # service.traffic.TrafficService: its kernel counters are checked
        self.backups = backups  # service.backups.BackupService: the schedule's last run, BACKUP_DIR's disk

    def _backup_checks(self):
        """Problems of the backups (a container whose last scheduled backup failed; the disk of
        BACKUP_DIR 90 % full or more), each its own check; one ok check with the schedule when
        there is none."""
        state = self.backups.schedule_state()
        disk = self.backups.disk()
        problems = []
        if state["failed"]:
            problems.append(Check(
                "backups", False,
                N_("The last scheduled backup failed for {count} container(s): {names} (latest error: {error})"),
                N_("See the Backups page (or GET /backups?name=<container>) for each one's error; once its cause is "
                   "fixed, back the container up again there or wait for the next run ({next})"),
                {"count": len(state["failed"]), "names": ", ".join(state["failed"]),
                 "error": self._last_error(state["failed"]) or "-", "next": _moment(state["next"])},
            ))
        if disk is not None and disk["full"]:
            problems.append(Check(
                "backup_disk", False,
                N_("The disk of BACKUP_DIR {directory} is {used} full: {free} free, of which the backups take "
                   "{backups}"),
                N_("Lower BACKUP_KEEP, move BACKUP_DIR to a larger disk, or set S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY "
                   "and S3_SECRET_KEY to keep the copies off this host"),
                {"directory": state["directory"], "used": f"{round(disk['used_share'] * 100)}%",
                 "free": human_bytes(disk["free_bytes"]), "backups": human_bytes(disk["backups_bytes"])},
            ))
        if problems:
            return problems
        if state["schedule"]:
            detail = (N_("Backups: {schedule} (next {next}), {keep} kept per container in {directory}; copies in S3")
                      if state["s3"] else
                      N_("Backups: {schedule} (next {next}), {keep} kept per container in {directory}; no copies off "
                         "the host (S3_ENDPOINT is not set)"))
        else:
            detail = (N_("Backups: no schedule (BACKUP_SCHEDULE is off), {keep} kept per container in {directory}; "
                         "copies in S3")
                      if state["s3"] else
                      N_("Backups: no schedule (BACKUP_SCHEDULE is off), {keep} kept per container in {directory}; no "
                         "copies off the host (S3_ENDPOINT is not set)"))
        return [Check("backups", True, detail, params={
            "schedule": state["schedule"] or "off", "next": _moment(state["next"]), "keep": state["keep"],
            "directory": state["directory"]})]

    def _last_error(self, names):
        """The error of the newest failed scheduled backup among ``names`` (or its upload's)."""
        latest = None
        for name in names:
            for backup in self.backups.list(name):
                if backup["trigger"] != "schedule":
                    continue
                if backup["state"] == "failed" or backup["s3_state"] == "failed":
                    if latest is None or backup["id"] > latest["id"]:
                        latest = backup
                break  # only the last scheduled one of each container counts
        if latest is None:
            return None
        return f"{latest['container']}: {latest['error'] or latest['s3_error'] or '?'}"

    def _traffic_check(self):
        snapshot = self.traffic.counters.read()
        try:
            ipv6 = (self.incus.network(self.nic_guard.bridge).get("config") or {}).get("ipv6.address") or "none"
        except AppError:
            ipv6 = "none"
        if ipv6 != "none":
            return Check(
                "traffic_counters", False,
                N_("The bridge {bridge} has IPv6 ({address}): the traffic counters count IPv4 only, so containers' "
                   "IPv6 traffic escapes their quotas"),
                N_("Run: incus network set {bridge} ipv6.address none (as install_incus.sh sets it)"),
                {"bridge": self.nic_guard.bridge, "address": ipv6},
            )
        return Check(
            "traffic_counters", snapshot.intact,
            N_("{count} container(s) counted in the nftables table {table} (list it with: nft list table {table})"),
            N_("The next traffic pass (every TRAFFIC_INTERVAL seconds) puts the table back; is nftables installed "
               "(apt-get install nftables)?"),
            {"count": len(snapshot.addresses), "table": "inet incus_api_traffic"},
        )

    def run_checks(self):
        checks = [_incus_check(self.incus)]
        if checks[0].ok:
            checks.append(_bridge_check(self.incus, self.nic_guard.bridge))
            if checks[-1].ok:
                checks.append(_dynamic_range_check(self.incus, self.nic_guard.bridge))
            checks.append(self._nic_check())

        with open("/proc/sys/net/ipv4/ip_forward") as handle:
            forwarding = handle.read().strip() == "1"
        checks.append(Check("ip_forward", forwarding, N_("net.ipv4.ip_forward is {value}"),
                            N_("Run: sysctl -w net.ipv4.ip_forward=1 (and keep it in /etc/sysctl.d/)"),
                            {"value": int(forwarding)}))

        backend = iptables_backend()
        if backend == "nf_tables":
            detail = N_("The iptables command uses nf_tables, but this service's rules live in the legacy tables: `iptables -t nat -S` does not show them; list them with: {command}")
        else:
            detail = N_("The iptables command uses {backend}; list this service's rules with: {command}")
        checks.append(Check("iptables_backend", True, detail, params={"backend": backend or "-", "command": LEGACY_LISTING}))

        db_ids = {rule["id"] for rule in self.nat_rules.list_live()}  # an orphaned rule is in no kernel
        kernel_ids = [rule_id for rule_id, _ in self.nat_rules.nat.tagged()]
        missing = sorted(db_ids - set(kernel_ids))
        extra = sorted(set(kernel_ids) - db_ids)
        checks.append(Check(
            "nat_rules", not missing and not extra,
            N_("{db} NAT rule(s) in the database, {kernel} in the kernel; missing from the kernel: {missing}; in the kernel only: {extra}"),
            N_("Run: python3 -m incus_api nat sync"),
            {"db": len(db_ids), "kernel": len(kernel_ids), "missing": missing or "-", "extra": extra or "-"},
        ))
        if self.traffic is not None and self.traffic.enabled:
            checks.append(self._traffic_check())
        if self.backups is not None:
            checks.extend(self._backup_checks())
        if forward_drops():
            checks.append(Check("forward", True, N_("The nf_tables FORWARD chain drops traffic: the accept rules for forwarded ports are kept there too")))
        return checks

    def _nic_check(self):
        """Containers whose NIC lacks the pinned address or a filter: their root can claim another
        address or answer ARP for a neighbour (and reach the others, with isolation on)."""
        try:
            unguarded = self.nic_guard.unguarded()
        except AppError as exc:
            return Check("nic_guard", False, N_("Cannot read the containers' NICs: {reason}"), params={"reason": exc.message})
        keys = " ".join(f"{key}=true" for key in self.nic_guard.security)
        return Check(
            "nic_guard", not unguarded,
            N_("Containers on the bridge whose NIC lacks the pinned address, MAC/IPv4 filtering or port isolation: {names}"),
            N_("Containers with forwards get the address and filters from: python3 -m incus_api nat sync, and port isolation when this service next starts them; others: incus config device set <name> eth0 ipv4.address=<its address> {keys} (port isolation plugs the NIC anew: set it while the container is stopped)"),
            {"names": ", ".join(unguarded) or "-", "keys": keys},
        )


def human_bytes(count):
    """``1.5 GiB``: bytes in binary units, for the CLI and the dashboard alike."""
    amount = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            break
        amount /= 1024
    return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"


def _moment(value):
    """``2026-12-08 03:00`` from the schedule's ISO time (the host's local time); ``-`` for none."""
    if not value:
        return "-"
    return str(value)[:16].replace("T", " ")


def _incus_check(incus):
    try:
        server = incus.ping()
    except AppError as exc:
        return Check("incus", False, N_("Incus is unreachable: {reason}"),
                     N_("Start Incus: systemctl start incus (or bash install_incus.sh)"), {"reason": exc.message})
    version = (server.get("environment") or {}).get("server_version", "?")
    return Check("incus", True, N_("Incus {version} is reachable"), params={"version": version})


def _bridge_check(incus, bridge):
    hint = N_("Run: bash install_incus.sh (creates the bridge)")
    try:
        network = incus.network(bridge)
    except AppError as exc:
        return Check("bridge", False, N_("Bridge {bridge}: {reason}"), hint, {"bridge": bridge, "reason": exc.message})
    address = (network.get("config") or {}).get("ipv4.address")
    ok = bool(network.get("managed") and address and address != "none")
    return Check("bridge", ok, N_("Bridge {bridge}: managed={managed}, ipv4.address={address}"), hint,
                 {"bridge": bridge, "managed": network.get("managed"), "address": address})


def _dynamic_range_check(incus, bridge):
    """Sales pin addresses outside the bridge's dynamic DHCP range: without one, root in a
    container can lease every address under made-up client addresses (see ``bridge``)."""
    try:
        network = BridgeNetwork.from_incus(incus.network(bridge))
    except AppError as exc:
        return Check("dhcp_range", False, N_("Bridge {bridge}: {reason}"), params={"bridge": bridge, "reason": exc.message})
    if network is None:
        return Check("dhcp_range", False, N_("The bridge {bridge} has no IPv4 subnet: containers get no address from it"),
                     params={"bridge": bridge})
    if network.dynamic:
        ranges = ",".join(f"{first}-{last}" for first, last in network.dynamic)
        return Check("dhcp_range", True,
                     N_("Bridge {bridge}: dnsmasq leases addresses of its own choosing only in {ranges}; sales pin "
                        "addresses outside it"), params={"bridge": bridge, "ranges": ranges})
    return Check(
        "dhcp_range", False,
        N_("The bridge {bridge} has no dynamic DHCP range (ipv4.dhcp.ranges): root in a container can lease its "
           "addresses under made-up client addresses, and a sale then takes an address only by releasing such a lease"),
        N_("Run: incus network set {bridge} ipv4.dhcp.ranges={range} (as install_incus.sh sets it; containers this "
           "service did not pin get an address in it at their next renewal)"),
        {"bridge": bridge, "range": network.suggested_range() or "-"},
    )
