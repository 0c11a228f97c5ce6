"""A container's limits: applied at create (``for_create``) and changed live (``apply``), read
back from Incus (``limits_of``).

What is checked before Incus is asked, so that a refusal comes with a reason a seller can act on
and nothing is half done:

- a ``disk`` size only on a pool whose driver enforces it (``dir`` accepts a ``size`` and does
  not enforce it), and on a running container only a larger one;
- ``ingress`` / ``egress`` only where the kernel has the traffic-control parts Incus uses (it runs
  ``tc``: an htb qdisc with a u32 filter for ingress; an ingress qdisc with a u32 filter and a
  police action for egress); a kernel without them fails half way otherwise;
- ``profile`` and ``storage_pool`` exist.
"""
import logging

from ..exceptions import BadInput, Conflict, IncusError, NotFound
from ..host.kernel_modules import KernelModules
from ..i18n import N_
from ..parse.quantities import incus_size
from .addresses import bridge_nic
from .plans import LIMIT_FIELDS

log = logging.getLogger(__name__)

# Pool drivers that enforce a root disk size (Incus's own list of quota-capable drivers).
SIZE_DRIVERS = ("btrfs", "zfs", "lvm", "lvmcluster", "ceph")
# The kernel parts Incus's tc commands need, per NIC limit.
TC_MODULES = {
    "ingress": ("sch_htb", "cls_u32"),
    "egress": ("sch_ingress", "cls_u32", "act_police"),
}
def root_disk(devices):
    """``(device name, device)`` of the root disk among ``devices``, or ``(None, None)``."""
    for device_name, device in sorted((devices or {}).items()):
        if device.get("type") == "disk" and device.get("path") == "/":
            return device_name, device
    return None, None


