"""The customer panel's JSON routes in /openapi.json (issue 19): every JSON route of the customer
blueprint is declared through ``schemas.route`` and described, only its HTML pages and its console's
WebSocket are not; each takes the customer's session (and, for a change, its CSRF token) as its
security, apart from the API's X-API-Hash; what a route answers without a session or without the
token is a code it declares; and its numbers are parsed as strictly as the API's. Incus is never
reached: the app points at a socket that does not exist and the services are never called."""
import re

import pytest

from incus_api.service.customers import Customer
from incus_api.web.apidocs.spec import build_spec
from incus_api.web.customer.views import COOKIE, CUSTOMER_CSRF, CUSTOMER_SESSION
from tests.unit.test_numbers import (
    BAD_NUMBERS,
    ENGLISH,
    NONEMPTY_BAD_NUMBERS,
    assert_clear_4xx,
    numeric_parameters,
    request_for,
    required,
    variants,
)

SESSION = "customer-session-" + "z" * 20
# The customer blueprint's routes that are not JSON, hence not described.
PAGES = {
    ("/customer", "get"),  # the panel
    ("/customer/{token}", "get"),  # the one-time link that signs in, then redirects
    ("/customer/overview", "get"), ("/customer/traffic", "get"),  # the page's parts
    ("/customer/signed-out", "get"),
    ("/customer/console/ws", "get"),  # the console's WebSocket
}
SAMPLES = {"rule_id": "1", "snapshot": "snap1"}
NUMERIC = numeric_parameters(customers=True)


@pytest.fixture
def app_overrides(tmp_path):
    return {"INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


class Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the service was reached: {name}")


@pytest.fixture
def signed_in(app, client, monkeypatch):
    """``SESSION`` is web1's customer; the services behind the panel must not be reached. Answers
    the headers of the panel's script (its CSRF token, JSON, English)."""
    services = app.extensions["incus_api"].services
    signed_out = []
    monkeypatch.setattr(services.customers, "session", lambda value: Customer("web1", "uuid-1", "h") if value == SESSION else None)
    monkeypatch.setattr(services.customers, "sign_out", signed_out.append)
    monkeypatch.setattr(services, "customer_forwards", Untouchable())
    for name in ("power", "credentials", "lifecycle", "snapshots", "info"):
        monkeypatch.setattr(services, name, Untouchable())
    client.set_cookie("lang", "en")
    page = client.get("/customer/signed-out").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    client.signed_out = signed_out
    return {"X-CSRFToken": token, "Accept": "application/json", **ENGLISH}


def customer_operations():
    return [(path, method, operation) for path, operations in build_spec()["paths"].items()
            for method, operation in operations.items() if path.startswith("/customer")]


def blueprint_routes(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("customer."):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_json_route_of_the_customer_panel_is_described_and_only_its_pages_are_not(app):
    described = {(path, method) for path, method, _ in customer_operations()}
    assert len(described) >= 12
    assert described == blueprint_routes(app) - PAGES
    assert PAGES <= blueprint_routes(app)


def test_the_customer_routes_take_the_customers_session_and_a_change_its_csrf_token():
    spec = build_spec()
    schemes = spec["components"]["securitySchemes"]
    assert schemes[CUSTOMER_SESSION] == {**schemes[CUSTOMER_SESSION], "type": "apiKey", "in": "cookie", "name": COOKIE}
    assert schemes[CUSTOMER_CSRF] == {**schemes[CUSTOMER_CSRF], "type": "apiKey", "in": "header", "name": "X-CSRFToken"}
    assert spec["security"] == [{"apiHash": []}] and schemes["apiHash"]["name"] == "X-API-Hash"
    for path, method, operation in customer_operations():
        expected = {CUSTOMER_SESSION: []} if method == "get" else {CUSTOMER_SESSION: [], CUSTOMER_CSRF: []}
        assert operation["security"] == [expected], (method, path)
    for path, operations in spec["paths"].items():
        if not path.startswith("/customer"):
            assert all("security" not in operation for operation in operations.values()), path  # the API's hash


def url_of(path):
    return re.sub(r"\{(\w+)\}", lambda match: SAMPLES[match.group(1)], path)


@pytest.mark.parametrize("path, method", [(path, method) for path, method, _ in customer_operations()])
def test_without_a_session_or_a_token_the_answer_is_a_declared_json_error(client, signed_in, path, method):
    responses = build_spec()["paths"][path][method]["responses"]
    call = getattr(client, method)
    client.delete_cookie(COOKIE, path="/customer")
    answer = call(url_of(path), headers=signed_in)
    assert answer.status_code == 401 and "401" in responses, (answer.status_code, sorted(responses))
    assert answer.get_json()["status"] == "error" and "not signed in" in answer.get_json()["message"]
    if method != "get":
        client.set_cookie(COOKIE, SESSION, path="/customer")
        no_token = {key: value for key, value in signed_in.items() if key != "X-CSRFToken"}
        answer = call(url_of(path), headers=no_token)
        assert answer.status_code == 400 and "400" in responses, (answer.status_code, sorted(responses))
        assert "security token" in answer.get_json()["message"]
    assert client.signed_out == []


def test_logout_is_described_as_the_redirect_it_answers(client, signed_in):
    operation = build_spec()["paths"]["/customer/logout"]["post"]
    assert set(operation["responses"]) == {"302", "400", "401"}
    assert "/customer/signed-out" in operation["responses"]["302"]["description"]
    client.set_cookie(COOKIE, SESSION, path="/customer")
    answer = client.post("/customer/logout", headers=signed_in)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/customer/signed-out")
    assert [customer.name for customer in client.signed_out] == ["web1"]


def test_the_sweep_finds_the_customers_numbers():
    assert {("post", "/customer/forwards", "body", "host_port"), ("post", "/customer/forwards", "body", "container_port"),
            ("delete", "/customer/forwards/{rule_id}", "path", "rule_id")} <= set(NUMERIC), NUMERIC


@pytest.mark.parametrize("method, path, where, name", NUMERIC, ids=["-".join(p[1:]) for p in NUMERIC])
def test_every_customer_number_refuses_what_int_would_take(client, signed_in, method, path, where, name):
    client.set_cookie(COOKIE, SESSION, path="/customer")
    for bad in NONEMPTY_BAD_NUMBERS if where in ("path", "query") or not required(method, path, name) else BAD_NUMBERS:
        for value in variants(where, name, bad):
            method_, url, body = request_for(method, path, where, name, value)
            for as_json in (False, True) if body is not None else (False,):
                kwargs = {"json": body} if as_json else ({"data": body} if body is not None else {})
                response = getattr(client, method_)(url, headers=signed_in, **kwargs)
                assert 400 <= response.status_code < 500, (url, value, as_json, response.status_code)
                assert_clear_4xx(response, name, route_matched=where != "path")
