"""The browser console (issue 14 §5), in Chromium against a busybox container: type and read the
answer, Ctrl-C, a resize that the shell sees, nothing left in the container once the page is
closed, a one-time link in a fresh browser that works once, and a cross-origin WebSocket refused."""
import re
import subprocess
import time

import pytest
import requests
import websocket

from tests.browser.conftest import ADMIN, log_in, new_context, screenshot
from tests.conftest import API_HEADERS

TEXT = ("(() => { const rows = document.querySelector('.xterm-rows');"
        " return rows ? rows.innerText.replace(/\\u00a0/g, ' ') : ''; })()")


def screen(page):
    """What the terminal shows, read from its DOM (xterm.js' DOM renderer)."""
    return page.evaluate(TEXT)


def wait_for_text(page, pattern, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = screen(page)
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not on the terminal within {timeout} s:\n{screen(page)}")


def wait_until(page, expression, timeout=15):
    """Polls ``expression`` (page.wait_for_function evaluates strings, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        time.sleep(0.1)


def run(page, command):
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def open_console(page, name):
    page.goto(f"{page.base}/container/{name}/console")
    page.wait_for_selector(".xterm-rows")
    wait_until(page, "document.querySelector('[data-console-state]').classList.contains('ok')")
    wait_for_text(page, r"# ")  # the prompt


def session_processes(name):
    """PIDs (in the container) of processes that carry the service's exec tag: the console's."""
    out = subprocess.run(["incus", "exec", name, "--", "sh", "-c",
                          "for e in /proc/[0-9]*/environ; do grep -qs INCUS_API_EXEC= $e && echo ${e%/environ}; done; true"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture
def container(make_container):
    return make_container(wait_for_ip=False)


def test_type_ctrl_c_resize_and_close(logged_in, container, app):
    page = logged_in
    page.goto(f"{page.base}/containers/{container}")
    page.click("[data-console-link]")
    page.wait_for_url(f"**/container/{container}/console")
    page.wait_for_selector(".xterm-rows")
    wait_for_text(page, r"# ")

    run(page, "echo $((6*7))")
    wait_for_text(page, r"(?m)^42\s*$")

    run(page, "sleep 100")
    time.sleep(0.5)
    page.keyboard.press("Control+C")
    run(page, "echo back-$((1+1))")
    wait_for_text(page, r"(?m)^back-2\s*$", timeout=5)  # the prompt came back well before 100 s

    run(page, "stty size")
    first = page.evaluate("[window.consoleTerminal.rows, window.consoleTerminal.cols]")
    wait_for_text(page, rf"(?m)^{first[0]} {first[1]}\s*$")
    page.set_viewport_size({"width": 900, "height": 600})
    wait_until(page, f"window.consoleTerminal.cols !== {first[1]}")
    time.sleep(0.3)  # the resize message reaches Incus
    second = page.evaluate("[window.consoleTerminal.rows, window.consoleTerminal.cols]")
    assert second != first
    run(page, "clear; stty size")
    wait_for_text(page, rf"(?m)^{second[0]} {second[1]}\s*$")

    page.set_viewport_size({"width": 1280, "height": 860})
    run(page, "clear; uname -sr; echo $((6*7)); ls /; printf '\\033[1;32mgreen\\033[0m\\n'; sleep 321 &")
    wait_for_text(page, r"(?m)^green")
    assert page.locator(".xterm-rows span.xterm-bold, .xterm-rows span[class*='xterm-fg-']").count() > 0  # colours
    screenshot(page, "console", full_page=False)
    assert len(session_processes(container)) >= 2  # the shell and its background sleep

    audit = app.extensions["incus_api"].services.audit_log
    page.goto(f"{page.base}/containers/{container}")  # leaving the page closes its WebSocket
    deadline = time.monotonic() + 10
    while session_processes(container) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(container) == []
    entries = [e for e in audit.entries(target=container) if e["action"] == "console.session"]
    assert [(e["actor"], e["result"], e["details"]["end"]) for e in entries] == [(f"admin:{ADMIN[0]}", "closed", "closed")]
    assert {"started", "ended"} <= set(entries[0]["details"])


def test_one_time_link_in_a_fresh_browser(browser, live_server, container, foreign_requests):
    answer = requests.post(f"{live_server}/container/{container}/console_token", headers=API_HEADERS, timeout=10).json()
    assert answer["status"] == "success" and answer["expires_in"] == 60 and answer["url"].startswith("/console/")

    fresh = new_context(browser, foreign_requests, locale="en-US")  # no cookies, no login
    try:
        page = fresh.new_page()
        page.goto(live_server + answer["url"])
        page.wait_for_selector(".xterm-rows")
        wait_for_text(page, r"# ")
        assert container in page.locator("h1").inner_text()
        run(page, "echo one-$((3*3))")
        wait_for_text(page, r"(?m)^one-9\s*$")

        again = fresh.new_page()
        response = again.goto(live_server + answer["url"])
        assert response.status == 410
        assert "already been used" in again.locator("[data-console-refused]").inner_text()
        assert again.locator(".xterm-rows").count() == 0
    finally:
        fresh.close()


def test_a_cross_origin_websocket_is_refused(page, admin, container):
    log_in(page)
    page.wait_for_url(page.base + "/")
    port = page.base.rsplit(":", 1)[1]
    # A page of another origin (localhost is not 127.0.0.1) tries the console's WebSocket.
    page.goto(f"http://localhost:{port}/login")
    opened = page.evaluate("""url => new Promise(resolve => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve('open');
        ws.onerror = () => resolve('refused');
        setTimeout(() => resolve('timeout'), 8000);
    })""", f"ws://127.0.0.1:{port}/container/{container}/console/ws")
    assert opened == "refused"

    # Even with the admin's session cookie, a foreign Origin is refused before the handshake;
    # this host's own Origin with the same cookie opens it.
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies(page.base))
    url = f"ws://127.0.0.1:{port}/container/{container}/console/ws"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, cookie=cookie, origin="http://evil.example", timeout=10)
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as no_session:
        websocket.create_connection(url, origin=page.base, timeout=10)
    assert no_session.value.status_code == 401
    ws = websocket.create_connection(url, cookie=cookie, origin=page.base, timeout=10)
    ws.close()
