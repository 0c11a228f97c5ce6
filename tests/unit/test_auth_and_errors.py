"""Authentication, init_db and error shapes: HTTP through the Flask test client, no daemon needed
(nothing here reaches Incus: auth and validation answer first)."""
import hashlib
import re
from pathlib import Path

import pytest

from incus_api.service.accounts import api_hash, valid_api_hash
from tests.conftest import API_HEADERS, API_SECRET

SEED_ROUTES = [
    ("post", "/container/create"),
    ("post", "/container/web1/action"),
    ("post", "/container/web1/exec"),
    ("get", "/container/web1/info"),
    ("post", "/container/web1/add_nat_rule"),
    ("get", "/container/web1/nat_rules"),
    ("delete", "/container/nat_rule/1"),
]


def test_api_hash_is_sha256_hex_of_the_secret():
    assert api_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert valid_api_hash(api_hash("abc").upper(), "abc")
    assert not valid_api_hash("", "abc")
    assert not valid_api_hash(api_hash("abd"), "abc")


@pytest.mark.parametrize("method, path", SEED_ROUTES)
def test_every_route_needs_authentication(client, method, path):
    for headers in ({}, {"X-API-Hash": "0" * 64}, {"X-API-Key-Hash": api_hash("wrong")}, {"X-API-Hash": API_SECRET}):
        response = getattr(client, method)(path, headers=headers, data={"name": "x", "image": "y"})
        assert response.status_code == 401, (path, headers)
        body = response.get_json()
        assert body["status"] == "error" and body["message"]
        assert set(body) == {"status", "message"}


def test_alias_header_is_accepted(client):
    response = client.post("/container/create", headers={"X-API-Key-Hash": API_HEADERS["X-API-Hash"]}, data={})
    assert response.status_code == 400  # authenticated; then the missing fields are reported


@pytest.mark.parametrize(
    "path, data, field",
    [
        ("/container/create", {"image": "busybox"}, "name"),
        ("/container/create", {"name": "web1"}, "image"),
        ("/container/web1/action", {}, "action"),
        ("/container/web1/exec", {}, "command"),
        ("/container/web1/add_nat_rule", {"container_port": "80", "protocol": "tcp"}, "host_port"),
    ],
)
def test_missing_fields_get_400_naming_the_field(api, path, data, field):
    response = api.post(path, data=data)
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == "error" and field in body["message"]


def test_bad_values_get_400(api):
    cases = [
        ("/container/create", {"name": "bad name", "image": "busybox"}),
        ("/container/create", {"name": "a" * 64, "image": "busybox"}),
        ("/container/web1/action", {"action": "explode"}),
        ("/container/web1/exec", {"command": "echo 'open"}),
        ("/container/web1/add_nat_rule", {"host_port": "0", "container_port": "80", "protocol": "tcp"}),
        ("/container/web1/add_nat_rule", {"host_port": "80", "container_port": "65536", "protocol": "tcp"}),
        ("/container/web1/add_nat_rule", {"host_port": "80", "container_port": "80", "protocol": "icmp"}),
        ("/container/bad_name/info", None),
    ]
    for path, data in cases:
        response = api.post(path, data=data) if data is not None else api.get(path)
        assert response.status_code == 400, path
        assert response.get_json()["status"] == "error"


def test_unknown_routes_answer_json_to_api_clients_and_html_to_browsers(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and response.get_json()["status"] == "NotFound"
    response = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    response = client.get("/container/create", headers=API_HEADERS)
    assert response.status_code == 405 and response.get_json()["status"] == "error"
    assert "POST" in response.headers["Allow"]


def test_messages_follow_the_language(api):
    english = api.post("/container/create", data={}, headers={"Accept-Language": "en"}).get_json()["message"]
    chinese = api.post("/container/create", data={}).get_json()["message"]
    assert "required" in english
    assert re.search(r"[\u4e00-\u9fff]", chinese), chinese


def test_incus_down_gives_503_json(tmp_path):
    from incus_api import create_app

    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": API_SECRET, "INCUS_SOCKET": str(tmp_path / "none.socket")}, instance_path=tmp_path)
    client = app.test_client()
    for method, path, data in [
        ("post", "/container/create", {"name": "web1", "image": "busybox"}),
        ("post", "/container/web1/action", {"action": "start"}),
        ("post", "/container/web1/exec", {"command": "true"}),
        ("get", "/container/web1/info", None),
        ("post", "/container/web1/add_nat_rule", {"host_port": "8080", "container_port": "80", "protocol": "tcp"}),
    ]:
        response = getattr(client, method)(path, data=data, headers={**API_HEADERS, "Accept-Language": "en"})
        assert response.status_code == 503, path
        body = response.get_json()
        assert body["status"] == "error" and "Incus" in body["message"]


def test_info_falls_back_to_the_database_snapshot_when_incus_is_down(tmp_path):
    from incus_api import create_app

    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": API_SECRET, "INCUS_SOCKET": str(tmp_path / "none.socket")}, instance_path=tmp_path)
    app.extensions["incus_api"].db.execute(
        "INSERT INTO containers (name, image, status, ip, created_at) VALUES ('web1', 'busybox', 'Running', '10.0.0.5', '2026-01-01T00:00:00Z')"
    )
    body = app.test_client().get("/container/web1/info", headers=API_HEADERS).get_json()
    assert body["live_data_available"] is False
    assert (body["name"], body["status"], body["ip"]) == ("web1", "Running", "10.0.0.5")
    assert body["message"]


def test_init_db_is_idempotent_and_prints_the_hash(runner, app):
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    assert API_HEADERS["X-API-Hash"] in first.output
    db = app.extensions["incus_api"].db
    accounts = app.extensions["incus_api"].services.accounts
    assert accounts.authenticate("admin", "test-admin-password") is not None
    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0
    # The self-signed certificate is made once; each run prints its fingerprint (the same one).
    fingerprint = re.search(r"^TLS SHA-256 fingerprint: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$", first.output, re.M).group(1)
    assert f"TLS SHA-256 fingerprint: {fingerprint}" in second.output
    assert (Path(app.instance_path) / "tls" / "cert.pem").is_file()
    assert db.query_one("SELECT COUNT(*) FROM users")[0] == 1
    assert accounts.authenticate("admin", "wrong") is None
    stored = db.query_one("SELECT password_hash FROM users")[0]
    assert "test-admin-password" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_init_db_generates_a_password_when_none_is_given(tmp_path):
    from incus_api import create_app

    app = create_app({"DATABASE": str(tmp_path / "db"), "ADMIN_PASSWORD": "", "ADMIN_USERNAME": ""}, instance_path=tmp_path)
    output = app.test_cli_runner().invoke(args=["init-db"]).output
    password = re.search(r"password: (\S+)", output).group(1)
    assert app.extensions["incus_api"].services.accounts.authenticate("admin", password)
    assert "password:" not in app.test_cli_runner().invoke(args=["init-db"]).output


def test_api_secret_regenerate_invalidates_the_old_hash(tmp_path):
    from incus_api import create_app

    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": ""}, instance_path=tmp_path)
    runner = app.test_cli_runner()
    old = re.search(r"X-API-Hash: (\w+)", runner.invoke(args=["api-secret", "show"]).output).group(1)
    new = re.search(r"X-API-Hash: (\w+)", runner.invoke(args=["api-secret", "regenerate"]).output).group(1)
    assert old != new
    client = app.test_client()
    assert client.post("/container/create", headers={"X-API-Hash": old}).status_code == 401
    assert client.post("/container/create", headers={"X-API-Hash": new}).status_code == 400
