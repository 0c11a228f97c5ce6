"""The snapshot plan fields and snapshot names, parsed strictly into what Incus is given.

- ``snapshots``: how many snapshots may be kept by hand (0-``SNAPSHOTS_MAX``; 0, the default: none);
- ``snapshot_schedule``: ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, a five-field cron line
  (``0 3 * * *``) or ``off`` -> Incus's ``snapshots.schedule`` (``off``: the key emptied);
- ``snapshot_keep``: how long a scheduled snapshot is kept, digits and one of ``H`` (hours), ``d``,
  ``w``, ``M`` (months) or ``y`` (``7d``), or ``0`` (kept until deleted) -> ``snapshots.expiry``;
- a snapshot's name: letters, digits, ``.``, ``_`` and ``-``, not starting with ``auto`` (the
  prefix of the scheduled ones).
"""
import re

from ..exceptions import BadInput
from ..i18n import N_
from .numbers import whole_number

SNAPSHOTS_MAX = 100
SCHEDULE_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly")
SCHEDULE_OFF = "off"
# The cron fields' bounds: minute, hour, day of month, month, day of week.
CRON_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
CRON_ITEM = re.compile(r"(\*|([0-9]{1,2})(-([0-9]{1,2}))?)(/([0-9]{1,2}))?", re.ASCII)
KEEP = re.compile(r"([0-9]{1,4})([HdwMy])", re.ASCII)
# The scheduled snapshots' names (Incus's snapshots.pattern): a name by hand never starts so.
AUTO_PREFIX = "auto"
AUTO_PATTERN = AUTO_PREFIX + "%d"
SNAPSHOT_NAME_MAX = 63
SNAPSHOT_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{SNAPSHOT_NAME_MAX - 1}}}", re.ASCII)


def count(value, field="snapshots"):
    return whole_number(value, field, 0, SNAPSHOTS_MAX)


def _cron_field(text, low, high):
    for item in text.split(","):
        match = CRON_ITEM.fullmatch(item)
        if not match:
            return False
        numbers = [int(group) for group in (match.group(2), match.group(4)) if group is not None]
        if any(not low <= number <= high for number in numbers) or (len(numbers) == 2 and numbers[0] > numbers[1]):
            return False
        if match.group(6) is not None and not 1 <= int(match.group(6)) <= high:
            return False
    return True


def schedule(value, field="snapshot_schedule"):
    """``@hourly``/``@daily``/``@weekly``/``@monthly``, a cron line, or ``off`` (returned as "")."""
    text = str(value)
    if text == SCHEDULE_OFF:
        return ""
    if text in SCHEDULE_ALIASES:
        return text
    parts = text.split(" ")
    if (len(text) <= 100 and len(parts) == len(CRON_BOUNDS)
            and all(_cron_field(part, low, high) for part, (low, high) in zip(parts, CRON_BOUNDS))):
        return text
    raise BadInput(N_("Invalid {field} '{value}': use @hourly, @daily, @weekly, @monthly, a cron line such as "
                      "'0 3 * * *' (minute hour day month weekday) or off"), field=field, value=text[:40])


def keep(value, field="snapshot_keep"):
    """How long a scheduled snapshot is kept (``7d``, ``12H``, ``2w``, ``1M``, ``1y``); ``0``
    (returned as ""): until it is deleted."""
    text = str(value)
    if text == "0":
        return ""
    match = KEEP.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise BadInput(N_("Invalid {field} '{value}': digits and one of H (hours), d (days), w (weeks), M (months), "
                          "y (years), e.g. 7d; or 0 to keep them until deleted"), field=field, value=text[:40])
    return f"{int(match.group(1))}{match.group(2)}"


def snapshot_name(value, field="snapshot"):
    text = str(value)
    if not SNAPSHOT_NAME.fullmatch(text) or text.lower().startswith(AUTO_PREFIX):
        raise BadInput(N_("Invalid {field} '{value}': 1-63 letters, digits, '.', '_' and '-', starting with a letter or "
                          "digit and not with 'auto' (the scheduled snapshots' names)"), field=field, value=text[:80])
    return text
