"""The container page follows the state and fits; the list searches and sorts in the browser."""
import random
import re
import subprocess
import time

from playwright.sync_api import expect

from incus_api.host.route import default_route_address
from tests.browser.conftest import screenshot

PUBLIC = "203.0.113.5"


def inside(inner, outer):
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


def add_rule(api, name, host_port, container_port=80):
    answer = api.post(f"/container/{name}/add_nat_rule",
                      data={"host_port": host_port, "container_port": container_port, "protocol": "tcp"})
    assert answer.status_code == 200, answer.get_json()


def test_container_page_buttons_follow_state_and_rules_fit(logged_in, make_container, api, app):
    page = logged_in
    page.set_viewport_size({"width": 1280, "height": 800})
    name = make_container()
    host_port = random.randint(20000, 29999)
    add_rule(api, name, host_port)
    add_rule(api, name, f"{host_port + 1}-{host_port + 9}", 8001)
    app.config["PUBLIC_HOST"] = PUBLIC
    page.goto(f"{page.base}/containers/{name}")

    tools = page.locator("[data-container-actions]")
    expect(tools.locator("[data-action=stop]")).to_be_visible()
    expect(tools.locator("[data-action=restart]")).to_be_visible()
    expect(tools.locator("[data-action=start]")).to_be_hidden()

    # each rule shows what the customer connects to: the public host:port
    card = page.locator("#nat")
    rows = card.locator("tr[data-rule-id]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("[data-public]")).to_have_text(f"{PUBLIC}:{host_port}/tcp")
    expect(rows.nth(1).locator("[data-public]")).to_have_text(f"{PUBLIC}:{host_port + 1}-{host_port + 9}/tcp")

    # at 1280 px the whole table, its last column and the Delete buttons included, is in the card
    card_box = card.bounding_box()
    for i in range(2):
        assert inside(rows.nth(i).locator("[data-delete-rule]").bounding_box(), card_box)
        assert inside(rows.nth(i).locator("td").nth(2).bounding_box(), card_box)
    wrap = card.locator(".table-wrap")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the NAT table scrolls sideways"

    # stopped: Start only; started again: Stop and Restart
    tools.locator("[data-action=stop]").click()
    expect(page.locator("#overview .badge")).to_have_text("已停止", timeout=60_000)
    expect(tools.locator("[data-action=start]")).to_be_visible()
    expect(tools.locator("[data-action=stop]")).to_be_hidden()
    expect(tools.locator("[data-action=restart]")).to_be_hidden()
    page.reload()  # the server renders the same choice
    expect(tools.locator("[data-action=start]")).to_be_visible()
    expect(tools.locator("[data-action=stop]")).to_be_hidden()
    tools.locator("[data-action=start]").click()
    expect(page.locator("#overview .badge")).to_have_text("运行中", timeout=60_000)
    expect(tools.locator("[data-action=stop]")).to_be_visible()
    expect(tools.locator("[data-action=start]")).to_be_hidden()

    # without PUBLIC_HOST: the host's default-route address
    app.config["PUBLIC_HOST"] = ""
    page.reload()
    address = default_route_address()
    assert address, "this host has no default route"
    expect(rows.nth(0).locator("[data-public]")).to_have_text(f"{address}:{host_port}/tcp")


def visible_names(page):
    return page.locator("#container-list tbody tr:visible").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-name'))")


def test_list_search_and_sort(logged_in, make_container):
    page = logged_in
    first, second = make_container(wait_for_ip=False), make_container(wait_for_ip=False)
    page.reload()
    search = page.locator("[data-list-filter]")
    rows = page.locator("#container-list tbody tr")
    expect(rows.filter(has_text=first)).to_have_count(1)

    search.fill(first[-6:])
    expect(rows.locator("visible=true")).to_have_count(1)
    assert visible_names(page) == [first]
    expect(page.locator("[data-count-shown]")).to_be_visible()
    search.fill("no-such-container-here")
    expect(page.locator("[data-filter-empty]")).to_be_visible()
    search.fill("")
    expect(page.locator("[data-filter-empty]")).to_be_hidden()

    ours = sorted([first, second])
    names = [n for n in visible_names(page) if n in ours]
    assert names == ours  # by name, as the server sends them
    page.click("#container-list button[data-sort=name]")  # already by name: now descending
    expect(page.locator("#container-list th[data-sort-key=name]")).to_have_attribute("aria-sort", "descending")
    assert [n for n in visible_names(page) if n in ours] == ours[::-1]
    # the search and the order survive the list's refresh
    search.fill("t-test-list-search")
    page.click("[data-refresh='#container-list']")
    expect(page.locator("[data-updated]")).not_to_be_empty()
    expect(page.locator("#container-list th[data-sort-key=name]")).to_have_attribute("aria-sort", "descending")
    assert visible_names(page) == ours[::-1]


def test_list_of_200_containers_stays_usable(logged_in, make_container, app, monkeypatch):
    """200 rows from the two list requests (no per-container call); search and sort stay quick."""
    page = logged_in
    name = make_container(wait_for_ip=False)
    incus = app.extensions["incus_api"].incus
    real_instances = incus.instances
    calls = {"instances": 0, "instance": 0}

    def instances():
        calls["instances"] += 1
        real = real_instances()
        template = next(i for i in real if i["name"] == name)
        calls["rows"] = len(real) + 199
        return real + [dict(template, name=f"t-many-{i:03d}", status="Stopped" if i % 3 else "Running")
                       for i in range(199)]

    def instance(*args, **kwargs):
        calls["instance"] += 1
        raise AssertionError("the list asked Incus about one container")

    monkeypatch.setattr(incus, "instances", instances)
    monkeypatch.setattr(incus, "instance", instance)
    started = time.monotonic()
    page.reload()
    expect(page.locator("#container-list tbody tr")).to_have_count(calls["rows"])
    assert time.monotonic() - started < 10
    assert (calls["instances"], calls["instance"]) == (1, 0)

    took = page.evaluate("""() => {
        const t0 = performance.now();
        const input = document.querySelector('[data-list-filter]');
        input.value = 't-many-05';
        input.dispatchEvent(new Event('input'));
        document.querySelector('#container-list button[data-sort=status]').click();
        document.querySelector('#container-list button[data-sort=ip]').click();
        return performance.now() - t0;
    }""")
    assert took < 500, f"search and two sorts took {took:.0f} ms"
    expect(page.locator("#container-list tbody tr:visible")).to_have_count(10)
    expect(page.locator("[data-count-shown]")).to_contain_text("10")
    screenshot(page, "containers-200", full_page=False)
    page.locator("[data-list-filter]").fill("")
    # the list's auto-refresh and the Refresh button: again the two requests, no per-row call
    page.click("[data-refresh='#container-list']")
    expect(page.locator("[data-updated]")).not_to_be_empty()
    assert calls["instance"] == 0


def test_suspend_unsuspend_and_reinstall_from_the_page(logged_in, make_container, busybox_image):
    page = logged_in
    name = make_container()
    page.goto(f"{page.base}/containers/{name}")
    tools = page.locator("[data-container-actions]")
    overview = page.locator("#overview")
    dialog = page.locator("#confirm-dialog")
    exec_form = page.locator("[data-exec-form]")

    def run(command):
        exec_form.locator("input[name=command]").fill(command)
        exec_form.locator("button[type=submit]").click()

    run("sh -c 'echo before > /root/marker'")
    expect(exec_form.locator("[data-exit-code]")).to_have_text("退出码 0")

    # suspend (after a confirmation): stopped, marked, and only Unsuspend offered
    tools.locator("[data-action=suspend]").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dialog-title")).to_contain_text(name)
    dialog.locator(".dialog-ok").click()
    expect(overview.locator("[data-suspended]")).to_be_visible(timeout=60_000)
    expect(overview.locator("[data-status]")).to_have_text("已停止")
    expect(tools.locator("[data-action=unsuspend]")).to_be_visible()
    for action in ("start", "stop", "restart", "suspend"):
        expect(tools.locator(f"[data-action={action}]")).to_be_hidden()
    run("true")  # the service refuses it (409) and the page says so
    expect(exec_form.locator("[data-exec-message]")).to_contain_text(name)
    expect(exec_form.locator("[data-exec-message]")).to_have_class("text-error")
    screenshot(page, "container-suspended", full_page=False)

    # the list shows the mark and offers Unsuspend instead of Start
    page.goto(page.base + "/")
    row = page.locator(f"#container-list tr[data-name='{name}']")
    expect(row.locator("[data-suspended]")).to_be_visible()
    expect(row.locator("[data-action=unsuspend]")).to_be_visible()
    expect(row.locator("[data-action=start]")).to_have_count(0)
    page.goto(f"{page.base}/containers/{name}")

    tools.locator("[data-action=unsuspend]").click()
    expect(overview.locator("[data-status]")).to_have_text("运行中", timeout=60_000)
    expect(overview.locator("[data-suspended]")).to_have_count(0)
    expect(tools.locator("[data-action=stop]")).to_be_visible()
    expect(tools.locator("[data-action=unsuspend]")).to_be_hidden()

    # reinstall from the local image: a fresh disk (the file is gone), a generated password once
    form = page.locator("[data-reinstall-form]")
    form.locator("select[name=image_choice]").select_option(busybox_image)
    form.locator("button[type=submit]").click()
    expect(dialog.locator(".dialog-title")).to_contain_text(busybox_image)
    dialog.locator(".dialog-ok").click()
    expect(form.locator("[data-result] .alert.success")).to_be_visible(timeout=120_000)
    expect(form.locator("[data-generated-password]")).to_have_text(re.compile(r"^[A-Za-z0-9_-]{16}$"))
    expect(overview.locator("[data-status]")).to_have_text("运行中")
    run("cat /root/marker")
    expect(exec_form.locator("[data-stderr]")).to_be_visible()
    expect(exec_form.locator("[data-exit-code]")).not_to_have_text("退出码 0")


def incus_config(name, key):
    return subprocess.run(["incus", "config", "get", name, key], capture_output=True, text=True, check=True).stdout.strip()


def test_create_with_a_plan_shows_the_connection_details_once(logged_in, container_name, busybox_image, app):
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    app.config["PUBLIC_HOST"] = PUBLIC
    name = container_name()
    form = page.locator("[data-create-form]")
    if not form.locator("input[name=name]").is_visible():
        page.click(".create-card > summary")
    form.locator("input[name=name]").fill(name)
    form.locator("select[name=image_choice]").select_option(busybox_image)
    form.locator("[data-plan-details] summary").click()
    plan = form.locator("[data-plan]")
    for field, value in (("cpu", "1"), ("memory", "256MiB"), ("processes", "100"), ("ssh_port", "auto"), ("ports", "3")):
        plan.locator(f"input[name={field}]").fill(value)
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.success")).to_contain_text(name, timeout=120_000)

    details = form.locator("[data-connection]")
    expect(details).to_be_visible()
    ssh = details.locator("dd").nth(0).inner_text()
    assert re.fullmatch(rf"{re.escape(PUBLIC)}:\d+", ssh), ssh
    ssh_port = int(ssh.rsplit(":", 1)[1])
    password = form.locator("[data-generated-password]").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", password)
    start, end = map(int, re.fullmatch(r"(\d+)-(\d+) \(TCP/UDP\)", details.locator("dd").nth(3).inner_text()).groups())
    assert end - start == 2
    text = details.locator("[data-connection-text]").input_value()
    assert password in text and f"ssh -p {ssh_port} root@{PUBLIC}" in text
    details.locator("[data-copy]").click()
    assert page.evaluate("navigator.clipboard.readText()") == text
    screenshot(page, "create-details", full_page=False)
    # the same service as the API: the limits are in Incus
    assert incus_config(name, "limits.memory") == "256MiB"
    assert incus_config(name, "limits.processes") == "100"
    assert incus_config(name, "limits.cpu") == "1"

    # shown once: not after a reload, not on the container's page
    page.reload()
    expect(page.locator("[data-connection]")).to_have_count(0)
    assert password not in page.content()
    page.goto(f"{page.base}/containers/{name}")
    assert password not in page.content()
    expect(page.locator("#nat")).to_contain_text(f"{PUBLIC}:{ssh_port}/tcp")

    # the limits against the usage
    limits = page.locator("#overview [data-limits]")
    expect(limits.locator("[data-limit=memory] [data-limit-value]")).to_have_text("256.0 MiB")
    expect(limits.locator("[data-limit=memory] meter")).to_have_count(1)
    expect(limits.locator("[data-limit=processes] [data-limit-value]")).to_have_text("100")
    used = int(limits.locator("[data-limit=processes] [data-used]").inner_text())
    assert 1 <= used <= 100
    expect(limits.locator("[data-limit=cpu]")).to_contain_text("1")

    # change them live through the limits form
    form = page.locator("[data-limits-form]")
    expect(form.locator("input[name=memory]")).to_have_attribute("placeholder", "256MiB")
    form.locator("button[type=submit]").click()  # nothing filled in: said so, nothing sent
    expect(form.locator("[data-result] .alert.error")).to_be_visible()
    form.locator("input[name=memory]").fill("512MiB")
    form.locator("input[name=processes]").fill("abc")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.error")).to_contain_text("processes")
    assert incus_config(name, "limits.memory") == "256MiB"  # nothing changed
    form.locator("input[name=processes]").fill("200")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.success")).to_be_visible()
    expect(limits.locator("[data-limit=memory] [data-limit-value]")).to_have_text("512.0 MiB")
    expect(limits.locator("[data-limit=processes] [data-limit-value]")).to_have_text("200")
    assert incus_config(name, "limits.memory") == "512MiB"
    expect(form.locator("input[name=memory]")).to_have_attribute("placeholder", "512MiB")
    assert incus_config(name, "limits.processes") == "200"
    expect(overview_state(page)).to_have_attribute("data-state", "Running")
    screenshot(page, "container", full_page=True)


def overview_state(page):
    return page.locator("#overview [data-state]")
