"""Health checks for ``python3 -m incus_api doctor`` and the dashboard's notice.

Each check is a ``Check``: ``detail`` and ``hint`` are English templates marked with ``N_`` and
filled from ``params``; the CLI prints them as they are, the dashboard translates them.
"""
import shutil
import subprocess
from dataclasses import dataclass, field

from ..exceptions import AppError
from ..i18n import N_
from ..nat import nft_forward_drops

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


def iptables_backend():
    """``nf_tables`` or ``legacy``: what the plain ``iptables`` command uses."""
    if not shutil.which("iptables"):
        return None
    version = subprocess.run(["iptables", "-V"], capture_output=True, text=True).stdout
    return "nf_tables" if "nf_tables" in version else "legacy"


def run_checks(incus, nat_rules, bridge):
    checks = [_incus_check(incus)]
    if checks[0].ok:
        checks.append(_bridge_check(incus, bridge))

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

    db_ids = {rule["id"] for rule in nat_rules.list_all()}
    kernel_ids = [forward.rule_id for forward in nat_rules.nat.tagged()]
    missing = sorted(db_ids - set(kernel_ids))
    extra = sorted(set(kernel_ids) - db_ids)
    checks.append(Check(
        "nat_rules", not missing and not extra,
        N_("{db} NAT rule(s) in the database, {kernel} in the kernel; missing from the kernel: {missing}; in the kernel only: {extra}"),
        N_("Run: python3 -m incus_api nat sync"),
        {"db": len(db_ids), "kernel": len(kernel_ids), "missing": missing or "-", "extra": extra or "-"},
    ))
    if shutil.which("iptables-nft") and nft_forward_drops():
        checks.append(Check("forward", True, N_("The nf_tables FORWARD chain drops traffic: the accept rules for forwarded ports are kept there too")))
    return checks


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
