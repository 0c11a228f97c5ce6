"""URL converters of the app's routes."""
from werkzeug.routing import IntegerConverter

from ..parse.numbers import ROUTE_ID_DIGITS


class WholeNumberConverter(IntegerConverter):
    """``<int:...>`` in a route, ASCII digits only and at most ``ROUTE_ID_DIGITS`` (18) of them.

    Werkzeug's own matches ``\\d+``, which takes other scripts' digits (``/nat_rule/٣`` deleted
    rule 3) and any length (30 digits went on to the service): such a path now matches no route
    and answers 404.
    """

    regex = rf"[0-9]{{1,{ROUTE_ID_DIGITS}}}"
    signed_regex = rf"-?[0-9]{{1,{ROUTE_ID_DIGITS}}}"
