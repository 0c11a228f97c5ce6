"""Parsing of a plan's fields (the limits a seller sells) into typed values.

Every value is ASCII digits and a unit from a short list, with bounds: what Incus would take
(``1e3``, ``-1``, ``²``, ``10XB``, thirty digits) never reaches it, and each ``BadInput`` names
the field. Sizes and rates keep the text Incus is given (its canonical spelling) and the number
they stand for, so that sizes can be compared (a disk only grows).
"""
import re
from dataclasses import dataclass

from .exceptions import BadInput
from .i18n import N_
from .validation import whole_number

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
# Incus's spellings (units.ParseByteSizeString / ParseBitSizeString): matched without regard to
# case, written back as Incus spells them.
SIZE_UNITS = {"kb": ("kB", 1000), "mb": ("MB", 1000**2), "gb": ("GB", 1000**3), "tb": ("TB", 1000**4),
              "kib": ("KiB", KIB), "mib": ("MiB", MIB), "gib": ("GiB", GIB), "tib": ("TiB", TIB)}
RATE_UNITS = {"kbit": ("kbit", 1000), "mbit": ("Mbit", 1000**2), "gbit": ("Gbit", 1000**3)}
# At most 7 digits before the unit: long digit strings are refused before int() sees them.
QUANTITY = re.compile(r"([0-9]{1,7})([A-Za-z]{2,4})", re.ASCII)
# Incus object names (profiles, storage pools).
INCUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", re.ASCII)

CPU_MAX = 1024
PROCESSES_MAX = 4194304  # the kernel's largest pid_max
MEMORY_MIN, MEMORY_MAX = 32 * MIB, 4 * TIB
DISK_MIN, DISK_MAX = 64 * MIB, 1024 * TIB
RATE_MIN, RATE_MAX = 64 * 1000, 100 * 1000**3


@dataclass(frozen=True, order=True)
class Quantity:
    """A size in bytes or a rate in bit/s: ``value`` to compare, ``text`` for Incus (``256MiB``)."""

    value: int
    text: str

    def __str__(self):
        return self.text


def _quantity(value, field, units, minimum, maximum, problem):
    text = str(value)
    match = QUANTITY.fullmatch(text)
    unit = units.get(match.group(2).lower()) if match else None
    if unit is None or not minimum <= int(match.group(1)) * unit[1] <= maximum:
        raise BadInput(problem, field=field, value=text[:40],
                       minimum=_human(minimum, units), maximum=_human(maximum, units))
    return Quantity(value=int(match.group(1)) * unit[1], text=f"{int(match.group(1))}{unit[0]}")


def _human(amount, units):
    """``amount`` in the largest of ``units`` that divides it (for the bounds in messages)."""
    best = None
    for spelling, size in units.values():
        if amount % size == 0 and (best is None or size > best[1]):
            best = (spelling, size)
    return f"{amount // best[1]}{best[0]}" if best else str(amount)


def memory(value, field="memory"):
    return _quantity(value, field, SIZE_UNITS, MEMORY_MIN, MEMORY_MAX, N_(
        "Invalid {field} '{value}': a size such as 512MiB or 2GiB (digits, then MB, MiB, GB, GiB, TB or TiB), "
        "from {minimum} to {maximum}"))


def disk(value, field="disk"):
    return _quantity(value, field, SIZE_UNITS, DISK_MIN, DISK_MAX, N_(
        "Invalid {field} '{value}': a size such as 10GiB (digits, then MB, MiB, GB, GiB, TB or TiB), "
        "from {minimum} to {maximum}"))


def rate(value, field):
    return _quantity(value, field, RATE_UNITS, RATE_MIN, RATE_MAX, N_(
        "Invalid {field} '{value}': a rate such as 10Mbit or 1Gbit (digits, then kbit, Mbit or Gbit), "
        "from {minimum} to {maximum}"))


def cpu(value, field="cpu"):
    return whole_number(value, field, 1, CPU_MAX)


def processes(value, field="processes"):
    return whole_number(value, field, 1, PROCESSES_MAX)


def boolean(value, field):
    text = str(value).lower()
    if text not in ("true", "false"):
        raise BadInput(N_("Invalid {field} '{value}': use true or false"), field=field, value=text[:40])
    return text == "true"


def incus_name(value, field):
    text = str(value)
    if not INCUS_NAME.fullmatch(text):
        raise BadInput(
            N_("Invalid {field} '{value}': 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit"),
            field=field, value=text[:80],
        )
    return text


def incus_size(text):
    """A size as Incus stores it (``10GiB``, ``500MB``, plain bytes) in bytes; None when unset or
    not in a form this parser knows (then nothing is compared against it)."""
    text = str(text or "").strip()
    if re.fullmatch(r"[0-9]{1,20}", text, re.ASCII):
        return int(text)
    match = re.fullmatch(r"([0-9]{1,15})([A-Za-z]{1,3})", text, re.ASCII)
    if not match:
        return None
    unit = SIZE_UNITS.get(match.group(2).lower()) or ({"b": ("B", 1)}.get(match.group(2).lower()))
    return int(match.group(1)) * unit[1] if unit else None


# -- traffic plans (issue 13) ------------------------------------------------------------------

TRAFFIC_MIN, TRAFFIC_MAX = 1000**2, 1000**5  # 1MB to 1000TB a month
UNLIMITED = 0  # a quota of 0: no quota


def traffic_quota(value, field="traffic_quota"):
    """A monthly allowance such as 500GB or 1TB (bytes; GB = 10^9, GiB = 2^30), or 0 for none."""
    if str(value) == "0":
        return UNLIMITED
    units = {**SIZE_UNITS, "pb": ("PB", 1000**5)}
    return _quantity(value, field, units, TRAFFIC_MIN, TRAFFIC_MAX, N_(
        "Invalid {field} '{value}': a monthly traffic allowance such as 500GB or 1TB (digits, then MB, GB, TB, "
        "MiB, GiB or TiB), from {minimum} to {maximum}, or 0 for unlimited")).value


def reset_day(value, field="traffic_reset_day"):
    return whole_number(value, field, 1, 28)


def one_of(value, field, choices):
    text = str(value).lower()
    if text not in choices:
        raise BadInput(N_("Invalid {field} '{value}': use one of {choices}"), field=field, value=str(value)[:40],
                       choices=", ".join(choices))
    return text
