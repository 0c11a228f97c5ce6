"""The dashboard in a real browser against the real service and real Incus."""
import random
import re
import subprocess

from playwright.sync_api import expect

from incus_api.service.tls import describe, tls_files
from tests.browser.conftest import ADMIN, log_in, screenshot
from tests.conftest import API_HEADERS, wait_for_ipv4


def incus_names():
    out = subprocess.run(["incus", "list", "-f", "csv", "-c", "n"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def wait_for_row_ip(page, name, timeout_s=30):
    """Refresh the list (without reloading the page) until the row shows an IPv4 address."""
    row = page.locator(f"#container-list tr[data-name='{name}']")
    for _ in range(timeout_s * 2):
        if row.count() and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", row.locator("td.ip").inner_text().strip()):
            return row
        page.click("[data-refresh='#container-list']")
        page.wait_for_timeout(500)
    raise AssertionError(f"{name} shows no IPv4 address in the list")


def test_login_redirects_back_and_wrong_password_is_refused(page, admin):
    page.goto(page.base + "/settings")
    assert "/login?next=" in page.url
    screenshot(page, "login", full_page=False)

    log_in(page, ADMIN[0], "not-the-password", next_path="/settings")
    alert = page.locator(".alert.error")
    expect(alert).to_have_text("用户名或密码错误")
    assert "/login" in page.url
    # the same message when the user does not exist: no hint which part was wrong
    log_in(page, "nobody", "whatever", next_path="/settings")
    expect(page.locator(".alert.error")).to_have_text("用户名或密码错误")

    page.goto(page.base + "/settings")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/settings")
    expect(page.locator("h1")).to_have_text("设置")

    page.click(".logout button")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(page.base + "/")
    assert "/login" in page.url


def test_container_lifecycle(logged_in, container_name, busybox_image):
    page = logged_in
    name = container_name()
    expect(page.locator("h1")).to_have_text("容器")

    # create: name + the local image picked in the list
    form = page.locator("[data-create-form]")
    if not form.locator("input[name=name]").is_visible():
        page.click(".create-card > summary")
    form.locator("input[name=name]").fill(name)
    form.locator("select[name=image_choice]").select_option(busybox_image)
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-progress]")).to_be_visible()
    expect(form.locator("[data-result] .alert.success")).to_contain_text(name, timeout=120_000)
    # neither a password nor a key: the generated root password is shown this once
    expect(form.locator("[data-generated-password]")).to_have_text(re.compile(r"^[A-Za-z0-9_-]{16}$"))
    expect(form.locator("textarea[name=ssh_key]")).to_be_visible()
    assert name in incus_names()

    row = wait_for_row_ip(page, name)
    expect(row.locator(".badge")).to_have_text("运行中")
    ip = row.locator("td.ip").inner_text().strip()
    assert ip == wait_for_ipv4(name)
    screenshot(page, "containers", full_page=False)  # the first screen: the host may hold hundreds

    # the container's page: info, command runner, NAT rules
    row.locator("td.name a").click()
    page.wait_for_url(re.compile(f"/containers/{name}$"))
    overview = page.locator("#overview")
    expect(overview.locator(".badge")).to_have_text("运行中")
    expect(overview.locator("[data-ip]")).to_have_text(ip)
    expect(overview).to_contain_text("CPU")

    exec_form = page.locator("[data-exec-form]")
    exec_form.locator("input[name=command]").fill("ls /no-such-dir")
    exec_form.locator("button[type=submit]").click()
    expect(exec_form.locator("[data-stderr]")).to_be_visible()
    expect(exec_form.locator("[data-exit-code]")).not_to_have_text("退出码 0")
    expect(exec_form.locator("[data-exit-code]")).to_have_class(re.compile("bad"))
    exec_form.locator("input[name=command]").fill("cat /etc/hostname")
    exec_form.locator("button[type=submit]").click()
    expect(exec_form.locator("[data-stdout]")).to_have_text(name + "\n")
    expect(exec_form.locator("[data-exit-code]")).to_have_text("退出码 0")
    expect(exec_form.locator("[data-stderr]")).to_be_hidden()
    exec_form.locator("input[name=command]").fill("ps")
    exec_form.locator("button[type=submit]").click()
    expect(exec_form.locator("[data-stdout]")).to_contain_text("httpd")

    nat_form = page.locator("[data-nat-form]")
    nat_form.locator("input[name=host_port]").fill("70000")
    nat_form.locator("input[name=container_port]").fill("80")
    nat_form.locator("button[type=submit]").click()
    expect(nat_form.locator("[data-result] .alert.error")).to_contain_text("70000")

    host_port = random.randint(20000, 29999)
    nat_form.locator("input[name=host_port]").fill(str(host_port))
    nat_form.locator("button[type=submit]").click()
    expect(nat_form.locator("[data-result] .alert.success")).to_contain_text(str(host_port))
    rules = page.locator("#nat-rules")
    expect(rules.locator("tr[data-rule-id]")).to_have_count(1)
    expect(rules).to_contain_text(f"{host_port}/tcp")
    expect(rules).to_contain_text(f"{ip}:80")
    screenshot(page, "container")

    # delete the rule (after a confirmation)
    rules.locator("[data-delete-rule]").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{host_port}/tcp")
    dialog.locator(".dialog-ok").click()
    expect(rules.locator("tr[data-rule-id]")).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text("已删除")

    # delete the container: the confirmation names it and the rule that goes with it
    nat_form.locator("input[name=host_port]").fill(str(host_port))
    nat_form.locator("button[type=submit]").click()
    expect(rules.locator("tr[data-rule-id]")).to_have_count(1)
    page.click("[data-container-actions] [data-action=delete]")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dialog-title")).to_contain_text(name)
    expect(dialog.locator(".dialog-body")).to_contain_text(f"{host_port}/tcp → {ip}:80")
    dialog.locator("button[value=cancel]").click()
    expect(dialog).to_be_hidden()
    assert name in incus_names()

    page.click("[data-container-actions] [data-action=delete]")
    dialog.locator(".dialog-ok").click()
    page.wait_for_url(page.base + "/", timeout=60_000)
    expect(page.locator("#notice")).to_contain_text(name)
    expect(page.locator(f"#container-list tr[data-name='{name}']")).to_have_count(0)
    assert name not in incus_names()


def test_row_actions_stop_and_start(logged_in, make_container):
    page = logged_in
    name = make_container()
    page.reload()
    row = page.locator(f"#container-list tr[data-name='{name}']")
    expect(row.locator(".badge")).to_have_text("运行中")
    row.locator("[data-action=stop]").click()
    expect(row.locator(".badge")).to_have_text("已停止", timeout=60_000)
    row.locator("[data-action=start]").click()
    expect(row.locator(".badge")).to_have_text("运行中", timeout=60_000)


def test_session_post_without_csrf_token_is_refused(logged_in, make_container):
    page = logged_in
    name = make_container()
    path = f"{page.base}/container/{name}/exec"
    refused = page.request.post(path, form={"command": "echo hi"})
    assert refused.status == 400
    assert refused.json()["status"] == "error"
    with_hash = page.request.post(path, form={"command": "echo hi"}, headers=API_HEADERS)
    assert with_hash.status == 200 and with_hash.json()["stdout"] == "hi\n"
    token = page.locator("body").get_attribute("data-csrf")
    with_token = page.request.post(path, form={"command": "echo hi"}, headers={"X-CSRFToken": token})
    assert with_token.status == 200 and with_token.json()["stdout"] == "hi\n"
    # the dashboard's own forms need it too
    form_post = page.request.post(
        page.base + "/settings/password",
        form={"current_password": ADMIN[1], "new_password": "x" * 12, "confirm_password": "x" * 12},
        max_redirects=0,
    )
    assert form_post.status == 302
    page.goto(page.base + "/settings")
    expect(page.locator(".alert.error")).to_be_visible()
    # without a session, no token helps: the API wants the hash
    anonymous = page.context.browser.new_context()
    try:
        assert anonymous.request.post(path, form={"command": "echo hi"}).status == 401
    finally:
        anonymous.close()


def test_language_switch_is_remembered(logged_in):
    page = logged_in
    expect(page.locator(".mainnav")).to_contain_text("容器")
    page.click("a[data-lang=en]")
    expect(page.locator("h1")).to_have_text("Containers")
    page.goto(page.base + "/settings")
    expect(page.locator("h1")).to_have_text("Settings")
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("a[data-lang=zh]")
    page.wait_for_url(page.base + "/settings")
    expect(page.locator("h1")).to_have_text("设置")
    page.reload()
    expect(page.locator("h1")).to_have_text("设置")


def test_settings_password_and_api_secret(logged_in, app):
    page = logged_in
    app.config["API_SECRET_KEY"] = None  # use the secret stored in the database, which can change
    page.goto(page.base + "/settings")
    expect(page.locator("#tls")).to_contain_text("init_db.py")  # no certificate made yet: says so
    files = tls_files(app.config, app.instance_path)  # as init_db.py and the service's start make it
    page.reload()
    old_hash = page.locator("#api-hash").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", old_hash)
    expect(page.locator("#curl-create")).to_contain_text(old_hash)
    expect(page.locator("#curl-create")).to_contain_text("--cacert incus-api-web.pem")
    facts = describe(files)
    expect(page.locator("#tls-fingerprint")).to_have_value(facts["fingerprint"])
    expect(page.locator("#tls-pin")).to_have_value(facts["pin"])
    download = page.context.request.get(page.base + "/settings/certificate.pem")
    assert download.status == 200 and download.body() == open(files.cert, "rb").read()
    screenshot(page, "settings")

    page.once("dialog", lambda d: d.dismiss())
    page.click("#secret button[type=submit]")
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(page.locator(".alert.success")).to_be_visible()
    new_hash = page.locator("#api-hash").input_value()
    assert new_hash != old_hash
    context = page.context.browser.new_context()  # no session: only the header counts
    try:
        assert context.request.get(page.base + "/container/x/nat_rules", headers={"X-API-Hash": old_hash}).status == 401
        assert context.request.get(page.base + "/container/x/nat_rules", headers={"X-API-Hash": new_hash}).status == 200
    finally:
        context.close()

    password = page.locator("#password")
    password.locator("input[name=current_password]").fill("wrong-password")
    password.locator("input[name=new_password]").fill("a-new-password")
    password.locator("input[name=confirm_password]").fill("a-new-password")
    password.locator("button[type=submit]").click()
    expect(page.locator(".alert.error")).to_have_text("当前密码错误")
    password.locator("input[name=current_password]").fill(ADMIN[1])
    password.locator("input[name=new_password]").fill("a-new-password")
    password.locator("input[name=confirm_password]").fill("a-new-password")
    password.locator("button[type=submit]").click()
    expect(page.locator(".alert.success")).to_have_text("密码已修改")
    page.click(".logout button")
    log_in(page, ADMIN[0], ADMIN[1])
    expect(page.locator(".alert.error")).to_be_visible()
    log_in(page, ADMIN[0], "a-new-password")
    page.wait_for_url(page.base + "/")


def test_banner_when_incus_is_unreachable(logged_in, app, monkeypatch):
    from incus_api.exceptions import IncusUnavailable

    page = logged_in

    def down(*args, **kwargs):
        raise IncusUnavailable("Cannot reach the Incus daemon: {reason}", reason="test")

    monkeypatch.setattr(app.extensions["incus_api"].incus, "instances", down)
    page.click("[data-refresh='#container-list']")
    expect(page.locator("#container-list .banner")).to_contain_text("Incus 无法连接")
    monkeypatch.undo()
    page.click("[data-refresh='#container-list']")
    expect(page.locator("#container-list .banner")).to_have_count(0)


def test_phone_layout(browser, foreign_requests, live_server, admin, make_container):
    from tests.browser.conftest import new_context

    make_container()
    context = new_context(browser, foreign_requests, viewport={"width": 390, "height": 844},
                          device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.base = live_server
        log_in(page)
        page.wait_for_url(live_server + "/")
        row = page.locator("#container-list tbody tr").first
        expect(row).to_be_visible()
        # no horizontal scrolling on a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "phone", full_page=False)
    finally:
        context.close()
