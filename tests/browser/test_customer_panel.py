"""The customer's panel (issue 19, point 5) in Chromium against a container sold through the API:
a one-time link opened in a fresh browser shows the details, restarts it, resets root's password,
sets an SSH key, opens the console in the page and reinstalls it; the session reaches no other
container, no admin page and no API route; the second open of the link is refused (410); a
suspended container shows its state and nothing that changes it; customer_logout and the admin's
button end the session. Screenshots of the panel, desktop and phone.

The SSH login with the password the panel set is in tests/integration/test_customer_ssh.py: the
busybox image has no sshd, and building the Debian one takes a minute."""
import json
import re
import subprocess
import time

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import new_context, screenshot
from tests.conftest import API_HEADERS, ROOT, incus_cli, wait_for_ipv4

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ customer@laptop"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
TEXT = ("(() => { const rows = document.querySelector('.xterm-rows');"
        " return rows ? rows.innerText.replace(/\\u00a0/g, ' ') : ''; })()")


def sell(live_server, name, image):
    """A container as a billing system sells it: SSH port, a block of 4 ports, a plan, a quota."""
    answer = requests.post(f"{live_server}/container/create", headers=API_HEADERS, timeout=120, data={
        "name": name, "image": image, "ssh_port": "auto", "ports": "4", "cpu": "1", "memory": "256MiB",
        "processes": "200", "traffic_quota": "10GB", "traffic_action": "suspend"})
    assert answer.status_code == 200, answer.text
    wait_for_ipv4(name, timeout=30)
    return answer.json()


def link(live_server, name):
    answer = requests.post(f"{live_server}/container/{name}/customer_link", headers=API_HEADERS, timeout=10).json()
    assert answer["status"] == "success" and answer["url"].startswith("/customer/") and answer["expires_in"] == 300
    return live_server + answer["url"]


def root_shadow(name):
    return incus_cli("exec", name, "--", "sh", "-c", "grep '^root:' /etc/shadow").stdout.split(":")[1]


def init_pid(name):
    """The host's PID of the container's init: another one after a restart."""
    return json.loads(incus_cli("query", f"/1.0/instances/{name}/state").stdout)["pid"]


def wait_for_terminal(page, pattern, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, page.evaluate(TEXT))
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not on the terminal:\n{page.evaluate(TEXT)}")


def customer_page(browser, foreign_requests, live_server, url, **options):
    context = new_context(browser, foreign_requests, **options)
    page = context.new_page()
    page.base = live_server
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(url)
    page.wait_for_url(live_server + "/customer")
    return context, page


@pytest.fixture
def sold(live_server, container_name, busybox_image):
    name = container_name()
    return name, sell(live_server, name, busybox_image)


