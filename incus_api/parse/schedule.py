"""``BACKUP_SCHEDULE``: when every container is backed up, in the host's local time.

``off`` (or empty), ``hourly``, ``daily HH:MM``, ``weekly DAY HH:MM`` (DAY: mon..sun). Pure."""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FORM = re.compile(r"(?:(hourly)|(daily)\s+([01]?\d|2[0-3]):([0-5]\d)|(weekly)\s+(mon|tue|wed|thu|fri|sat|sun)\s+"
                   r"([01]?\d|2[0-3]):([0-5]\d))", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    kind: str  # hourly | daily | weekly
    hour: int = 0
    minute: int = 0
    weekday: int = 0  # 0 Monday

    @property
    def text(self):
        if self.kind == "hourly":
            return "hourly"
        time = f"{self.hour:02d}:{self.minute:02d}"
        return f"daily {time}" if self.kind == "daily" else f"weekly {DAYS[self.weekday]} {time}"

    def last_due(self, now):
        """The latest moment of the schedule at or before ``now`` (a naive or aware datetime)."""
        if self.kind == "hourly":
            return now.replace(minute=0, second=0, microsecond=0)
        due = now.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        if self.kind == "daily":
            return due if due <= now else due - timedelta(days=1)
        due -= timedelta(days=(now.weekday() - self.weekday) % 7)
        return due if due <= now else due - timedelta(days=7)

    def next_due(self, now):
        step = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}[self.kind]
        return self.last_due(now) + step


def parse_schedule(text):
    """A ``Schedule``, or None for ``off``/empty; ``ValueError`` with the forms for anything else."""
    text = " ".join(str(text or "").split())
    if text.lower() in ("", "off", "none", "false", "0"):
        return None
    match = _FORM.fullmatch(text)
    if not match:
        raise ValueError(f"BACKUP_SCHEDULE={text!r}: use off, hourly, 'daily HH:MM' or 'weekly DAY HH:MM' "
                         f"(DAY: {', '.join(DAYS)})")
    if match.group(1):
        return Schedule("hourly")
    if match.group(2):
        return Schedule("daily", int(match.group(3)), int(match.group(4)))
    return Schedule("weekly", int(match.group(7)), int(match.group(8)), DAYS.index(match.group(6).lower()))


def local_now():
    return datetime.now().astimezone()
