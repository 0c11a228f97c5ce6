"""Every number a caller gives is parsed strictly: ASCII digits only, bounded length, in range.

The sweep is built from the OpenAPI description (every parameter that is an integer or a port
pattern), plus the dashboard's own query numbers: each gets values that ``str.isdigit`` or
``int()`` would wrongly accept, or that overflow SQLite, and must answer a clear 4xx in JSON. No
request here reaches Incus: the app points at a socket that does not exist, so a number that
slipped through validation would show as a 503, not as a change on the host.
"""
import re
from urllib.parse import quote

import pytest

from incus_api.exceptions import BadInput
from incus_api.parse.numbers import whole_number
from incus_api.web.apidocs.spec import build_spec

BAD_NUMBERS = ["²", "1e3", "9" * 30, "-0", " 5", "٣", "", "+5", "0x10", "5\n", "5.0", "１"]
NONEMPTY_BAD_NUMBERS = [value for value in BAD_NUMBERS if value]  # a path segment cannot be empty

# A valid value for every field and path parameter the sweep has to fill besides the one it breaks.
SAMPLES = {
    "name": "web1", "image": "busybox", "action": "start", "command": "true", "password": "secret-pw",
    "host_port": "8080", "container_port": "80", "protocol": "tcp", "alias": "a1", "description": "d",
    "fingerprint": "a" * 12, "rule_id": "1", "operation_id": "00000000-0000-0000-0000-000000000000",
    "limit": "10", "before_id": "5", "target": "web1",
}
# What the sweep must find in the description (a guard against the helper below missing them).
KNOWN = {
    ("post", "/container/{name}/add_nat_rule", "body", "host_port"),
    ("post", "/container/{name}/add_nat_rule", "body", "container_port"),
    ("delete", "/container/nat_rule/{rule_id}", "path", "rule_id"),
    ("get", "/audit_log", "query", "limit"),
    ("get", "/audit_log", "query", "before_id"),
}
# The dashboard's numbers that come from a query string or a form.
DASHBOARD_NUMBERS = [("/audit", "before_id")]
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def app_overrides(tmp_path):
    return {"INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


def is_numeric(schema):
    return schema.get("type") in ("integer", "number") or "[0-9]" in schema.get("pattern", "")


def numeric_parameters(customers=False):
    """The API's numbers (X-API-Hash), or the customer panel's (its session: test_customer_openapi sweeps them)."""
    found = []
    for path, operations in build_spec()["paths"].items():
        for method, operation in operations.items():
            if ("security" in operation) != customers:
                continue
            for parameter in operation.get("parameters", []):
                if is_numeric(parameter["schema"]):
                    found.append((method, path, parameter["in"], parameter["name"]))
            body = operation.get("requestBody")
            if body:
                schema = body["content"]["application/x-www-form-urlencoded"]["schema"]
                found += [(method, path, "body", field) for field, prop in schema["properties"].items() if is_numeric(prop)]
    return found


NUMERIC = numeric_parameters()


def required(method, path, field):
    """Whether the form field ``field`` is required (an optional one may be sent empty)."""
    body = build_spec()["paths"][path][method].get("requestBody")
    return body is not None and field in body["content"]["application/x-www-form-urlencoded"]["schema"].get("required", [])


def test_the_sweep_covers_the_known_numbers():
    assert KNOWN <= set(NUMERIC), set(NUMERIC)


def request_for(method, path, where, name, value):
    """``(method, url, body fields)`` with ``name`` set to ``value`` and everything else valid."""
    spec_path = build_spec()["paths"][path][method]
    url = re.sub(r"\{(\w+)\}", lambda m: quote(value if (where, m.group(1)) == ("path", name) else SAMPLES[m.group(1)], safe=""), path)
    query = {p["name"]: SAMPLES[p["name"]] for p in spec_path.get("parameters", []) if p["in"] == "query" and p.get("required")}
    if where == "query":
        query[name] = value
    if query:
        url += "?" + "&".join(f"{key}={quote(val, safe='')}" for key, val in query.items())
    body = None
    if "requestBody" in spec_path:
        schema = spec_path["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        body = {field: SAMPLES.get(field, "x") for field in schema["required"]}
        if where == "body":
            body[name] = value
    return method, url, body


def variants(where, name, value):
    """The bad value alone, and for ports also as either end of a range."""
    if where == "body" and name.endswith("_port"):
        return [value, f"8000-{value}", f"{value}-8010"]
    return [value]


NO_ROUTE = {"status": "NotFound", "message": "Not found"}


def assert_clear_4xx(response, name, route_matched=True):
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)[:200]
    if not route_matched:
        # no route: the generic answer, not the service's "rule N does not exist"
        assert (response.status_code, body) == (404, NO_ROUTE)
        return
    assert response.status_code == 400, (response.status_code, body)
    assert body["status"] == "error" and name in body["message"], body


@pytest.mark.parametrize("method, path, where, name", NUMERIC, ids=["-".join(p[1:]) for p in NUMERIC])
def test_every_api_number_refuses_what_int_would_take(api, app, method, path, where, name):
    # (an empty optional query value or form field means "not given")
    for bad in NONEMPTY_BAD_NUMBERS if where in ("path", "query") or not required(method, path, name) else BAD_NUMBERS:
        for value in variants(where, name, bad):
            method_, url, body = request_for(method, path, where, name, value)
            for as_json in (False, True) if body is not None else (False,):
                kwargs = {"json": body} if as_json else ({"data": body} if body is not None else {})
                response = getattr(api, method_)(url, headers=ENGLISH, **kwargs)
                assert 400 <= response.status_code < 500, (url, value, as_json, response.status_code, response.get_data(as_text=True)[:200])
                # A path with a bad number matches no route (404); a field or query value is a 400 naming it.
                assert_clear_4xx(response, name, route_matched=where != "path")
    assert app.extensions["incus_api"].db.query("SELECT * FROM nat_rules") == []


def test_container_port_range_with_a_bad_end(api):
    for bad in BAD_NUMBERS:
        response = api.post("/container/web1/add_nat_rule", headers=ENGLISH,
                            data={"host_port": "8000-8010", "container_port": f"80-{bad}", "protocol": "tcp"})
        assert_clear_4xx(response, "container_port")


@pytest.mark.parametrize("value", [1e3, 10**30, -0.0, 80.5, True])
def test_json_numbers_that_are_not_plain_ports(api, value):
    response = api.post("/container/web1/add_nat_rule", json={"host_port": value, "container_port": 80, "protocol": "tcp"})
    assert response.status_code == 400 and response.get_json()["status"] == "error"


def test_the_rule_id_path_takes_ascii_digits_only(api, app):
    """Werkzeug's ``<int:>`` matches ``\\d+``: ``/nat_rule/٣`` reached the service as rule 3."""
    for value in NONEMPTY_BAD_NUMBERS:
        response = api.delete(f"/container/nat_rule/{quote(value, safe='')}", headers=ENGLISH)
        assert (response.status_code, response.get_json()) == (404, NO_ROUTE), value
    # and a well-formed id still reaches the service (which says the rule does not exist)
    answer = api.delete("/container/nat_rule/3", headers=ENGLISH).get_json()
    assert answer["status"] == "NotFound" and "3" in answer["message"]


def test_audit_log_query_numbers(api):
    assert api.get("/audit_log?limit=%C2%B2").status_code == 400  # '²': was a 500
    assert api.get("/audit_log?limit=1000").status_code == 200
    assert api.get("/audit_log?limit=1001").status_code == 400
    assert api.get("/audit_log?before_id=9223372036854775807").status_code == 200
    assert api.get("/audit_log?before_id=9223372036854775808").status_code == 400
    message = api.get("/audit_log?limit=abc", headers={"Accept-Language": "en"}).get_json()["message"]
    assert "limit" in message and "1 to 1000" in message


def login(client):
    client.application.extensions["incus_api"].services.accounts.save_user("admin", "a-good-admin-password")
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": "admin", "password": "a-good-admin-password",
                                       "csrf_token": token}).status_code == 302


