"""Whole numbers and booleans, written in ASCII only."""
import re

from ..exceptions import BadInput
from ..i18n import N_

ASCII_DIGITS = re.compile(r"[0-9]+")
BIGGEST_ID = 2**63 - 1  # SQLite's INTEGER: anything larger overflows it
# A row id in a route's path (``/container/nat_rule/<int:rule_id>``): at most this many ASCII digits.
ROUTE_ID_DIGITS = 18
ROUTE_ID_MAX = 10**ROUTE_ID_DIGITS - 1


def whole_number(value, field, minimum, maximum):
    """A whole number from ``minimum`` to ``maximum``, written in ASCII digits only.

    No sign, spaces, exponent, fraction or other scripts' digits (``'²'.isdigit()`` and
    ``int('٣')`` both accept those); the length is checked before ``int()`` so a long digit string
    costs nothing and never reaches SQLite.
    """
    text = str(value)
    if (len(text) > len(str(maximum)) or not ASCII_DIGITS.fullmatch(text)
            or not minimum <= int(text) <= maximum):
        raise BadInput(N_("Invalid {field} '{value}': a whole number from {minimum} to {maximum}"),
                       field=field, value=text[:40], minimum=minimum, maximum=maximum)
    return int(text)


BOOLEANS = ("true", "false")


def boolean(value, field):
    text = str(value).lower()
    if text not in BOOLEANS:
        raise BadInput(N_("Invalid {field} '{value}': use true or false"), field=field, value=text[:40])
    return text == "true"
