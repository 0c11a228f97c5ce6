"""The customer's forwards in Chromium (issue 19, point 5): a container sold with a block of 3
ports, its customer signed in through a one-time link; the panel lists the block's rules and the
SSH rule with their public host:port; the customer deletes the sale's tcp range rule (after the
confirmation), points a port of the block at the container's port 80 and a client in a network
namespace reaches the container's httpd through it; a port outside the block is refused (403) and
nothing changes. Screenshots on a desktop and a phone."""
import re

import requests
from playwright.sync_api import expect

from tests.browser.conftest import new_context, screenshot
from tests.conftest import API_HEADERS, wait_for_ipv4
from tests.integration.conftest import test_host  # noqa: F401 - the namespace fixture

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# A call as the page's own module makes it: the session's cookie, the token of <body data-csrf>.
FETCH = """async ([path, fields]) => {
  const answer = await fetch(path, {method: 'POST', credentials: 'same-origin', body: new URLSearchParams(fields),
    headers: {'X-CSRFToken': document.body.dataset.csrf, 'Accept': 'application/json'}});
  return [answer.status, (await answer.json()).message];
}"""


def sell(live_server, name, image):
    answer = requests.post(f"{live_server}/container/create", headers=API_HEADERS, timeout=120, data={
        "name": name, "image": image, "ssh_port": "auto", "ports": "3"})
    assert answer.status_code == 200, answer.text
    assert wait_for_ipv4(name, timeout=30) == answer.json()["ip"]
    return answer.json()


def open_panel(browser, foreign_requests, live_server, name, **options):
    url = requests.post(f"{live_server}/container/{name}/customer_link", headers=API_HEADERS, timeout=10).json()["url"]
    context = new_context(browser, foreign_requests, **{"locale": "en-US", **options})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(live_server + url)
    page.wait_for_url(live_server + "/customer")
    return context, page


def test_the_customer_points_a_port_of_the_block_at_port_80(browser, foreign_requests, live_server, container_name,
                                                             busybox_image, app, test_host):  # noqa: F811
    app.config["PUBLIC_HOST"] = "203.0.113.7"
    name = container_name()
    sale = sell(live_server, name, busybox_image)
    block, ssh = sale["ports"], sale["ssh"]["port"]
    context, page = open_panel(browser, foreign_requests, live_server, name)
    try:
        section = page.locator("#forwards")
        rows = section.locator("[data-forwards-rows] tr")
        expect(rows).to_have_count(3)
        expect(section.locator("[data-forwards-block]")).to_contain_text(f"{block['start']}-{block['end']}")
        expect(section.locator("tr[data-kind=ssh] [data-public]")).to_have_text(f"203.0.113.7:{ssh}/tcp")
        expect(section.locator("tr[data-kind=ssh] button")).to_have_count(0)  # shown, never changed here
        tcp_range = section.locator("tr[data-kind=block]", has_text="/tcp")
        expect(tcp_range.locator("[data-public]")).to_have_text(f"203.0.113.7:{block['start']}-{block['end']}/tcp")
        # every port of the block forwards tcp already: the form offers none
        expect(section.locator("select[name=host_port]")).to_be_disabled()

        # the sale's tcp range rule goes, after the confirmation
        tcp_range.locator("button[data-delete-forward]").click()
        page.locator("#confirm-dialog .dialog-ok").click()
        expect(page.locator("#notice")).to_have_class(re.compile(r"\bsuccess\b"))
        expect(rows).to_have_count(2)

        # one port of the block to the container's httpd
        port = block["start"] + 1
        form = section.locator("[data-forward-form]")
        expect(form.locator("select[name=host_port] option")).to_have_count(3)
        form.locator("select[name=host_port]").select_option(str(port))
        form.locator("input[name=container_port]").fill("80")
        form.locator("button[type=submit]").click()
        expect(form.locator("[data-result]")).to_contain_text("now forwards to port 80")
        expect(section.locator("tr[data-kind=block] [data-public]", has_text=f":{port}/tcp")).to_have_count(1)
        assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

        # a port outside the block: refused, nothing changed
        status, message = page.evaluate(FETCH, ["/customer/forwards", {
            "host_port": str(block["end"] + 1), "container_port": "80", "protocol": "tcp"}])
        assert status == 403 and f"{block['start']}-{block['end']}" in message
        page.reload()
        expect(rows).to_have_count(3)
        screenshot(page, "customer-forwards")
        assert page.errors == []
    finally:
        context.close()

    context, phone = open_panel(browser, foreign_requests, live_server, name, **PHONE)
    try:
        expect(phone.locator("#forwards [data-forwards-rows] tr")).to_have_count(3)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        phone.locator("#forwards").scroll_into_view_if_needed()
        screenshot(phone, "customer-forwards-phone", full_page=False)
        assert phone.errors == []
    finally:
        context.close()
