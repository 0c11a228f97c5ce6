"""The plan fields, declared once: ``PLAN_PARAMS`` (the limits, for ``/container/<name>/limits``
and create) and ``CREATE_PLAN_PARAMS`` (the limits plus ``profile`` and ``storage_pool``).
A view declared with them receives them as keyword arguments; ``service.plans.Plan.from_values``
turns those into a plan (see its docstring for the exact call)."""
from .. import validation_plan as parse
from . import Param

SIZE_PATTERN = "^[0-9]{1,7}([kKmMgGtT][iI]?[bB])$"
RATE_PATTERN = "^[0-9]{1,7}([kKmMgG][bB][iI][tT])$"
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

CPU = Param("cpu", parse.cpu, {"type": "integer", "minimum": 1, "maximum": parse.CPU_MAX},
            description="CPU cores (`limits.cpu`), 1-1024.")
MEMORY = Param("memory", parse.memory, {"type": "string", "pattern": SIZE_PATTERN, "example": "512MiB"},
               description="Memory (`limits.memory`): digits and MB, MiB, GB, GiB, TB or TiB, e.g. `512MiB`, "
                           "`1GiB`; 32MiB to 4TiB.")
SWAP = Param("swap", lambda value: parse.boolean(value, "swap"), {"type": "string", "enum": ["true", "false"]},
             description="Whether the container may use the host's swap (`limits.memory.swap`).")
DISK = Param("disk", parse.disk, {"type": "string", "pattern": SIZE_PATTERN, "example": "10GiB"},
             description="Root disk size (`size` on the root disk device), e.g. `10GiB`; 64MiB to 1024TiB. "
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
PROFILE = Param("profile", lambda value: parse.incus_name(value, "profile"),
                {"type": "string", "pattern": NAME_PATTERN},
                description="Incus profile to create from instead of `default` (it must exist).")
STORAGE_POOL = Param("storage_pool", lambda value: parse.incus_name(value, "storage_pool"),
                     {"type": "string", "pattern": NAME_PATTERN},
                     description="Storage pool of the root disk instead of the profile's (it must exist).")

PLAN_PARAMS = [CPU, MEMORY, SWAP, DISK, INGRESS, EGRESS, PROCESSES]
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
