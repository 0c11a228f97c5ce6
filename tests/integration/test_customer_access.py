"""A customer is only a customer (issue 19, points 1 and 3), with real containers: the link signs in
once and only for its instance, the cookie is HttpOnly, SameSite=Lax, scoped to /customer and
Secure under HTTPS; the session reaches /customer of its own container and nothing else (admin pages
send it to the admin login, API routes answer 401, no URL or field names another container); every
POST needs the CSRF token; actions are audited as customer:<container>; customer_logout and a
delete end the sessions."""
import re

from tests.conftest import API_HEADERS, incus_cli

ENGLISH = {"Accept-Language": "en"}


def link_for(api, name):
    answer = api.post(f"/container/{name}/customer_link")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["expires_in"] == 300 and re.fullmatch(r"/customer/[A-Za-z0-9_-]{43}", body["url"])
    return body["url"]


def signed_in(app, url, base_url="http://localhost"):
    """A fresh browser (test client) that opened ``url``."""
    browser = app.test_client()
    opened = browser.get(url, base_url=base_url)
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/customer"), opened.status_code
    return browser, opened


def csrf_of(browser):
    page = browser.get("/customer").get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def test_a_link_signs_in_once_with_a_scoped_cookie(app, api, make_container):
    name = make_container(wait_for_ip=False)
    url = link_for(api, name)
    browser, opened = signed_in(app, url, base_url="https://localhost")
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith("customer_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/customer" in cookie and "Secure" in cookie and "Max-Age=43200" in cookie
    assert browser.get("/customer", base_url="https://localhost").status_code == 200
    again = app.test_client().get(url, headers=ENGLISH)
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert app.test_client().get("/customer/" + "B" * 43).status_code == 403
    plain, opened = signed_in(app, link_for(api, name))  # over plain HTTP: no Secure flag
    assert "Secure" not in opened.headers["Set-Cookie"]


def test_a_customer_reaches_nothing_but_its_own_panel(app, api, make_container):
    mine, theirs = make_container(wait_for_ip=False), make_container(wait_for_ip=False)
    browser, _ = signed_in(app, link_for(api, mine))
    panel = browser.get("/customer").get_data(as_text=True)
    assert mine in panel and theirs not in panel
    for page in ("/", "/settings", f"/containers/{mine}", f"/containers/{theirs}", "/audit", "/image-store",
                 f"/container/{theirs}/console", f"/containers/{mine}/customer", "/settings/certificate.pem"):
        answer = browser.get(page)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], page
    for method, route in (("get", f"/container/{mine}/info"), ("get", "/containers"), ("get", "/nat_rules"),
                          ("post", f"/container/{theirs}/action"), ("post", f"/container/{mine}/customer_link"),
                          ("get", "/images"), ("get", "/openapi.json")):
        answer = getattr(browser, method)(route, data={"action": "stop"})
        assert answer.status_code in (401, 200 if route == "/openapi.json" else 401), route
        if route != "/openapi.json":
            assert answer.get_json()["status"] == "error"
    assert incus_cli("list", theirs, "-c", "s", "-f", "csv").stdout.strip() == "RUNNING"
    # No URL or field can name another container: the session's is the only one.
    token = csrf_of(browser)
    heading = browser.get("/customer?name=" + theirs).get_data(as_text=True).split("<h1", 1)[1].split("</h1>", 1)[0]
    assert mine in heading and theirs not in heading
    assert browser.get("/customer/" + theirs).status_code == 403  # read as a link: not one
    answer = browser.post("/customer/logout", data={"name": theirs, "csrf_token": token})
    assert answer.status_code == 302


def test_every_post_needs_the_csrf_token_and_is_audited_as_the_customer(app, api, make_container):
    name = make_container(wait_for_ip=False)
    browser, _ = signed_in(app, link_for(api, name))
    assert browser.post("/customer/logout").status_code == 400  # no token: refused, still signed in
    assert browser.get("/customer").status_code == 200
    assert browser.post("/customer/logout", data={"csrf_token": csrf_of(browser)}).status_code == 302
    entries = api.get("/audit_log?limit=50").get_json()["entries"]
    assert any(row["actor"] == f"customer:{name}" and row["action"] == "customer.logout" for row in entries), entries[:3]
    assert browser.get("/customer").status_code == 401


def test_customer_logout_and_a_delete_end_the_sessions(app, api, make_container):
    name = make_container(wait_for_ip=False)
    first, _ = signed_in(app, link_for(api, name))
    second, _ = signed_in(app, link_for(api, name))
    unopened = link_for(api, name)
    ended = api.post(f"/container/{name}/customer_logout")
    assert ended.status_code == 200 and ended.get_json()["ended"] == 2
    assert first.get("/customer").status_code == 401 and second.get("/customer").status_code == 401
    assert app.test_client().get(unopened).status_code == 403  # its links not opened yet went too
    third, _ = signed_in(app, link_for(api, name))
    assert api.post(f"/container/{name}/action", data={"action": "delete"}).status_code == 200
    assert third.get("/customer", headers=ENGLISH).status_code == 401


def test_a_link_made_for_a_container_made_again_under_its_name_opens_nothing(app, api, container_name, busybox_image):
    name = container_name()
    incus_cli("launch", busybox_image, name)
    url = link_for(api, name)
    incus_cli("delete", "-f", name)
    incus_cli("launch", busybox_image, name)
    answer = app.test_client().get(url, headers=ENGLISH)
    assert answer.status_code == 410 and "no longer exists" in answer.get_data(as_text=True)


def test_the_link_routes_need_the_api_hash(client, make_container):
    name = make_container(wait_for_ip=False)
    assert client.post(f"/container/{name}/customer_link").status_code == 401
    assert client.post(f"/container/{name}/customer_logout").status_code == 401
    assert client.post("/container/no-such-ct/customer_link", headers=API_HEADERS).status_code == 404
