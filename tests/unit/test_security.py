"""Login hardening, security headers, session cookies and the audit log (Flask test client; no
daemon needed: every request here is answered before the service reaches Incus)."""
import json
import re

import pytest

from tests.conftest import API_HEADERS

PASSWORD = "a-good-admin-password"


@pytest.fixture
def admin(app):
    app.extensions["incus_api"].services.accounts.save_user("admin", PASSWORD)


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


# -- the login limit: counted before the password is checked, per user name and address ----------

def test_fifty_parallel_wrong_logins_get_at_most_five_password_checks(app, admin, live_server, monkeypatch):
    import threading

    import requests

    from incus_api.service import accounts as auth

    checks = []
    real_check = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda *args: checks.append(1) or real_check(*args))

    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{live_server}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    cookies = session.cookies.get_dict()
    start = threading.Barrier(50)
    answers = []

    def guess(number):
        start.wait()
        response = requests.post(f"{live_server}/login", cookies=cookies, allow_redirects=False, timeout=60,
                                 data={"username": "admin", "password": f"wrong-{number}", "csrf_token": token},
                                 proxies={"http": None, "https": None})
        answers.append((response.status_code, response.headers.get("Retry-After")))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    codes = [code for code, _ in answers]
    assert len(codes) == 50
    assert len(checks) <= 5 and codes.count(401) == len(checks), (len(checks), codes)
    assert codes.count(429) == 50 - codes.count(401)
    assert all(retry.isdigit() and 1 <= int(retry) <= 60 for code, retry in answers if code == 429), answers


def wrong_login(client, username="admin", **kwargs):
    return client.post("/login", data={"username": username, "password": "wrong", "csrf_token": csrf_token(client)},
                       **kwargs)


def test_each_user_name_is_limited_separately_and_case_does_not_help(app, client, admin):
    app.extensions["incus_api"].services.accounts.save_user("other", PASSWORD)
    assert [wrong_login(client).status_code for _ in range(5)] == [401] * 5
    blocked = wrong_login(client)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many login attempts" in wrong_login(client, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert wrong_login(client, username=" ADMIN ").status_code == 429
    assert wrong_login(client, username="other").status_code == 401
    assert login(client).status_code == 429  # even the right password, while blocked


def test_a_successful_login_clears_the_count(client, admin):
    for _ in range(4):
        assert wrong_login(client).status_code == 401
    assert login(client).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/settings")})
    assert [wrong_login(client).status_code for _ in range(5)] == [401] * 5


def test_many_user_names_from_one_address_hit_the_address_limit(app, client, admin, monkeypatch):
    from incus_api.service import accounts as auth

    checks = []  # (counted without hashing: 30 real checks take seconds)
    monkeypatch.setattr(auth, "generate_password_hash", lambda password: "x")
    monkeypatch.setattr(auth, "check_password_hash", lambda *args: checks.append(1) and False)
    codes = [wrong_login(client, username=f"user{n}").status_code for n in range(40)]
    assert codes.count(401) == 30 and codes[-1] == 429 and len(checks) == 30


# -- behind a reverse proxy ------------------------------------------------------------------------

FORWARDED = {"X-Forwarded-For": "203.0.113.7"}


def audit_addresses(app):
    return [row["client_address"] for row in
            app.extensions["incus_api"].db.query("SELECT client_address FROM audit_log ORDER BY id")]


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": "127.0.0.1"}])
def test_a_trusted_proxy_gives_the_client_address_to_the_audit_log_and_the_limit(app, client, admin):
    for _ in range(5):
        assert wrong_login(client, headers=FORWARDED).status_code == 401
    assert wrong_login(client, headers=FORWARDED).status_code == 429
    # another client behind the same proxy has its own count
    assert wrong_login(client, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 401
    assert audit_addresses(app) == ["203.0.113.7"] * 6 + ["198.51.100.2"]
    # nginx appends the address it saw: the last one is the one believed (one proxy hop)
    wrong_login(client, headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.3"})
    assert audit_addresses(app)[-1] == "198.51.100.3"


def test_without_trusted_proxies_the_forwarded_headers_are_ignored(app, client, admin):
    for n in range(5):
        assert wrong_login(client, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401
    assert wrong_login(client, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 429
    assert set(audit_addresses(app)) == {"127.0.0.1"}
    assert "Strict-Transport-Security" not in client.get("/login", headers={"X-Forwarded-Proto": "https"}).headers


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}])
def test_only_the_listed_networks_are_trusted(app, client, admin):
    wrong_login(client, headers=FORWARDED)  # from 127.0.0.1: not a proxy
    wrong_login(client, headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    wrong_login(client, headers=FORWARDED, environ_base={"REMOTE_ADDR": "::ffff:192.0.2.1"})
    assert audit_addresses(app) == ["127.0.0.1", "203.0.113.7", "203.0.113.7"]


def test_a_wrong_trusted_proxies_setting_stops_the_service(tmp_path):
    from incus_api import create_app
    from incus_api.config import SettingError

    with pytest.raises(SettingError, match="TRUSTED_PROXIES"):
        create_app({"DATABASE": str(tmp_path / "db"), "SECRET_KEY": "k", "TRUSTED_PROXIES": "127.0.0.1,nginx"},
                   instance_path=tmp_path)


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": "127.0.0.1", "TLS": False}])
def test_https_at_the_proxy_gives_hsts_and_a_secure_cookie(app, admin):
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "panel.example.com"}
    page = client.get("/login", headers=https)
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", headers={**https, "Referer": "https://panel.example.com/login"},
                           data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain HTTP: none


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": "127.0.0.1"}])
def test_no_hsts_under_the_self_signed_certificate(app):
    """A browser told HSTS for a self-signed certificate could never again be told to go on."""
    page = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in page.headers and "Secure" in page.headers["Set-Cookie"]


@pytest.mark.parametrize("app_overrides", [{"SESSION_COOKIE_SECURE": True}])
def test_session_cookie_secure_setting(app, admin):
    assert "Secure" in login(app.test_client()).headers["Set-Cookie"]


def test_a_secret_from_the_config_is_not_regenerated_from_the_cli_or_the_dashboard(app, admin, runner, client):
    result = runner.invoke(args=["api-secret", "regenerate"])
    assert result.exit_code != 0 and "API_SECRET_KEY in the environment or config file" in result.output
    assert API_HEADERS["X-API-Hash"] in runner.invoke(args=["api-secret", "show"]).output
    login(client)
    page = client.post("/settings/api-secret", data={"csrf_token": csrf_token(client, "/settings")}, follow_redirects=True)
    assert "API 密钥来自环境变量或配置文件中的 API_SECRET_KEY" in page.get_data(as_text=True)
    assert client.post("/container/create", headers=API_HEADERS).status_code == 400  # the hash still works
