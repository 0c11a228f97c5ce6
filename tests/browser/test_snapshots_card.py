"""The snapshots card in Chromium (issue 21): in the customer's panel a snapshot is taken from the
form, the plan's count is shown and the form's button is disabled at it, a restore (after the
confirmation) brings a file back; on the admin's container page the same card lists it, and a
delete there (after the confirmation) empties the list. No page error on either."""
import re
import subprocess

import requests
from playwright.sync_api import expect

from tests.browser.test_customer_forwards import open_panel
from tests.conftest import API_HEADERS, wait_for_ipv4


def in_container(name, command):
    return subprocess.run(["incus", "exec", name, "--", "sh", "-c", command], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_snapshots_from_the_customers_panel_and_the_admins_page(browser, foreign_requests, live_server, container_name,
                                                                busybox_image, logged_in):
    name = container_name()
    answer = requests.post(f"{live_server}/container/create", headers=API_HEADERS, timeout=120, data={
        "name": name, "image": busybox_image, "password": "secret-pw", "snapshots": "1"})
    assert answer.status_code == 200, answer.text
    wait_for_ipv4(name, timeout=30)
    in_container(name, "echo first > /root/mark")

    context, page = open_panel(browser, foreign_requests, live_server, name)
    try:
        card = page.locator("#snapshots")
        expect(card.locator("[data-snapshots-plan]")).to_contain_text("0 of 1")
        form = card.locator("[data-snapshot-form]")
        form.locator("input[name=snapshot]").fill("before-change")
        form.locator("button[type=submit]").click()
        expect(form.locator("[data-result]")).to_contain_text("before-change")
        expect(card.locator("[data-snapshots-rows] tr")).to_have_count(1)
        expect(card.locator("[data-snapshots-plan]")).to_contain_text("1 of 1")
        expect(form.locator("button[type=submit]")).to_be_disabled()

        in_container(name, "echo second > /root/mark")
        card.locator("button[data-restore-snapshot=before-change]").click()
        page.locator("#confirm-dialog .dialog-ok").click()
        expect(page.locator("#notice")).to_have_class(re.compile(r"\bsuccess\b"), timeout=60_000)
        assert in_container(name, "cat /root/mark") == "first"
        assert page.errors == []
    finally:
        context.close()

    admin = logged_in
    admin.goto(f"{live_server}/containers/{name}")
    card = admin.locator("#snapshots")
    expect(card.locator("[data-snapshots-rows] tr")).to_have_count(1)
    card.locator("button[data-delete-snapshot=before-change]").click()
    admin.locator("#confirm-dialog .dialog-ok").click()
    expect(card.locator("[data-snapshots-empty]")).to_be_visible()
    assert requests.get(f"{live_server}/container/{name}/snapshots", headers=API_HEADERS, timeout=10).json()["count"] == 0
