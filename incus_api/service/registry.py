"""The services of one app, built together (``build_services``): what ``create_app`` holds in
``app.extensions["incus_api"].services``. Apart from the package's ``__init__`` so that importing
one service (``service.tls`` in app.py's first process) does not import them all."""
from dataclasses import dataclass

from ..host.leases import lease_file
from .accounts import Accounts
from .audit import AuditLogService
from .backups import BackupService
from .bridge import BridgeAddresses
from .commands import Commands
from .console import ConsoleService
from .containers import ContainerService
from .credentials import Credentials
from .customer_forwards import CustomerForwards
from .customers import CustomerAccess
from .doctor import Doctor
from .images import ImageService
from .info import ContainerInfo
from .lifecycle import Lifecycle
from .limits import LimitsService
from .nat_rules import NatRuleService
from .nat_sync import NatSync
from .nic_guard import NicGuard
from .ports import PortPolicy, PortPool
from .power import Power
from .provisioning import Provisioner
from .restore import Restorer
from .snapshots import SnapshotService
from .suspensions import Suspensions
from .traffic import TrafficService


@dataclass
class Services:
    containers: ContainerService  # a container made (a sale's first step) and deleted
    info: ContainerInfo  # a container's info and the host-wide list, live or last known
    power: Power  # start, stop, restart
    commands: Commands  # exec, bounded, a few at a time per container
    credentials: Credentials  # root's password and SSH keys
    nat_rules: NatRuleService
    nat_sync: NatSync
    addresses: BridgeAddresses  # the bridge's addresses: what Incus assigned, a free one for a sale
    nic_guard: NicGuard  # each NIC pinned and filtered
    images: ImageService
    audit_log: AuditLogService
    doctor: Doctor
    lifecycle: Lifecycle  # suspend, unsuspend, reinstall
    provisioning: Provisioner  # the sale in one call, and what a billing system polls
    limits: LimitsService  # a container's limits: changed live, read back
    console: ConsoleService  # browser consoles: one-time links, sessions, their audit
    traffic: TrafficService  # monthly traffic: the sampler, the quotas, the reports
    accounts: Accounts  # the dashboard's admins and the API secret
    customers: CustomerAccess  # the customer's panel: one-time links and the sessions they open
    customer_forwards: CustomerForwards  # the customer's panel: the forwards of their port block
    snapshots: SnapshotService = None  # a container's snapshots: taken within its plan, restored without it
    backups: BackupService = None  # backup files (and their S3 copies): taken, kept, restored


def offsite_store(config):
    """The S3 store of the backups' copies, None without ``S3_ENDPOINT`` (its client library is
    imported only then: it would cost every process memory)."""
    if not config.get("S3_ENDPOINT"):
        return None
    from ..offsite import S3Store

    return S3Store.from_config(config)


def build_services(incus, nat, db, config):
    bridge = config.get("INCUS_BRIDGE", "incusbr0")
    audit_log = AuditLogService(db=db, config=config)
    addresses = BridgeAddresses(incus, bridge,
                                lease_file=lease_file(config.get("INCUS_SOCKET", "/var/lib/incus/unix.socket"), bridge))
    nic_guard = NicGuard(incus, addresses, isolate=config.get("ISOLATE_CONTAINERS", True))
    port_policy = PortPolicy(config)
    nat_rules = NatRuleService(nat=nat, db=db, addresses=addresses, nic_guard=nic_guard, port_policy=port_policy)
    nat_sync = NatSync(nat_rules, audit_log=audit_log)
    suspensions = Suspensions(db=db, incus=incus)
    images = ImageService(incus=incus, config=config)
    limits = LimitsService(incus, config)
    info = ContainerInfo(incus=incus, db=db, addresses=addresses, nat_rules=nat_rules, suspensions=suspensions,
                         bridge=bridge)
    power = Power(incus=incus, addresses=addresses, nic_guard=nic_guard, nat_sync=nat_sync, suspensions=suspensions, info=info)
    commands = Commands(incus=incus, suspensions=suspensions, config=config)
    credentials = Credentials(incus=incus, commands=commands, suspensions=suspensions)
    customers = CustomerAccess(incus=incus, db=db, config=config)
    containers = ContainerService(incus=incus, nic_guard=nic_guard, limits=limits, images=images,
                                  nat_rules=nat_rules, info=info, suspensions=suspensions, customers=customers)
    lifecycle = Lifecycle(incus=incus, power=power, images=images, credentials=credentials, info=info,
                          suspensions=suspensions)
    traffic = TrafficService(db=db, incus=incus, addresses=addresses, limits=limits, lifecycle=lifecycle,
                             audit_log=audit_log, config=config)
    containers.traffic = traffic
    lifecycle.traffic = traffic
    pool = PortPool(config, port_policy)
    provisioning = Provisioner(incus=incus, containers=containers, info=info, credentials=credentials,
                               limits=limits, nat_rules=nat_rules, pool=pool, config=config,
                               traffic=traffic, suspensions=suspensions)
    restorer = Restorer(incus=incus, db=db, addresses=addresses, nic_guard=nic_guard, nat_rules=nat_rules, pool=pool,
                        traffic=traffic, suspensions=suspensions, power=power, info=info)
    backups = BackupService(db=db, incus=incus, nat_rules=nat_rules, traffic=traffic, suspensions=suspensions,
                            addresses=addresses, restorer=restorer, audit_log=audit_log, config=config,
                            offsite=offsite_store(config))
    return Services(
        containers=containers, info=info, power=power, commands=commands, credentials=credentials,
        nat_rules=nat_rules, nat_sync=nat_sync, addresses=addresses, nic_guard=nic_guard, images=images, audit_log=audit_log,
        doctor=Doctor(incus, nat_rules, nic_guard, traffic, backups), lifecycle=lifecycle, provisioning=provisioning,
        limits=limits, traffic=traffic, accounts=Accounts(db=db, config=config), customers=customers,
        customer_forwards=CustomerForwards(nat_rules=nat_rules, suspensions=suspensions, config=config),
        console=ConsoleService(incus=incus, db=db, suspensions=suspensions, audit_log=audit_log, config=config),
        snapshots=SnapshotService(incus=incus, power=power, suspensions=suspensions),
        backups=backups,
    )