@pytest.mark.parametrize("path, name", DASHBOARD_NUMBERS)
def test_every_dashboard_number_refuses_what_int_would_take(client, path, name):
    login(client)
    for value in BAD_NUMBERS:
        if value == "":
            continue  # an empty before_id means "from the newest"
        response = client.get(f"{path}?{name}={quote(value, safe='')}", headers=ENGLISH)
        assert_clear_4xx(response, name)
        page = client.get(f"{path}?{name}={quote(value, safe='')}", headers={"Accept": "text/html"})
        assert page.status_code == 400 and page.mimetype == "text/html"
    assert client.get(f"{path}?{name}=5").status_code == 200


@pytest.mark.parametrize("value, expected", [("0", 0), ("7", 7), ("007", 7), ("65535", 65535)])
def test_whole_number_accepts_plain_digits(value, expected):
    assert whole_number(value, "n", 0, 65535) == expected


@pytest.mark.parametrize("value", BAD_NUMBERS + ["65536", "000065535", "9" * 5000, None])
def test_whole_number_refuses_the_rest_with_the_field_and_range(value):
    with pytest.raises(BadInput) as error:
        whole_number(value, "n", 0, 65535)
    assert "'n'" not in error.value.message and "n '" in error.value.message
    assert "0 to 65535" in error.value.message