def test_the_customer_sees_restarts_resets_and_reinstalls_their_container(browser, foreign_requests, live_server, sold,
                                                                          app):
    name, sale = sold
    services = app.extensions["incus_api"].services
    services.traffic.sample()
    context, page = customer_page(browser, foreign_requests, live_server, link(live_server, name))
    try:
        overview = page.locator("#overview")
        expect(page.locator("h1")).to_contain_text(name)
        expect(overview.locator("[data-state]")).to_have_attribute("data-state", "Running")
        expect(overview.locator("[data-ssh]")).to_have_text(re.compile(rf":{sale['ssh']['port']}$"))
        expect(overview.locator("[data-block]")).to_have_text(
            re.compile(rf":{sale['ports']['start']}–{sale['ports']['end']}$"))
        expect(overview.locator("[data-ssh-command]")).to_have_value(re.compile(rf"^ssh -p {sale['ssh']['port']} root@"))
        expect(overview.locator("[data-ip]")).to_have_text(sale["ip"])
        expect(overview.locator("[data-limit=memory] [data-limit-value]")).to_have_text("256.0 MiB")
        expect(overview.locator("[data-limit=memory] meter")).to_have_count(1)
        expect(overview.locator("[data-limit=processes] [data-limit-value]")).to_have_text("200")
        expect(overview.locator("[data-limit=disk]")).to_be_visible()
        expect(overview.locator("[data-limit=cpu] [data-cpu-meter]")).to_be_visible(timeout=15_000)  # two samples
        expect(page.locator("#traffic [data-quota]")).to_have_text("10 GB")
        expect(page.locator("#traffic svg[data-traffic-chart] g[data-day]").first).to_be_attached()
        # nothing of the admin's: no configuration dump, no exec, no limits form, no admin navigation
        for admin_only in (".config", "[data-exec-form]", "[data-limits-form]", ".mainnav", "[data-action=delete]"):
            expect(page.locator(admin_only)).to_have_count(0)
        assert f"/containers/{name}" not in page.content() and f"/container/{name}" not in page.content()
        expect(page.locator("[data-power=start]")).to_be_hidden()

        # restart
        before = init_pid(name)
        page.click("[data-power=restart]")
        expect(page.locator("#notice")).to_be_visible(timeout=60_000)
        expect(page.locator("#notice")).to_have_class(re.compile(r"\bsuccess\b"))
        assert init_pid(name) not in (before, 0)
        expect(overview.locator("[data-state]")).to_have_attribute("data-state", "Running")

        # root's password: one typed, then one generated and shown once
        shadow = root_shadow(name)
        page.fill("[data-password-form] input[name=password]", "Typed-pass-1")
        page.click("[data-password-form] button[type=submit]")
        expect(page.locator("[data-password-form] .alert.success")).to_be_visible()
        expect(page.locator("[data-password-form] [data-generated-password]")).to_have_count(0)
        assert root_shadow(name) != shadow
        shadow = root_shadow(name)
        page.click("[data-password-form] button[type=submit]")
        generated = page.locator("[data-password-form] [data-generated-password]")
        expect(generated).to_be_visible()
        assert len(generated.input_value()) >= 16 and root_shadow(name) != shadow

        # root's SSH key
        page.fill("[data-ssh-key-form] textarea", ED25519)
        page.click("[data-ssh-key-form] button[type=submit]")
        expect(page.locator("[data-ssh-key-form] .alert.success")).to_be_visible()
        keys = incus_cli("exec", name, "--", "cat", "/root/.ssh/authorized_keys").stdout
        assert keys == ED25519 + "\n"

        # the console, in the page
        page.click("[data-console-open]")
        page.wait_for_selector(".xterm-rows")
        expect(page.locator("[data-console-state]")).to_have_class(re.compile(r"\bok\b"))
        wait_for_terminal(page, r"# ")
        page.keyboard.type("echo in-$((6*7))")
        page.keyboard.press("Enter")
        wait_for_terminal(page, r"(?m)^in-42\s*$")
        page.set_viewport_size({"width": 1280, "height": 900})
        expect(overview.locator("[data-limit=cpu] [data-cpu-meter]")).to_be_visible()
        screenshot(page, "customer")

        page.fill("[data-password-form] input[name=password]", "short")
        page.click("[data-password-form] button[type=submit]")
        expect(page.locator("[data-password-form] .alert.error")).to_be_visible()

        # reinstall from the image it was sold with (the only one offered), a new password shown once
        assert page.locator("[data-reinstall-form] select option").all_inner_texts()[0].startswith("busybox")
        page.click("[data-reinstall-form] button[type=submit]")
        expect(page.locator("#confirm-dialog")).to_be_visible()
        page.click("#confirm-dialog .dialog-ok")
        expect(page.locator("[data-reinstall-form] .alert.success")).to_be_visible(timeout=120_000)
        expect(page.locator("[data-reinstall-form] [data-generated-password]")).to_be_visible()
        assert incus_cli("exec", name, "--", "sh", "-c", "test -e /root/.ssh/authorized_keys || echo gone").stdout.strip() \
            == "gone"  # a fresh disk

        entries = [e for e in services.audit_log.entries(target=name) if e["actor"] == f"customer:{name}"]
        actions = {e["action"] for e in entries}
        assert {"customer.power", "customer.password", "customer.ssh_key", "customer.reinstall",
                "console.session"} <= actions, actions
        assert "Typed-pass-1" not in str(entries)
        assert page.errors == []
    finally:
        context.close()


