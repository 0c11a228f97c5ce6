"""The traffic plan fields (``POST /container/create`` and ``/container/<name>/limits``) and the
traffic answers, declared once."""
from .. import validation_plan as parse
from ..traffic.periods import ACTIONS, DIRECTIONS
from . import Param

TRAFFIC_QUOTA = Param(
    "traffic_quota", parse.traffic_quota,
    {"type": "string", "pattern": "^(0|[0-9]{1,7}([kKmMgGtTpP][iI]?[bB]))$", "example": "500GB"},
    description="Monthly traffic allowance, e.g. `500GB`, `1TB` (GB = 10^9 bytes, GiB = 2^30); `0`: unlimited "
                "(the default at create). What counts is set by `traffic_direction`.")
TRAFFIC_RESET_DAY = Param(
    "traffic_reset_day", parse.reset_day, {"type": "integer", "minimum": 1, "maximum": 28},
    description="Day of the month (1-28, 00:00 host time) the period starts again; default: the day of creation "
                "(28 for the 29th-31st).")
TRAFFIC_DIRECTION = Param(
    "traffic_direction", lambda value: parse.one_of(value, "traffic_direction", DIRECTIONS),
    {"type": "string", "enum": list(DIRECTIONS)},
    description="What counts against the quota: `both` (in + out, default), `out` (sent by the container), `in` "
                "(received), `max` (the larger of the two).")
TRAFFIC_ACTION = Param(
    "traffic_action", lambda value: parse.one_of(value, "traffic_action", ACTIONS),
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
