"""A plan: the limits a seller sells with a container, and what Incus is given for them.

- ``cpu`` -> ``limits.cpu`` (cores), ``memory`` -> ``limits.memory``, ``swap`` ->
  ``limits.memory.swap``, ``processes`` -> ``limits.processes``: the instance's config;
- ``disk`` -> ``size`` on the root disk device (the profile's root device copied, the size added);
- ``ingress`` / ``egress`` -> ``limits.ingress`` / ``limits.egress`` on the NIC on the bridge
  (the host shapes what reaches the container and polices what it sends);
- ``profile``, ``storage_pool``: where a new container comes from (create only);
- ``snapshots`` -> ``user.incus-api-web.snapshots`` (how many snapshots may be kept by hand, read
  back by ``service.snapshots``), ``snapshot_schedule`` -> ``snapshots.schedule`` (with
  ``snapshots.pattern`` ``auto%d``: the scheduled ones are told apart by their names) and
  ``snapshot_keep`` -> ``snapshots.expiry`` (Incus takes and expires the scheduled snapshots).
"""
from dataclasses import dataclass, fields

from ..parse.quantities import Quantity
from ..parse.snapshots import AUTO_PATTERN

SNAPSHOT_FIELDS = ("snapshots", "snapshot_schedule", "snapshot_keep")
LIMIT_FIELDS = ("cpu", "memory", "swap", "disk", "ingress", "egress", "processes") + SNAPSHOT_FIELDS
# The instance config key that holds the plan's ``snapshots`` (Incus has no such limit of its own).
SNAPSHOTS_KEY = "user.incus-api-web.snapshots"
CREATE_FIELDS = LIMIT_FIELDS + ("profile", "storage_pool")


@dataclass(frozen=True)
class Plan:
    """The parsed plan fields; None is "not given" (Incus keeps what it has, or its default).

    Build it from the parsed parameters of ``schemas.plan.PLAN_PARAMS`` (``/limits``) or
    ``schemas.plan.CREATE_PLAN_PARAMS`` (``/container/create``). A view declared with those
    parameters receives them as keyword arguments, so::

        @route(bp, "POST", "/container/create", ..., [NEW_NAME, IMAGE, ..., *CREATE_PLAN_PARAMS], ...)
        def create_container(name, image, password, ssh_key, **plan_values):
            plan = Plan.from_values(**plan_values)
            sale = services().provisioning.create(name, image, password=password, ssh_key=ssh_key, plan=plan)
            limits = sale.info["limits"]  # as applied (``limits_of``)

    ``Plan.from_values()`` of nothing is the empty plan: create then behaves as without one.
    """

    cpu: int = None
    memory: Quantity = None
    swap: bool = None
    disk: Quantity = None
    ingress: Quantity = None
    egress: Quantity = None
    processes: int = None
    snapshots: int = None
    snapshot_schedule: str = None  # "" : no schedule
    snapshot_keep: str = None  # "" : kept until deleted
    profile: str = None
    storage_pool: str = None

    @classmethod
    def from_values(cls, **values):
        """From the parsed parameters; a name that is no plan field is a ``TypeError`` (a bug)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"not plan fields: {', '.join(sorted(unknown))}")
        return cls(**values)

    def given(self, names=CREATE_FIELDS):
        """The names of the fields that were given."""
        return [name for name in names if getattr(self, name) is not None]

    def is_empty(self):
        return not self.given()

    def config(self):
        """The instance config keys (``limits.*``, ``snapshots.*``) this plan sets."""
        config = {}
        if self.cpu is not None:
            config["limits.cpu"] = str(self.cpu)
        if self.memory is not None:
            config["limits.memory"] = self.memory.text
        if self.swap is not None:
            config["limits.memory.swap"] = "true" if self.swap else "false"
        if self.processes is not None:
            config["limits.processes"] = str(self.processes)
        if self.snapshots is not None:
            config[SNAPSHOTS_KEY] = str(self.snapshots)
        if self.snapshot_schedule is not None:
            config["snapshots.schedule"] = self.snapshot_schedule
            config["snapshots.pattern"] = AUTO_PATTERN
        if self.snapshot_keep is not None:
            config["snapshots.expiry"] = self.snapshot_keep
        return config

    def nic_limits(self):
        """The keys this plan sets on the NIC on the bridge."""
        limits = {}
        if self.ingress is not None:
            limits["limits.ingress"] = self.ingress.text
        if self.egress is not None:
            limits["limits.egress"] = self.egress.text
        return limits

    def devices(self, nic=None, root=None):
        """The devices to write: ``nic`` and ``root`` are ``(device name, device)`` of the NIC on
        the bridge and of the root disk as they are now (a profile's are copied, never changed in
        place). The NIC keeps its keys (pinned address, filters) and gains the rate limits; the
        root disk gains ``size`` and, at create, the ``storage_pool``."""
        devices = {}
        nic_limits = self.nic_limits()
        if nic is not None and nic_limits:
            nic_name, nic_device = nic
            devices[nic_name] = {**nic_device, **nic_limits}
        if root is not None and (self.disk is not None or self.storage_pool is not None):
            root_name, root_device = root
            device = {**root_device, "type": "disk", "path": "/"}
            if self.storage_pool is not None:
                device["pool"] = self.storage_pool
            if self.disk is not None:
                device["size"] = self.disk.text
            devices[root_name] = device
        return devices
