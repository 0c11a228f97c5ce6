"""The plan fields, declared once: ``PLAN_PARAMS`` (the limits, for ``/container/<name>/limits``
and create) and ``CREATE_PLAN_PARAMS`` (the limits plus ``profile`` and ``storage_pool``).
A view declared with them receives them as keyword arguments; ``service.plans.Plan.from_values``
turns those into a plan (see its docstring for the exact call)."""
from ..parse import quantities as parse
from ..parse import snapshots as snapshot_parse
from ..parse.names import INCUS_NAME, incus_name
from ..parse.numbers import BOOLEANS, boolean
from ..parse.quantities import SIZE_UNITS
from . import Param, anchored

SIZE_PATTERN = f"^[0-9]{{1,{parse.QUANTITY_DIGITS}}}({parse.SIZE_UNIT_PATTERN})$"
RATE_PATTERN = f"^[0-9]{{1,{parse.QUANTITY_DIGITS}}}({parse.RATE_UNIT_PATTERN})$"
NAME_PATTERN = anchored(INCUS_NAME)

CPU = Param("cpu", parse.cpu, {"type": "integer", "minimum": 1, "maximum": parse.CPU_MAX},
            description=f"CPU cores (`limits.cpu`), 1-{parse.CPU_MAX}.")
MEMORY = Param("memory", parse.memory, {"type": "string", "pattern": SIZE_PATTERN, "example": "512MiB"},
               description="Memory (`limits.memory`): digits and MB, MiB, GB, GiB, TB or TiB, e.g. `512MiB`, "
                           f"`1GiB`; {parse.human(parse.MEMORY_MIN, SIZE_UNITS)} to "
                           f"{parse.human(parse.MEMORY_MAX, SIZE_UNITS)}.")
SWAP = Param("swap", lambda value: boolean(value, "swap"), {"type": "string", "enum": list(BOOLEANS)},
             description="Whether the container may use the host's swap (`limits.memory.swap`).")
DISK = Param("disk", parse.disk, {"type": "string", "pattern": SIZE_PATTERN, "example": "10GiB"},
             description="Root disk size (`size` on the root disk device), e.g. `10GiB`; "
                         f"{parse.human(parse.DISK_MIN, SIZE_UNITS)} to {parse.human(parse.DISK_MAX, SIZE_UNITS)}. "
                         "Only on a pool whose driver enforces it (btrfs, zfs, lvm, lvmcluster, ceph); "
                         "on a running container it can only grow.")
INGRESS = Param("ingress", lambda value: parse.rate(value, "ingress"),
                {"type": "string", "pattern": RATE_PATTERN, "example": "10Mbit"},
                description="Download rate to the container (`limits.ingress` on its NIC), e.g. `10Mbit`, `1Gbit`; "
                            "needs the kernel's sch_htb and cls_u32.")
EGRESS = Param("egress", lambda value: parse.rate(value, "egress"),
               {"type": "string", "pattern": RATE_PATTERN, "example": "10Mbit"},
               description="Upload rate from the container (`limits.egress` on its NIC), e.g. `10Mbit`; "
                           "needs the kernel's sch_ingress, cls_u32 and act_police.")
PROCESSES = Param("processes", parse.processes, {"type": "integer", "minimum": 1, "maximum": parse.PROCESSES_MAX},
                  description="Most processes at once in the container (`limits.processes`).")
PROFILE = Param("profile", lambda value: incus_name(value, "profile"),
                {"type": "string", "pattern": NAME_PATTERN},
                description="Incus profile to create from instead of `default` (it must exist).")
STORAGE_POOL = Param("storage_pool", lambda value: incus_name(value, "storage_pool"),
                     {"type": "string", "pattern": NAME_PATTERN},
                     description="Storage pool of the root disk instead of the profile's (it must exist).")

SNAPSHOTS = Param("snapshots", snapshot_parse.count,
                  {"type": "integer", "minimum": 0, "maximum": snapshot_parse.SNAPSHOTS_MAX},
                  description=f"Most snapshots kept by hand (0-{snapshot_parse.SNAPSHOTS_MAX}; `0`, the default: none). "
                              "The scheduled ones are not counted.")
SNAPSHOT_SCHEDULE = Param("snapshot_schedule", snapshot_parse.schedule,
                          {"type": "string", "example": "@daily"},
                          description="When Incus takes a snapshot (`snapshots.schedule`): `@hourly`, `@daily`, "
                                      "`@weekly`, `@monthly`, a cron line such as `0 3 * * *`, or `off`. The scheduled "
                                      "snapshots are named `auto0`, `auto1`, ... (`snapshots.pattern`).")
SNAPSHOT_KEEP = Param("snapshot_keep", snapshot_parse.keep,
                      {"type": "string", "pattern": "^(0|[0-9]{1,4}[HdwMy])$", "example": "7d"},
                      description="How long a scheduled snapshot is kept (`snapshots.expiry`): digits and `H`, `d`, "
                                  "`w`, `M` or `y`, e.g. `7d`; `0`: until deleted.")

PLAN_PARAMS = [CPU, MEMORY, SWAP, DISK, INGRESS, EGRESS, PROCESSES, SNAPSHOTS, SNAPSHOT_SCHEDULE, SNAPSHOT_KEEP]
CREATE_PLAN_PARAMS = PLAN_PARAMS + [PROFILE, STORAGE_POOL]

LIMITS_SCHEMA = {"type": "object", "description": "The limits Incus holds now (null: none set).", "properties": {
    "cpu": {"type": ["integer", "string", "null"], "description": "limits.cpu: cores, or a CPU set an admin gave"},
    "memory": {"type": ["string", "null"]},
    "swap": {"type": ["boolean", "null"]},
    "disk": {"type": ["string", "null"], "description": "size of the root disk"},
    "ingress": {"type": ["string", "null"]},
    "egress": {"type": ["string", "null"]},
    "processes": {"type": ["integer", "null"]},
}}
