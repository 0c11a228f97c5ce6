"""A plan's limits (what a seller sells) as typed values: sizes, rates, CPU and process counts.

Every value is ASCII digits and a unit from a short list, with bounds: what Incus would take
(``1e3``, ``-1``, ``²``, ``10XB``, thirty digits) never reaches it, and each ``BadInput`` names
the field. Sizes and rates keep the text Incus is given (its canonical spelling) and the number
they stand for, so that sizes can be compared (a disk only grows).
"""
import re
from dataclasses import dataclass

from ..exceptions import BadInput
from ..i18n import N_
from .numbers import whole_number

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4
# Incus's spellings (units.ParseByteSizeString / ParseBitSizeString): matched without regard to
# case, written back as Incus spells them.
SIZE_UNITS = {"kb": ("kB", 1000), "mb": ("MB", 1000**2), "gb": ("GB", 1000**3), "tb": ("TB", 1000**4),
              "kib": ("KiB", KIB), "mib": ("MiB", MIB), "gib": ("GiB", GIB), "tib": ("TiB", TIB)}
RATE_UNITS = {"kbit": ("kbit", 1000), "mbit": ("Mbit", 1000**2), "gbit": ("Gbit", 1000**3)}
# The same units as regular expressions, in any case (for the routes' schemas; a test holds them
# to the dictionaries above).
SIZE_UNIT_PATTERN = "[kKmMgGtT][iI]?[bB]"
RATE_UNIT_PATTERN = "[kKmMgG][bB][iI][tT]"
# At most 7 digits before the unit: long digit strings are refused before int() sees them.
QUANTITY_DIGITS = 7
QUANTITY = re.compile(rf"([0-9]{{1,{QUANTITY_DIGITS}}})([A-Za-z]{{2,4}})", re.ASCII)

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


def quantity(value, field, units, minimum, maximum, problem):
    """Digits and one of ``units``, from ``minimum`` to ``maximum``; else ``problem`` (a message)."""
    text = str(value)
    match = QUANTITY.fullmatch(text)
    unit = units.get(match.group(2).lower()) if match else None
    if unit is None or not minimum <= int(match.group(1)) * unit[1] <= maximum:
        raise BadInput(problem, field=field, value=text[:40],
                       minimum=human(minimum, units), maximum=human(maximum, units))
    return Quantity(value=int(match.group(1)) * unit[1], text=f"{int(match.group(1))}{unit[0]}")


def human(amount, units):
    """``amount`` in the largest of ``units`` that divides it (for the bounds in messages)."""
    best = None
    for spelling, size in units.values():
        if amount % size == 0 and (best is None or size > best[1]):
            best = (spelling, size)
    return f"{amount // best[1]}{best[0]}" if best else str(amount)


def memory(value, field="memory"):
    return quantity(value, field, SIZE_UNITS, MEMORY_MIN, MEMORY_MAX, N_(
        "Invalid {field} '{value}': a size such as 512MiB or 2GiB (digits, then MB, MiB, GB, GiB, TB or TiB), "
        "from {minimum} to {maximum}"))


def disk(value, field="disk"):
    return quantity(value, field, SIZE_UNITS, DISK_MIN, DISK_MAX, N_(
        "Invalid {field} '{value}': a size such as 10GiB (digits, then MB, MiB, GB, GiB, TB or TiB), "
        "from {minimum} to {maximum}"))


def rate(value, field):
    return quantity(value, field, RATE_UNITS, RATE_MIN, RATE_MAX, N_(
        "Invalid {field} '{value}': a rate such as 10Mbit or 1Gbit (digits, then kbit, Mbit or Gbit), "
        "from {minimum} to {maximum}"))


def cpu(value, field="cpu"):
    return whole_number(value, field, 1, CPU_MAX)


def processes(value, field="processes"):
    return whole_number(value, field, 1, PROCESSES_MAX)


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


def incus_rate(text):
    """A NIC rate as Incus stores it (``10Mbit``) in bit/s; None when unset or not in a form this
    parser knows."""
    match = re.fullmatch(r"([0-9]{1,15})([A-Za-z]{3,4})", str(text or "").strip(), re.ASCII)
    if not match:
        return None
    unit = {**RATE_UNITS, "bit": ("bit", 1)}.get(match.group(2).lower())
    return int(match.group(1)) * unit[1] if unit else None
