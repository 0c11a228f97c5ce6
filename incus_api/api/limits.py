"""Change a container's package live: ``POST /container/<name>/limits`` with any plan field."""
from flask_babel import gettext as _

from ..schemas import route
from ..schemas.params import NAME
from ..schemas.plan import LIMITS_SCHEMA, PLAN_PARAMS
from ..service.plans import Plan
from . import bp
from .routes import services, success


@route(bp, "POST", "/container/<name>/limits", "Change a container's limits live", [NAME, *PLAN_PARAMS],
       answer={"limits": LIMITS_SCHEMA}, errors=(400, 401, 404, 409, 413, 500, 503, 504), description=(
           "Any of `cpu`, `memory`, `swap`, `disk`, `ingress`, `egress`, `processes` (at least one); the "
           "others stay as they are. Applied in one change without a restart. `disk` only grows, and only on a "
           "pool whose driver enforces a size (400 naming the pool and driver otherwise); `ingress`/`egress` "
           "need the kernel's traffic-control modules (409 naming the missing ones). The answer holds every "
           "limit as Incus now has it (null: not set)."))
def set_limits(name, **plan_values):
    limits = services().limits.apply(name, Plan.from_values(**plan_values))
    return success(_("The limits of container %(name)s have been changed", name=name), limits=limits)
