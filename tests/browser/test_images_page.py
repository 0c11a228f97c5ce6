"""The images page and the root password form in a real browser, against real Incus.

Local busybox images under temporary aliases only; the import goes to a dead loopback remote."""
import re
import warnings

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.conftest import incus_cli

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt


@pytest.fixture
def app_overrides():
    return {"IMAGE_REMOTES": "dead=https://127.0.0.1:9"}


def test_images_page_aliases_delete_and_a_failed_import(logged_in, temp_image):
    page = logged_in
    alias, fingerprint = temp_image()
    extra = f"{alias}-web"
    temp_image.aliases.append(extra)

    page.click("nav.mainnav a[href='/image-store']")
    page.wait_for_url(re.compile("/image-store$"))
    row = page.locator(f"#image-list tr[data-image='{fingerprint[:12]}']")
    expect(row).to_contain_text(alias)
    expect(row).to_contain_text("BusyBox")

    row.locator("[data-alias-form] input[name=alias]").fill(extra)
    row.locator("[data-alias-form] button[type=submit]").click()
    expect(row.locator(".chip")).to_have_count(2)
    expect(page.locator("#notice")).to_contain_text(extra)
    screenshot(page, "images")

    row.locator(f"[data-remove-alias='{extra}']").click()
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(row.locator(".chip")).to_have_count(1)
    assert extra not in incus_cli("image", "alias", "list", "-f", "csv").stdout

    form = page.locator("[data-import-form]")
    if not form.locator("input[name=image]").is_visible():
        page.click(".create-card summary")
    form.locator("input[name=image]").fill("dead:debian/12")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.error")).to_contain_text("dead:debian/12", timeout=30_000)
    expect(form.locator("[data-progress]")).to_be_hidden()

    row.locator("[data-delete-image]").click()
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(row).to_have_count(0)
    assert fingerprint[:12] not in incus_cli("image", "list", "-f", "csv").stdout


def test_delete_is_disabled_while_a_container_uses_the_image(logged_in, make_container, busybox_image):
    page = logged_in
    name = make_container(wait_for_ip=False)
    page.goto(page.base + "/image-store")
    row = page.locator("#image-list tr", has=page.locator(f".chip:has-text('{busybox_image}')"))
    expect(row.locator("[data-delete-image]")).to_be_disabled()
    expect(row).to_contain_text(name)


def test_root_password_form_on_the_container_page(logged_in, make_container):
    page = logged_in
    name = make_container(wait_for_ip=False)
    page.goto(page.base + f"/containers/{name}")
    form = page.locator("[data-password-form]")
    form.locator("input[name=password]").fill("x\ny")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.error")).to_be_visible()

    form.locator("input[name=password]").fill("Browser-pw:1")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.success")).to_contain_text(name)
    expect(form.locator("input[name=password]")).to_have_value("")
    shadow = incus_cli("exec", name, "--", "cat", "/etc/shadow").stdout
    stored = next(line.split(":")[1] for line in shadow.splitlines() if line.startswith("root:"))
    assert crypt.crypt("Browser-pw:1", stored) == stored
