"""The traffic plan fields (``POST /container/create`` and ``/container/<name>/limits``) and the
traffic answers, declared once."""
from ..parse import traffic as parse
from ..parse.quantities import QUANTITY_DIGITS
from ..traffic.periods import ACTIONS, DIRECTIONS
from . import Param

TRAFFIC_QUOTA = Param(
    "traffic_quota", parse.traffic_quota,
    {"type": "string", "pattern": f"^({parse.UNLIMITED}|[0-9]{{1,{QUANTITY_DIGITS}}}({parse.TRAFFIC_UNIT_PATTERN}))$",
     "example": "500GB"},
    description="Monthly traffic allowance, e.g. `500GB`, `1TB` (GB = 10^9 bytes, GiB = 2^30); `0`: unlimited "
                "(the default at create). What counts is set by `traffic_direction`.")
TRAFFIC_RESET_DAY = Param(
    "traffic_reset_day", parse.reset_day,
    {"type": "integer", "minimum": parse.RESET_DAY_MIN, "maximum": parse.RESET_DAY_MAX},
    description=f"Day of the month ({parse.RESET_DAY_MIN}-{parse.RESET_DAY_MAX}, 00:00 host time) the period starts "
                f"again; default: the day of creation ({parse.RESET_DAY_MAX} for the 29th-31st).")
TRAFFIC_DIRECTION = Param(
    "traffic_direction", parse.direction,
    {"type": "string", "enum": list(DIRECTIONS)},
    description="What counts against the quota: `both` (in + out, default), `out` (sent by the container), `in` "
                "(received), `max` (the larger of the two).")
TRAFFIC_ACTION = Param(
    "traffic_action", parse.action,
    {"type": "string", "enum": list(ACTIONS)},
    description="Past the quota: `throttle` (default; both NIC rates set to TRAFFIC_THROTTLE_RATE, which needs the "
                "kernel's tc modules: 409 naming the missing ones) or `suspend` (stopped and refused a start until "
                "the reset). Undone at the next reset day or by `POST /container/{name}/traffic/reset`.")

TRAFFIC_PARAMS = [TRAFFIC_QUOTA, TRAFFIC_RESET_DAY, TRAFFIC_DIRECTION, TRAFFIC_ACTION]

PERIOD = {"type": "object", "required": ["start", "end"], "properties": {
    "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"}}}
NULLABLE_BYTES = {"type": ["integer", "null"]}
USAGE_FIELDS = {
    "period": PERIOD,
    "rx_bytes": {"type": "integer", "description": "received by the container this period"},
    "tx_bytes": {"type": "integer", "description": "sent by the container this period"},
    "counted_bytes": {"type": "integer", "description": "what counts against the quota (traffic_direction)"},
    "quota_bytes": {**NULLABLE_BYTES, "description": "null: unlimited"},
    "remaining_bytes": {**NULLABLE_BYTES, "description": "null: unlimited"},
    "over_quota": {"type": "boolean"},
    "percent": {"type": ["number", "null"], "description": "of the quota used; null: unlimited"},
    "reset_day": {"type": "integer"},
    "direction": {"type": "string", "enum": list(DIRECTIONS)},
    "action": {"type": "string", "enum": list(ACTIONS)},
    "enforced": {"type": ["string", "null"], "enum": [*ACTIONS, None],
                 "description": "the action in force now (null: none)"},
}
DAYS = {"type": "array", "items": {"type": "object", "required": ["date", "rx_bytes", "tx_bytes"], "properties": {
    "date": {"type": "string", "format": "date"}, "rx_bytes": {"type": "integer"}, "tx_bytes": {"type": "integer"}}}}
USAGE = {"type": "object", "properties": USAGE_FIELDS}
SUMMARY = {"type": ["object", "null"], "description": "This period's totals (null: not counted yet).", "properties": {
    key: USAGE_FIELDS[key] for key in ("rx_bytes", "tx_bytes", "counted_bytes", "quota_bytes", "percent",
                                       "over_quota", "enforced")} | {"period_end": {"type": "string", "format": "date-time"}}}
