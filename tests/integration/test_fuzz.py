"""Hostile input on every route of the live service: schemathesis generates requests from
/openapi.json, and hand-written cases cover what a fuzzer rarely hits. No 5xx, no traceback or
file path in any answer, every error is JSON with status and message.

The API's routes are called with the API hash. The customer panel's routes (their security is the
customer's session) are called as the panel's script calls them (``Accept: application/json``),
with no session: whatever the fuzzer puts in the session cookie and the CSRF header, a read answers
401 and a change 400 (the CSRF check comes first), each a code the route declares."""
import json
import threading

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from incus_api.web.apidocs.spec import build_spec
from tests.conftest import API_HEADERS, API_SECRET, INCUS_SOCKET, incus_cli

LEAKS = ("Traceback", "File \"", "/usr/lib/python", "site-packages", "incus_api/")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """The service on loopback, with no image remotes (nothing can be pulled from outside); one for
    the module (every case checks the answer it gets, and what the fuzzer made is deleted at the end)."""
    from werkzeug.serving import make_server

    from incus_api import create_app

    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app({"DATABASE": str(folder / "db"), "API_SECRET_KEY": API_SECRET, "INCUS_SOCKET": INCUS_SOCKET,
                      "IMAGE_REMOTES": "", "NAT_TAG_PREFIX": "incus-api-test-fuzz:"}, instance_path=folder)
    before = set(incus_cli("list", "-f", "csv", "-c", "n").stdout.split())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    # What the fuzzer made: new since the start and named in one of its requests (its service's
    # audit log). Never by age alone: the other worker's tests make containers meanwhile (a billing
    # test's vps<id> was deleted in the middle of its reinstall).
    with app.app_context():
        named = {entry["target"] for entry in app.extensions["incus_api"].services.audit_log.entries(limit=10**7)}
    for name in (set(incus_cli("list", "-f", "csv", "-c", "n").stdout.split()) - before) & named:
        incus_cli("delete", "--force", name, check=False)
    nat = app.extensions["incus_api"].nat
    for rule_id in {rule_id for rule_id, _ in nat.tagged()}:
        nat.remove_tagged(rule_id)


# The same description /openapi.json serves (a unit test checks it matches the routes); each
# generated request goes to the live server below. One test per operation, named by it (pytest-xdist
# runs tests by their ids: schemathesis' own parametrize gives every operation the same id).
schema = schemathesis.openapi.from_dict(build_spec())
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


def assert_clean_error(response):
    text = response.text
    assert response.status_code < 500, (response.request.method, response.request.url, response.status_code, text[:300])
    assert not any(leak in text for leak in LEAKS), text[:300]
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] in ("error", "NotFound") and body["message"], body


CUSTOMER_HEADERS = {"Accept": "application/json"}  # what the panel's script sends


def headers_for(operation):
    """The API hash for the API's routes; for the customer panel's, no credential of ours."""
    if operation.definition.raw.get("security") and operation.path.startswith("/customer/"):
        return CUSTOMER_HEADERS
    return API_HEADERS


def test_every_operation_is_fuzzed():
    """One generated test per path and method of the description: none is left out."""
    declared = {(method.upper(), path) for path, methods in build_spec()["paths"].items() for method in methods}
    assert {(operation.method.upper(), operation.path) for operation in OPERATIONS} == declared


def test_the_customer_routes_are_fuzzed_without_a_session():
    customer = [operation for operation in OPERATIONS if headers_for(operation) is CUSTOMER_HEADERS]
    assert len(customer) >= 12 and all(operation.path.startswith("/customer/") for operation in customer)
    assert all(headers_for(operation) is API_HEADERS for operation in OPERATIONS if operation not in customer)


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=strategies.data())
def test_generated_requests_never_break_the_service(operation, fuzz_server, data):
    case = data.draw(operation.as_strategy())
    assert_clean_error(case.call(base_url=fuzz_server, headers=headers_for(operation)))


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=strategies.data())
def test_every_answer_matches_the_description(operation, fuzz_server, data):
    """Status codes, content types and bodies of the live answers are what /openapi.json says."""
    case = data.draw(operation.as_strategy())
    response = case.call(base_url=fuzz_server, headers=headers_for(operation))
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])


def http():
    session = requests.Session()
    session.trust_env = False
    session.headers.update(API_HEADERS)
    return session


HOSTILE_NAMES = ["a/b", "..", "%2e%2e", "a b", "x" * 64, "x" * 5000, "容器", "émoji-🙂", "a\nb", "-a", "a;rm -rf /", "$(id)", "'\""]
HOSTILE_PORTS = ["0", "-1", "65536", "1e3", " 80", "80 ", "8.0", "0x50", "", "99999999999999999999", "10-5", "1-2000"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_container_names(fuzz_server, name):
    from urllib.parse import quote

    session = http()
    # Dots too: requests would resolve "/container/../nat_rules" to the host-wide "/nat_rules".
    path = quote(name, safe="").replace(".", "%2E")
    for method, url, data in [
        ("post", "/container/create", {"name": name, "image": "busybox"}),
        ("post", f"/container/{path}/action", {"action": "start"}),
        ("post", f"/container/{path}/exec", {"command": "id"}),
        ("get", f"/container/{path}/info", None),
        ("post", f"/container/{path}/add_nat_rule", {"host_port": "20000", "container_port": "80", "protocol": "tcp"}),
        ("get", f"/container/{path}/nat_rules", None),
    ]:
        response = getattr(session, method)(fuzz_server + url, data=data)
        assert_clean_error(response)
        assert 400 <= response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize("port", HOSTILE_PORTS)
def test_hostile_ports(fuzz_server, port):
    for fields in ({"host_port": port, "container_port": "80"}, {"host_port": "20000", "container_port": port}):
        response = http().post(f"{fuzz_server}/container/t-fuzz/add_nat_rule", data={**fields, "protocol": "tcp"})
        assert response.status_code == 400, (fields, response.text)
        assert_clean_error(response)


@pytest.mark.parametrize("command", ["a\x00b", "x" * 1_000_000, "'unterminated", "", "   "])
def test_hostile_commands(fuzz_server, command):
    response = http().post(f"{fuzz_server}/container/t-fuzz/exec", data={"command": command})
    assert response.status_code == 400
    assert_clean_error(response)


def test_odd_requests(fuzz_server):
    session = http()
    cases = [
        session.post(f"{fuzz_server}/container/create", data={"name": "t-x", "image": "nope", "surprise": "1"}),
        session.post(f"{fuzz_server}/container/create", data="name=t-x&image", headers={"Content-Type": "text/plain"}),
        session.post(f"{fuzz_server}/container/create", data=b"\xff\xfe\x00garbage", headers={"Content-Type": "application/json"}),
        session.post(f"{fuzz_server}/container/create", data=json.dumps(["not", "an", "object"]), headers={"Content-Type": "application/json"}),
        session.post(f"{fuzz_server}/container/create", data={"name": ["bad name", "t-second"], "image": "busybox"}),
        session.post(f"{fuzz_server}/container/create", data=b"x" * (3 * 1024 * 1024),
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
        session.put(f"{fuzz_server}/container/create"),
        session.get(f"{fuzz_server}/container/nat_rule/1"),
        session.delete(f"{fuzz_server}/container/nat_rule/-1"),
        session.delete(f"{fuzz_server}/container/nat_rule/99999999999999999999999"),
        session.get(f"{fuzz_server}/audit_log?limit=abc"),
    ]
    for response in cases:
        assert_clean_error(response)
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text[:200])
    assert cases[5].status_code == 413
