"""A traffic plan's fields (issue 13): the monthly quota, the reset day, what counts and what
happens past the quota."""
from ..i18n import N_
from ..traffic.periods import ACTIONS, DIRECTIONS
from .choices import one_of
from .numbers import whole_number
from .quantities import SIZE_UNIT_PATTERN, SIZE_UNITS, quantity

TRAFFIC_MIN, TRAFFIC_MAX = 1000**2, 1000**5  # 1MB to 1000TB a month
UNLIMITED = 0  # a quota of 0: no quota
TRAFFIC_UNITS = {**SIZE_UNITS, "pb": ("PB", 1000**5)}
TRAFFIC_UNIT_PATTERN = f"{SIZE_UNIT_PATTERN}|[pP][bB]"  # TRAFFIC_UNITS in any case
RESET_DAY_MIN, RESET_DAY_MAX = 1, 28  # every month has a 28th


def traffic_quota(value, field="traffic_quota"):
    """A monthly allowance such as 500GB or 1TB (bytes; GB = 10^9, GiB = 2^30), or 0 for none."""
    if str(value) == "0":
        return UNLIMITED
    return quantity(value, field, TRAFFIC_UNITS, TRAFFIC_MIN, TRAFFIC_MAX, N_(
        "Invalid {field} '{value}': a monthly traffic allowance such as 500GB or 1TB (digits, then MB, GB, TB, "
        "MiB, GiB or TiB), from {minimum} to {maximum}, or 0 for unlimited")).value


def reset_day(value, field="traffic_reset_day"):
    return whole_number(value, field, RESET_DAY_MIN, RESET_DAY_MAX)


def direction(value, field="traffic_direction"):
    """What counts against the quota: one of ``traffic.periods.DIRECTIONS``."""
    return one_of(value, field, DIRECTIONS)


def action(value, field="traffic_action"):
    """What happens past the quota: one of ``traffic.periods.ACTIONS``."""
    return one_of(value, field, ACTIONS)
