"""Use cases: each composes the Incus adapter, the NAT adapter and the database.

Nothing here knows about HTTP; the ``api`` and ``dashboard`` blueprints call the same functions.
"""
from dataclasses import dataclass

from ..host.leases import lease_file
from .accounts import Accounts
from .audit import AuditLogService
from .console import ConsoleService
from .containers import ContainerService
from .doctor import Doctor
from .images import ImageService
from .lifecycle import Lifecycle, Suspensions
from .limits import LimitsService
from .nat_rules import NatRuleService
from .nat_sync import NatSync
from .nic_guard import NicGuard
from .ports import PortPolicy, PortPool
from .provisioning import Provisioner
from .traffic import TrafficService


@dataclass
class Services:
    containers: ContainerService
    nat_rules: NatRuleService
    nat_sync: NatSync
    nic_guard: NicGuard
    images: ImageService
    audit_log: AuditLogService
    doctor: Doctor
    lifecycle: Lifecycle
    provisioning: Provisioner = None  # the sale in one call, and what a billing system polls
    limits: LimitsService = None  # a container's limits: changed live, read back
    console: ConsoleService = None  # browser consoles: one-time links, sessions, their audit
    traffic: TrafficService = None  # monthly traffic: the sampler, the quotas, the reports
    accounts: Accounts = None  # the dashboard's admins and the API secret


def build_services(incus, nat, db, config):
    audit_log = AuditLogService(db=db, config=config)
    bridge = config.get("INCUS_BRIDGE", "incusbr0")
    nic_guard = NicGuard(incus, bridge=bridge, isolate=config.get("ISOLATE_CONTAINERS", True),
                         lease_file=lease_file(config.get("INCUS_SOCKET", "/var/lib/incus/unix.socket"), bridge))
    port_policy = PortPolicy(config)
    nat_rules = NatRuleService(nat=nat, db=db, nic_guard=nic_guard, port_policy=port_policy)
    nat_sync = NatSync(nat_rules, audit_log=audit_log)
    suspensions = Suspensions(db=db, incus=incus)
    containers = ContainerService(incus=incus, db=db, nat_rules=nat_rules, nat_sync=nat_sync, nic_guard=nic_guard,
                                  config=config, suspensions=suspensions)
    images = ImageService(incus=incus, config=config)
    lifecycle = Lifecycle(incus=incus, containers=containers, suspensions=suspensions)
    traffic = TrafficService(db=db, incus=incus, nic_guard=nic_guard, limits=containers.limits, lifecycle=lifecycle,
                             audit_log=audit_log, config=config)
    containers.traffic = traffic
    services = Services(limits=containers.limits, containers=containers, nat_rules=nat_rules, nat_sync=nat_sync, nic_guard=nic_guard,
                    images=images, audit_log=audit_log, doctor=Doctor(incus, nat_rules, nic_guard, traffic),
                    provisioning=Provisioner(containers=containers, nat_rules=nat_rules,
                                             pool=PortPool(config, port_policy), db=db, config=config, traffic=traffic),
                    lifecycle=lifecycle, traffic=traffic)
    services.console = ConsoleService(incus=incus, db=db, suspensions=suspensions, audit_log=audit_log, config=config)
    services.accounts = Accounts(db=db, config=config)
    return services