def _integer(text):
    text = str(text or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def limits_of(instance, bridge):
    """``{"cpu", "memory", "swap", "disk", "ingress", "egress", "processes"}`` as Incus holds them
    for ``instance`` (its profiles' included); None where a limit is not set."""
    config = instance.get("expanded_config") or instance.get("config") or {}
    devices = instance.get("expanded_devices") or instance.get("devices") or {}
    _, nic = bridge_nic({"expanded_devices": devices}, bridge)
    _, root = root_disk(devices)
    cpu = config.get("limits.cpu") or None
    swap = config.get("limits.memory.swap")
    return {
        "cpu": _integer(cpu) if _integer(cpu) is not None else cpu,
        "memory": config.get("limits.memory") or None,
        "swap": {"true": True, "false": False}.get(str(swap).lower()) if swap is not None else None,
        "disk": (root or {}).get("size") or None,
        "ingress": (nic or {}).get("limits.ingress") or None,
        "egress": (nic or {}).get("limits.egress") or None,
        "processes": _integer(config.get("limits.processes")),
    }


class CreateSettings:
    """What a create with a plan gives Incus: ``profiles`` (None: Incus's default), ``config``,
    and ``devices(nic_devices)`` for the devices of the create request."""

    def __init__(self, plan, profiles, root):
        self.plan = plan
        self.profiles = profiles
        self.config = plan.config()
        self._root = root

    def devices(self, nic_devices):
        """The pinned, filtered NIC(s) of ``NicGuard.new_nic()`` with the plan's rate limits added
        (their own keys kept), and the root disk with the plan's size and pool."""
        devices = dict(nic_devices)
        for nic in nic_devices.items():
            devices.update(self.plan.devices(nic=nic))
        devices.update(self.plan.devices(root=self._root))
        return devices


class LimitsService:
    def __init__(self, incus, config, kernel=None):
        self.incus = incus
        self.bridge = config.get("INCUS_BRIDGE", "incusbr0")
        self.kernel = kernel or KernelModules()

    # -- checks ------------------------------------------------------------------------------

    def check_traffic_control(self, plan):
        """409 naming the kernel modules that ``ingress``/``egress`` need and the kernel lacks."""
        for field, given in (("ingress", plan.ingress), ("egress", plan.egress)):
            if given is None:
                continue
            missing = self.kernel.missing(TC_MODULES[field])
            if missing:
                raise Conflict(
                    N_("The host's kernel lacks {modules}, which the {field} limit needs (Incus shapes "
                       "a NIC's traffic with tc): load or build them (modprobe {modules}), or sell without {field}"),
                    modules=" ".join(missing), field=field,
                )

    def _pool(self, name):
        try:
            return self.incus.storage_pool(name)
        except NotFound:
            raise BadInput(N_("The storage pool '{pool}' does not exist"), pool=name) from None

    def check_size_enforced(self, pool_name):
        driver = self._pool(pool_name).get("driver", "")
        if driver not in SIZE_DRIVERS:
            raise BadInput(
                N_("The storage pool '{pool}' uses the '{driver}' driver, which cannot enforce a disk size: "
                   "give disk only for a container on a pool with the {drivers} driver"),
                pool=pool_name, driver=driver or "?", drivers=", ".join(SIZE_DRIVERS),
            )

    # -- create -----------------------------------------------------------------------------

    def for_create(self, plan):
        """Check ``plan`` against the host before anything is created; its ``CreateSettings``."""
        self.check_traffic_control(plan)
        if plan.profile is None and plan.disk is None and plan.storage_pool is None:
            # Limits in the config and on the NIC only: the profile's root disk stays as it is
            # (reading a profile costs ~25 ms with 200 containers: it lists every user).
            return CreateSettings(plan, profiles=None, root=None)
        profile_name = plan.profile or "default"
        try:
            profile = self.incus.profile(profile_name)
        except NotFound:
            raise BadInput(N_("The profile '{profile}' does not exist"), profile=profile_name) from None
        root = root_disk(profile.get("devices"))
        if root[1] is None:
            if plan.profile is not None and plan.storage_pool is None:
                raise BadInput(N_("The profile '{profile}' has no root disk: give a storage_pool"), profile=profile_name)
            root = ("root", {"type": "disk", "path": "/"})
        pool = plan.storage_pool or root[1].get("pool")
        if plan.storage_pool is not None:
            self._pool(plan.storage_pool)
        if plan.disk is not None:
            self.check_size_enforced(pool)
        return CreateSettings(plan, profiles=[profile_name] if plan.profile is not None else None, root=root)

    # -- live -------------------------------------------------------------------------------

    def apply(self, name, plan):
        """Change ``name``'s limits live (a PATCH of config and devices, limits.cpu apart); the
        limits as applied."""
        given = plan.given(LIMIT_FIELDS)
        if not given:
            raise BadInput(N_("Give at least one limit to change: {fields}"), fields=", ".join(LIMIT_FIELDS))
        instance = self.incus.instance_config(name)  # 404 for an unknown container
        self.check_traffic_control(plan)
        devices = instance.get("expanded_devices") or {}
        nic = root = None
        if plan.ingress is not None or plan.egress is not None:
            nic = bridge_nic(instance, self.bridge)
            if nic[1] is None:
                raise BadInput(N_("Container {name} has no NIC on the managed bridge {bridge}"), name=name, bridge=self.bridge)
        if plan.disk is not None:
            root = root_disk(devices)
            if root[1] is None:
                raise BadInput(N_("Container {name} has no root disk"), name=name)
            self.check_size_enforced(root[1].get("pool", ""))
            self._check_growth(name, root[1], plan.disk)
        config = plan.config()
        # limits.cpu in a request of its own, after the rest: changed in the same request as
        # limits.memory, Incus (6.0) sometimes leaves the container's CPU set as it was.
        cpu = {key: config.pop(key) for key in ("limits.cpu",) if key in config}
        try:
            self.incus.update(name, config=config, devices=plan.devices(nic=nic, root=root))
            self.incus.update(name, config=cpu)
        except IncusError as exc:
            raise IncusError(N_("Changing the limits of container {name} failed: {reason}"),
                             name=name, reason=exc.reason) from exc
        return limits_of(self.incus.instance_config(name), self.bridge)

    def set_nic_rates(self, name, rates):
        """Set ``limits.ingress`` / ``limits.egress`` of the NIC on the bridge to ``rates``
        (``{"ingress": "1Mbit" or None, "egress": ...}``; None removes the key): the rates it had.
        What a traffic throttle does, and undoes."""
        instance = self.incus.instance_config(name)
        nic_name, nic = bridge_nic(instance, self.bridge)
        if nic is None:
            raise BadInput(N_("Container {name} has no NIC on the managed bridge {bridge}"), name=name, bridge=self.bridge)
        before = {field: nic.get(f"limits.{field}") for field in ("ingress", "egress")}
        device = {key: value for key, value in nic.items() if key not in ("limits.ingress", "limits.egress")}
        device.update({f"limits.{field}": rate for field, rate in rates.items() if rate is not None})
        try:
            self.incus.update(name, devices={nic_name: device})
        except IncusError as exc:
            raise IncusError(N_("Changing the limits of container {name} failed: {reason}"),
                             name=name, reason=exc.reason) from exc
        return before

    def missing_for_throttle(self):
        """The kernel modules a throttle (both NIC limits) needs and the kernel lacks."""
        return self.kernel.missing(list(dict.fromkeys(TC_MODULES["ingress"] + TC_MODULES["egress"])))

    def _check_growth(self, name, root, size):
        current = incus_size(root.get("size"))
        if current is not None and size.value < current:
            raise BadInput(
                N_("The disk of container {name} is {current}: it can only grow, not shrink to {size}"),
                name=name, current=root.get("size"), size=size.text,
            )
        if current is None:
            usage = ((self.incus.instance_state(name).get("disk") or {}).get("root") or {}).get("usage") or 0
            if size.value < usage:
                raise BadInput(
                    N_("Container {name} already uses {used} MiB of disk: {size} is too small"),
                    name=name, used=-(-usage // (1024 * 1024)), size=size.text,
                )

    def limits_of(self, instance):
        return limits_of(instance, self.bridge)
