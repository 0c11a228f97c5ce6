"""Change a container's package live: ``POST /container/<name>/limits`` with any plan field."""
from flask_babel import gettext as _

from ...schemas import route
from ...schemas.params import NAME
from ...schemas.plan import LIMITS_SCHEMA, PLAN_PARAMS
from ...schemas.traffic import TRAFFIC_PARAMS, USAGE
from ...service.plans import Plan
from ...service.traffic import TrafficPlan
from . import bp, services, success


@route(bp, "POST", "/container/<name>/limits", "Change a container's limits live", [NAME, *PLAN_PARAMS, *TRAFFIC_PARAMS],
       answer={"limits": LIMITS_SCHEMA, "traffic": {**USAGE, "description": "Only when a traffic field was given."}},
       errors=(400, 401, 404, 409, 413, 500, 503, 504), description=(
           "Any of `cpu`, `memory`, `swap`, `disk`, `ingress`, `egress`, `processes`, the snapshot fields "
           "`snapshots`, `snapshot_schedule`, `snapshot_keep` and the traffic plan's "
           "`traffic_quota` (`0`: unlimited), `traffic_reset_day`, `traffic_direction`, `traffic_action` (at least "
           "one); the others stay as they are. Applied in one change without a restart. `disk` only grows, and only "
           "on a pool whose driver enforces a size (400 naming the pool and driver otherwise); `ingress`/`egress` "
           "and `traffic_action=throttle` need the kernel's traffic-control modules (409 naming the missing ones). "
           "A new quota is held against this period's use at once: a larger one lifts a throttle or a suspension "
           "for traffic. While a traffic throttle holds, `ingress`/`egress` are kept for its end (a reset, a larger "
           "quota, the next period) and the NIC keeps the throttle's rate. The answer holds every limit as Incus now has "
           "it (null: not set)."))
def set_limits(name, traffic_quota, traffic_reset_day, traffic_direction, traffic_action, **plan_values):
    traffic = TrafficPlan(quota=traffic_quota, reset_day=traffic_reset_day, direction=traffic_direction,
                          action=traffic_action)
    limits, usage = services().provisioning.change_plan(name, Plan.from_values(**plan_values), traffic)
    extra = {"traffic": usage} if usage is not None else {}
    return success(_("The limits of container %(name)s have been changed", name=name), limits=limits, **extra)
