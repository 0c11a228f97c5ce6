"""Browser fixtures: Playwright (from PyPI) driving Debian's Chromium against ``live_server``.

Every request to a host other than the loopback is aborted and recorded; a test that caused one
fails, so no page of the dashboard may load anything from another host.
"""
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

ADMIN = ("admin", "test-admin-password")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# Any http(s) or ws(s) URL whose host is not one of LOCAL_HOSTS (data:, blob: and about: load nothing).
FOREIGN_URL = re.compile(r"^(?:https?|wss?)://(?!(?:%s)(?::\d+)?(?:[/?#]|$))" % "|".join(map(re.escape, LOCAL_HOSTS)))
# Screenshots go to the ignored tests/artifacts/ on every run; UPDATE_SCREENSHOTS=1 writes the
# ones shown in the README (docs/screenshot-*.png) instead.
SCREENSHOTS = ROOT / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") else "tests/artifacts")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium fonts-noto-cjk")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def admin(app):

    app.extensions["incus_api"].services.accounts.save_user(*ADMIN)
    return ADMIN


def new_context(browser, foreign, **options):
    # Chinese is the default language of the dashboard: browse as a Chinese user unless told.
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 860}, "locale": "zh-CN", **options})
    context.set_default_timeout(15_000)

    def refuse(route):
        foreign.append(route.request.url)
        route.abort()

    # Only requests to another host wait for this thread: Playwright's driver lets the loopback's
    # go on by itself. (Routed here, every request of a page waited for the test's thread; once in
    # CI two module scripts of the customer's panel were never fetched.)
    context.route(FOREIGN_URL, refuse)
    return context


@pytest.fixture
def foreign_requests():
    """URLs of requests to other hosts during the test (all aborted); must stay empty."""
    requests = []
    yield requests
    assert requests == [], f"the pages tried to load from other hosts: {requests}"


@pytest.fixture
def context(browser, foreign_requests):
    context = new_context(browser, foreign_requests)
    yield context
    context.close()


@pytest.fixture
def page(context, live_server):
    page = context.new_page()
    page.base = live_server
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == [], f"JavaScript errors: {errors}"


def log_in(page, username=ADMIN[0], password=ADMIN[1], next_path="/"):
    page.goto(page.base + next_path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


@pytest.fixture
def logged_in(page, admin):
    log_in(page)
    page.wait_for_url(page.base + "/")
    return page


def screenshot(page, name, full_page=True):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"screenshot-{name}.png"), full_page=full_page)
