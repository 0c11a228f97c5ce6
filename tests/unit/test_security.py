"""Login hardening, security headers, session cookies and the audit log (Flask test client; no
daemon needed: every request here is answered before the service reaches Incus)."""
import json
import re

import pytest

from incus_api.auth import create_user
from tests.conftest import API_HEADERS

PASSWORD = "a-good-admin-password"


@pytest.fixture
def admin(app):
    create_user(app.extensions["incus_api"].db, "admin", PASSWORD)


def csrf_token(client, path="/login"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def login(client, password=PASSWORD):
    return client.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf_token(client)})


def test_login_page_carries_the_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert client.get("/container/x/info").headers["X-Content-Type-Options"] == "nosniff"


def test_thirty_wrong_logins_in_a_row_get_429(client, admin):
    codes = [login(client, password=f"wrong-{i}").status_code for i in range(30)]
    assert codes[0] == 401
    assert codes.count(429) >= 25, codes
    assert codes[-1] == 429
    # while blocked, even the right password is refused: the attacker learns nothing
    assert login(client).status_code == 429


def test_successful_logins_do_not_count(client, admin):
    for _ in range(10):
        assert login(client).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/settings")})


def test_session_cookie_flags(app, admin):
    plain = app.test_client()
    cookie = login(plain).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client()
    secure.get("/login", base_url="https://localhost")
    token = re.search(r'name="csrf_token" value="([^"]+)"', secure.get("/login", base_url="https://localhost").get_data(as_text=True)).group(1)
    response = secure.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_password_change_ends_the_other_sessions(app, admin):
    first, second = app.test_client(), app.test_client()
    login(first), login(second)
    assert second.get("/settings").status_code == 200
    response = first.post("/settings/password", data={
        "current_password": PASSWORD, "new_password": "another-password", "confirm_password": "another-password",
        "csrf_token": csrf_token(first, "/settings"),
    })
    assert response.status_code == 302
    assert first.get("/settings").status_code == 200  # the session that changed it goes on
    assert second.get("/settings").status_code == 302  # the others are logged out


def test_audit_log_records_changes_without_secrets(client, api, admin):
    api.post("/container/create", data={"name": "bad name", "image": "busybox"})
    api.post("/container/web1/exec", data={"command": "echo s3cr3t-in-a-command"})
    login(client, password="wrong-password-attempt")
    api.post("/container/web1/add_nat_rule", data={"host_port": "0", "container_port": "80", "protocol": "tcp"})

    entries = api.get("/audit_log").get_json()["entries"]
    by_action = {entry["action"]: entry for entry in entries}
    create = by_action["api.create_container"]
    assert (create["actor"], create["status_code"], create["result"], create["target"]) == ("api", 400, "error", "bad name")
    assert create["details"] == {"image": "busybox"}
    assert by_action["api.exec_command"]["target"] == "web1"
    failed_login = by_action["dashboard.login"]
    assert failed_login["actor"] == "anonymous" and failed_login["status_code"] == 401
    assert failed_login["details"] == {"username": "admin"}
    assert by_action["api.add_nat_rule"]["details"] == {"host_port": "0", "container_port": "80", "protocol": "tcp"}
    assert all(entry["client_address"] == "127.0.0.1" for entry in entries)
    dump = json.dumps(entries)
    assert "s3cr3t" not in dump and "wrong-password-attempt" not in dump and API_HEADERS["X-API-Hash"] not in dump

    assert api.get("/audit_log?target=web1").get_json()["entries"][0]["target"] == "web1"
    assert api.get("/audit_log?limit=0").status_code == 400
    assert api.get("/audit_log?limit=1").get_json()["entries"][0]["id"] == entries[0]["id"]


def test_audit_page_shows_the_entries(client, api, admin):
    api.post("/container/create", data={"name": "bad name", "image": "busybox"})
    login(client)
    html = client.get("/audit").get_data(as_text=True)
    assert "api.create_container" in html and "bad name" in html


def test_secrets_never_reach_the_log(client, api, admin, caplog):
    caplog.set_level("DEBUG")
    api.post("/container/create", data={"name": "bad name", "image": "busybox", "password": "root-pw-123"})
    client.post("/container/create", headers={"X-API-Hash": "f" * 64})
    login(client, password="wrong-password-attempt")
    login(client)
    client.post("/settings/password", data={"current_password": PASSWORD, "new_password": "new-password-456",
                                            "confirm_password": "new-password-456", "csrf_token": csrf_token(client, "/settings")})
    for secret in (API_HEADERS["X-API-Hash"], "test-api-secret", "root-pw-123", "wrong-password-attempt",
                   PASSWORD, "new-password-456"):
        assert secret not in caplog.text