def test_the_session_reaches_nothing_else_and_ends(browser, foreign_requests, live_server, sold, make_container, app):
    name, _sale = sold
    other = make_container(wait_for_ip=False)
    url = link(live_server, name)
    context, page = customer_page(browser, foreign_requests, live_server, url, locale="en-US")
    try:
        csrf = page.locator("body").get_attribute("data-csrf")
        # another container: by any admin URL, API route or form field
        for path in (f"/containers/{other}", "/", "/settings", "/audit", f"/container/{other}/console"):
            page.goto(live_server + path)
            assert "/login" in page.url, path
        for method, path in (("get", f"/container/{other}/info"), ("get", "/containers"),
                             ("post", f"/container/{other}/action"), ("post", f"/container/{name}/action"),
                             ("post", f"/container/{name}/customer_link")):
            answer = getattr(page.request, method)(live_server + path, headers={"X-CSRFToken": csrf},
                                                  **({"form": {"action": "stop"}} if method == "post" else {}))
            assert answer.status == 401, (path, answer.status)
        page.goto(live_server + "/customer")
        answer = page.request.post(live_server + "/customer/power", headers={"X-CSRFToken": csrf},
                                   form={"action": "stop", "name": other})
        assert answer.status == 200, answer.text()
        assert answer.json()["container_status"] == "Stopped"
        status = subprocess.run(["incus", "list", "-f", "csv", "-c", "ns"], capture_output=True, text=True).stdout
        assert f"{other},RUNNING" in status and f"{name},STOPPED" in status
        assert page.request.post(live_server + "/customer/power", form={"action": "start"}).status == 400  # no CSRF

        # the panel follows: start offered, the console and stop not
        page.reload()
        expect(page.locator("[data-power=start]")).to_be_visible()
        expect(page.locator("[data-power=stop]")).to_be_hidden()
        expect(page.locator("#console")).to_be_hidden()
        page.click("[data-power=start]")
        expect(page.locator("#overview [data-state]")).to_have_attribute("data-state", "Running", timeout=60_000)
        expect(page.locator("[data-power=stop]")).to_be_visible()

        # the phone
        phone, small = customer_page(browser, foreign_requests, live_server, link(live_server, name), **PHONE)
        try:
            expect(small.locator("#overview [data-state]")).to_have_attribute("data-state", "Running")
            assert small.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            screenshot(small, "customer-phone", full_page=False)
            assert small.errors == []
        finally:
            phone.close()

        # the second open of the link
        again = context.new_page()
        response = again.goto(url)
        assert response.status == 410
        expect(again.locator("[data-customer-refused]")).to_contain_text("already been used")
        again.close()

        # suspended: its state, and nothing that changes it
        assert requests.post(f"{live_server}/container/{name}/action", data={"action": "suspend"}, headers=API_HEADERS,
                             timeout=60).status_code == 200
        page.reload()
        expect(page.locator("[data-suspended-note]")).to_be_visible()
        expect(page.locator("#overview [data-suspended]")).to_be_visible()
        for control in ("[data-power=start]", "[data-power=stop]", "[data-power=restart]", "#console",
                        "[data-password-form]", "[data-ssh-key-form]", "[data-reinstall-form]"):
            expect(page.locator(control)).to_be_hidden()
        refused = page.request.post(live_server + "/customer/power", headers={"X-CSRFToken": csrf},
                                    form={"action": "start"})
        assert refused.status == 409
        assert "Stopped" in subprocess.run(["incus", "list", name, "-f", "csv", "-c", "s"], capture_output=True,
                                           text=True).stdout.title()

        # customer_logout: the next request of the panel is refused
        ended = requests.post(f"{live_server}/container/{name}/customer_logout", headers=API_HEADERS, timeout=10).json()
        assert ended["status"] == "success" and ended["ended"] == 2  # this browser and the phone
        response = page.goto(live_server + "/customer")
        assert response.status == 401
        expect(page.locator("[data-customer-refused]")).to_be_visible()
        assert page.errors == []
    finally:
        context.close()


def test_the_admin_sees_the_customer_sessions_makes_a_link_and_ends_them(browser, foreign_requests, live_server,
                                                                         logged_in, make_container):
    admin = logged_in
    name = make_container(wait_for_ip=False)
    customer, page = customer_page(browser, foreign_requests, live_server, link(live_server, name))
    try:
        admin.goto(f"{live_server}/containers/{name}")
        card = admin.locator("#customer")
        expect(card.locator("[data-customer-sessions]")).to_have_attribute("data-customer-sessions", "1")

        card.locator("[data-customer-link]").click()
        made = card.locator("[data-customer-link-url]")
        expect(made).to_have_value(re.compile(rf"^{re.escape(live_server)}/customer/[A-Za-z0-9_-]+$"))
        second, _page = customer_page(browser, foreign_requests, live_server, made.input_value())
        second.close()

        (ROOT / "tests/artifacts").mkdir(exist_ok=True)
        card.screenshot(path=str(ROOT / "tests/artifacts/customer-card.png"))  # to look at, never in docs/
        admin.reload()
        expect(card.locator("[data-customer-sessions]")).to_have_attribute("data-customer-sessions", "2")
        card.locator("[data-customer-logout]").click()
        admin.locator("#confirm-dialog .dialog-ok").click()
        expect(card.locator(".alert.success")).to_be_visible()
        expect(card.locator("[data-customer-sessions]")).to_have_attribute("data-customer-sessions", "0")
        assert page.goto(f"{live_server}/customer").status == 401
    finally:
        customer.close()
