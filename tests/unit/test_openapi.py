"""The OpenAPI description stays in step with the code: every route of the api blueprint is
described, and every described route exists, with the same methods; and each parameter's schema
says what its parser takes."""
import math
import re

import pytest

from incus_api.exceptions import BadInput
from incus_api.parse import quantities, traffic
from incus_api.schemas import ROUTES
from incus_api.web.apidocs.spec import build_spec
from incus_api.web.converters import WholeNumberConverter


def api_routes(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_api_route_is_described_and_nothing_else(client, app):
    spec = client.get("/openapi.json").get_json()
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations
                 if not path.startswith("/customer/")}  # the customer panel's: test_customer_openapi
    assert described == api_routes(app)


def test_spec_is_public_and_well_formed(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["apiHash"]["name"] == "X-API-Hash"
    for operations in spec["paths"].values():
        for operation in operations.values():
            assert operation["summary"] and any(code in operation["responses"] for code in ("200", "202", "302"))


def test_docs_page_uses_only_local_assets(client):
    response = client.get("/docs")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "/container/{name}/add_nat_rule" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script>" not in html


# -- each parameter's schema says what its parser takes ------------------------------------------
#
# The schemas take their bounds and patterns from the parsers' constants; these tests would catch a
# copy that drifted anyway: at every bound a schema states, the parser accepts the value on the
# bound and refuses the one past it, and a pattern agrees with the parser on values whose shape
# (length, digits, unit) decides.

build_spec()  # imports the blueprint, which declares the routes
PARAMS = [(f"{route.method} {route.path} {param.name}", param) for route in ROUTES for param in route.params]

# A character every string parser takes, to fill a value up to its schema's length.
FILL = {"name": "a", "image": "a", "alias": "a", "password": "x", "command": "x", "description": "x", "snapshot": "a"}
CUT = {"description"}  # longer text is cut to the bound, not refused
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPqBxcCMfkSpgkAAMwoC9wzTWth7oklms0labIs2wliv user@laptop"


def filled(param, length):
    if param.name == "ssh_key":
        return ED25519 + "\n" * (length - len(ED25519))  # blank lines count towards the length only
    return FILL[param.name] * length


def accepts(param, value):
    try:
        param.parse(value)
    except BadInput:
        return False
    return True


def params_with(*keys):
    chosen = [(name, param) for name, param in PARAMS if any(key in param.schema for key in keys)]
    return pytest.mark.parametrize("param", [param for _, param in chosen], ids=[name for name, _ in chosen])


@params_with("maximum", "minimum")
def test_a_number_on_its_bound_is_taken_and_one_past_it_refused(param):
    low, high = param.schema.get("minimum"), param.schema.get("maximum")
    if param.parse is int:  # a path's id: the route's converter holds the bound (past it: no route, 404)
        assert low == 1 and re.fullmatch(WholeNumberConverter.regex, str(high))
        assert not re.fullmatch(WholeNumberConverter.regex, str(high + 1))
        return
    assert param.parse(str(high)) == high and param.parse(str(low)) == low
    for past in (high + 1, low - 1):
        with pytest.raises(BadInput):
            param.parse(str(past))


@params_with("maxLength", "minLength")
def test_a_text_of_its_bound_length_is_taken_and_one_longer_refused(param):
    assert param.name in FILL or param.name == "ssh_key", f"give {param.name} a FILL character"
    high = param.schema["maxLength"]
    assert accepts(param, filled(param, high))
    if param.name in CUT:
        assert param.parse(filled(param, high + 1)) == filled(param, high)
    else:
        assert not accepts(param, filled(param, high + 1))
    if "minLength" in param.schema:
        assert accepts(param, filled(param, param.schema["minLength"]))
        assert not accepts(param, filled(param, param.schema["minLength"] - 1))


def quantity_probes(units, minimum, maximum, others):
    """Per unit in any case, the smallest count in bounds (taken); eight digits, other units (refused)."""
    probes = {}
    for key, (spelling, size) in units.items():
        count = max(1, math.ceil(minimum / size))
        assert count * size <= maximum and len(str(count)) <= quantities.QUANTITY_DIGITS
        for unit in {key, key.upper(), spelling}:
            probes[f"{count}{unit}"] = True
            probes[f"{10 ** quantities.QUANTITY_DIGITS}{unit}"] = False
    for unit in others:
        probes[f"1{unit}"] = False
    return probes


BOGUS_UNITS = ("XB", "B", "b", "bit", "PiB", "pib", "EB", "kibit", "Mbps", "kbit", "GB", "Gbit", "PB")
SIZES = quantity_probes(quantities.SIZE_UNITS, quantities.MEMORY_MIN, quantities.MEMORY_MAX,
                        [unit for unit in BOGUS_UNITS if unit.lower() not in quantities.SIZE_UNITS])
PATTERN_PROBES = {
    "name": {"a": True, "a-1": True, "a" * 63: True, "a" * 64: False, "1a": False, "a-": False, "a_b": False},
    "fingerprint": {"0" * 12: True, "f" * 64: True, "0" * 11: False, "f" * 65: False, "g" * 12: False},
    "host_port": {"1": True, "65535": True, "1-1000": True, "123456": False, "1-123456": False, "1-": False},
    "ssh_port": {"auto": True, "22": True, "65535": True, "123456": False, "autox": False},
    "q": {"a": True, "web-1": True, "a" * 63: True, "a" * 64: False, "a_b": False},
    "profile": {"a": True, "a.b_c-d": True, "a" * 63: True, "a" * 64: False, "-a": False, "a/b": False},
    "memory": SIZES,
    "disk": quantity_probes(quantities.SIZE_UNITS, quantities.DISK_MIN, quantities.DISK_MAX, []),
    "ingress": quantity_probes(quantities.RATE_UNITS, quantities.RATE_MIN, quantities.RATE_MAX,
                               [unit for unit in BOGUS_UNITS if unit.lower() not in quantities.RATE_UNITS]),
    "traffic_quota": {"0": True, "00": False, **quantity_probes(
        traffic.TRAFFIC_UNITS, traffic.TRAFFIC_MIN, traffic.TRAFFIC_MAX,
        [unit for unit in BOGUS_UNITS if unit.lower() not in traffic.TRAFFIC_UNITS])},
}
PATTERN_PROBES["snapshot"] = {"a": True, "before-1.x_y": True, "a" * 63: True, "a" * 64: False, "auto1": False,
                              "AUTO": False, "-a": False, "a/b": False, "a b": False}
PATTERN_PROBES["snapshot_keep"] = {"0": True, "7d": True, "12H": True, "1y": True, "9999M": True, "7": False,
                                   "7D": False, "7m": False, "10000d": False, "7d 1H": False}
PATTERN_PROBES["container_port"] = PATTERN_PROBES["host_port"]
PATTERN_PROBES["storage_pool"] = PATTERN_PROBES["profile"]
PATTERN_PROBES["egress"] = PATTERN_PROBES["ingress"]


@params_with("pattern")
def test_a_pattern_agrees_with_its_parser_where_the_shape_decides(param):
    assert param.name in PATTERN_PROBES, f"give {param.name} PATTERN_PROBES"
    wrong = [(value, taken) for value, taken in PATTERN_PROBES[param.name].items()
             if accepts(param, value) != taken or bool(re.search(param.schema["pattern"], value)) != taken]
    assert not wrong, wrong


@params_with("enum")
def test_an_enum_is_what_its_parser_takes(param):
    for value in param.schema["enum"]:
        assert accepts(param, value) and not accepts(param, value + "x"), value
