"""Monthly traffic: a container's period (``GET /container/<name>/traffic``), every container's
(``GET /traffic``, the billing system's daily poll) and a reset. Declared once; the traffic
service answers."""
from flask_babel import gettext as _

from ...schemas import route
from ...schemas.params import NAME
from ...schemas.traffic import DAYS, USAGE, USAGE_FIELDS
from . import bp, services, success


@route(bp, "GET", "/container/<name>/traffic", "A container's traffic this period, with its days", [NAME],
       answer={**USAGE_FIELDS, "days": DAYS}, errors=(400, 401, 404, 503), description=(
           "Counted on the host (no agent): bytes the container exchanged with anything beyond the bridge (the "
           "internet, the clients of its forwards); traffic between containers and with the host's own DNS/DHCP "
           "is not counted. rx = received by the container. Sampled every TRAFFIC_INTERVAL seconds; `days` holds "
           "each day of the period (host time)."))
def container_traffic(name):
    usage = services().traffic.usage(name)
    return success(_("Traffic of container %(name)s this period", name=name), **usage)


@route(bp, "GET", "/traffic", "Every container's traffic this period", [],
       answer={"containers": {"type": "array", "items": {**USAGE, "properties": {
           "name": {"type": "string"}, **USAGE_FIELDS}}}, "count": {"type": "integer"}},
       errors=(401,), description="One call for a billing system's daily usage update; ordered by name.")
def all_traffic():
    rows = services().traffic.all_usage()
    return success(_("%(count)d container(s)", count=len(rows)), containers=rows, count=len(rows))


@route(bp, "POST", "/container/<name>/traffic/reset", "Start a new traffic period now", [NAME],
       answer={**USAGE_FIELDS, "days": DAYS}, errors=(400, 401, 404, 503), description=(
           "The period's totals start again from zero now (the hourly history is kept) and a throttle or a "
           "suspension for traffic is undone (a suspension by action=suspend stays). The next period still starts "
           "on the reset day."))
def reset_traffic(name):
    usage = services().traffic.reset(name)
    return success(_("The traffic of container %(name)s has been reset", name=name), **usage)
