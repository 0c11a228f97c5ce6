"""The dashboard's routes with a plain HTTP client: redirects, CSRF on forms, the language cookie."""
import re

import pytest

from tests.browser.conftest import ADMIN


def csrf_token(client, path="/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, next_url="", password=ADMIN[1], token=None):
    token = token if token is not None else csrf_token(client)
    return client.post("/login", data={"username": ADMIN[0], "password": password, "csrf_token": token, "next": next_url})


@pytest.mark.parametrize("path", ["/", "/settings", "/containers/rows", "/containers/web1", "/containers/web1/nat"])
def test_anonymous_visitors_go_to_login_and_come_back(client, admin, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    back = login(client, next_url=response.location.split("next=", 1)[1].replace("%2F", "/"))
    assert back.status_code == 302 and back.location == path


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_no_open_redirect(client, admin, target):
    assert login(client, next_url=target).location == "/"
    assert client.get("/lang/en", query_string={"next": target}).location == "/"


def test_wrong_credentials_one_message(client, admin):
    wrong_password = login(client, password="nope").get_data(as_text=True)
    client2 = client.application.test_client()
    token = csrf_token(client2)
    unknown_user = client2.post("/login", data={"username": "ghost", "password": "nope", "csrf_token": token})
    assert unknown_user.status_code == 401
    for html in (wrong_password, unknown_user.get_data(as_text=True)):
        assert "用户名或密码错误" in html


def test_login_form_without_token_is_refused(client, admin):
    client.get("/login")
    response = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 302 and response.location.startswith("/login")
    assert client.get("/settings").status_code == 302  # still anonymous


def test_language_cookie(client, admin):
    response = client.get("/lang/en?next=/login")
    assert response.location == "/login"
    assert "lang=en" in response.headers["Set-Cookie"]
    assert "Log in" in client.get("/login").get_data(as_text=True)
    client.get("/lang/zh")
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_pages_have_no_inline_script_and_only_local_assets(client, admin):
    login(client)
    for path in ("/", "/settings", "/login"):
        html = client.get(path).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], path
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), path
        assert not re.search(r"<[^>]+\son[a-z]+=", html), path  # no inline event handlers
