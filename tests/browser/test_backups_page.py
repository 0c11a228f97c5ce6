"""The backups page in Chromium (issue 21), against real Incus: a container backed up from its page
is shown being written, then written, on the Backups page; a restore there (after the dialog) as a
copy under a new name makes that container; a restore under its own name while it exists is
refused with the reason; a delete (after the confirmation) empties the list. A backup that fails
for real (Incus refuses to make it) is shown in red with Incus's reason. The doctor's backups check
and the Settings page's backups card name a container whose last scheduled backup failed.
Screenshots on a desktop and a phone."""
import json
import re

import pytest
from playwright.sync_api import expect

from incus_api.service.backups import INCUS_BACKUP_PREFIX
from incus_api.store import backups as backups_table
from tests.browser.conftest import SCREENSHOTS, new_context, screenshot
from tests.browser.test_customer_forwards import PHONE
from tests.conftest import incus_cli

WRITTEN = 240_000  # ms: a busybox container's export, its digest and verify


@pytest.fixture
def app_overrides(tmp_path):
    return {"BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_KEEP": 5}


def backup_row(page, name):
    return page.locator(f"#backup-list tr[data-container='{name}']")


def test_back_up_from_the_container_page_restore_as_a_copy_and_delete(app, logged_in, make_container, container_name):
    page = logged_in
    name = make_container(wait_for_ip=False)
    incus_cli("exec", name, "--", "sh", "-c", "dd if=/dev/urandom of=/root/data bs=1M count=24 2>/dev/null")

    page.goto(f"{page.base}/containers/{name}")
    card = page.locator("#backups")
    card.locator("[data-backup-now]").click()
    expect(card.locator("[data-backup-state] [data-state=running]")).to_be_visible()
    expect(card.locator("[data-backup-now]")).to_be_disabled()
    card.screenshot(path=str(SCREENSHOTS / "screenshot-backups-card.png"))

    card.locator("[data-backups-link]").click()
    page.wait_for_url(re.compile(r"/backup-files\?name="))
    row = backup_row(page, name)
    expect(row).to_have_count(1)
    # 24 MiB of random data take Incus seconds to export: the page finds it being written, and
    # polls until it is written
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "running")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "ok", timeout=WRITTEN)
    expect(row.locator("[data-stored=local]")).to_be_visible()
    expect(row).to_contain_text("MiB")
    written = app.extensions["incus_api"].services.backups.list(name)[0]
    assert written["state"] == "ok" and written["trigger"] == "dashboard" and written["size"] > 24 * 1024 * 1024

    # under its own name while the container exists: refused, with why
    row.locator("[data-restore-backup]").click()
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(page.locator("#notice")).to_have_class(re.compile(r"\berror\b"), timeout=60_000)
    expect(page.locator("#notice")).to_contain_text(name)

    copy = container_name()
    row.locator("[data-restore-backup]").click()
    dialog = page.locator("#confirm-dialog")
    dialog.locator("input[name=restore-as][value=copy]").check()
    dialog.locator("input[name=restore-name]").fill(copy)
    dialog.locator(".dialog-ok").click()
    expect(page.locator("#notice")).to_have_class(re.compile(r"\bsuccess\b"), timeout=WRITTEN)
    expect(page.locator("#notice")).to_contain_text(copy)
    assert json.loads(incus_cli("query", f"/1.0/instances/{copy}").stdout)["name"] == copy

    row.locator("[data-delete-backup]").click()
    page.locator("#confirm-dialog .dialog-ok").click()
    expect(page.locator("#backup-list [data-backups-empty]")).to_be_visible()
    assert app.extensions["incus_api"].services.backups.list(name) == []


def test_a_failed_backup_is_red_with_its_reason_and_the_schedule_failure_is_told(
        app, browser, foreign_requests, logged_in, make_container):
    page = logged_in
    services = app.extensions["incus_api"].services
    good, bad = make_container(wait_for_ip=False), make_container(wait_for_ip=False)

    page.goto(f"{page.base}/backup-files")
    form = page.locator("[data-backup-form]")
    form.locator("select[name=name]").select_option(good)
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-result] .alert.success")).to_contain_text(good)
    expect(backup_row(page, good).locator("[data-state]")).to_have_attribute("data-state", "ok", timeout=WRITTEN)

    # Incus refuses a backup whose name the instance already has: the next backup's own name,
    # taken beforehand, makes it fail for real (deterministically: ids are the table's next)
    next_id = max(backup["id"] for backup in services.backups.list()) + 1
    incus_cli("query", "-X", "POST", "--wait", f"/1.0/instances/{bad}/backups", "-d",
              json.dumps({"name": f"{INCUS_BACKUP_PREFIX}{next_id}", "instance_only": True}))
    form.locator("select[name=name]").select_option(bad)
    form.locator("button[type=submit]").click()
    row = backup_row(page, bad)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "failed", timeout=WRITTEN)
    expect(row).to_have_class(re.compile(r"\bbackup-failed\b"))
    expect(row.locator("[data-backup-error]")).not_to_be_empty()
    expect(row.locator("[data-restore-backup]")).to_have_count(0)
    assert services.backups.get(next_id)["state"] == "failed"
    color = row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert color == "rgb(253, 236, 236)", color  # --bad-bg
    screenshot(page, "backups")

    context = new_context(browser, foreign_requests, **PHONE)
    try:
        phone = context.new_page()
        phone.goto(page.base + "/login?next=/backup-files")
        phone.fill("input[name=username]", "admin")
        phone.fill("input[name=password]", "test-admin-password")
        phone.click("button[type=submit]")
        expect(backup_row(phone, bad).locator("[data-state]")).to_have_attribute("data-state", "failed")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        screenshot(phone, "backups-phone")
    finally:
        context.close()

    # the schedule's last run failed for `bad` (recorded as the schedule records it): doctor
    # and the Settings page say so
    with services.backups.db.transaction() as conn:
        scheduled = backups_table.insert(conn, bad, None, f"{bad}-scheduled.tar", "schedule")
        backups_table.fail(conn, scheduled, "No space left on device")
    check = next(check for check in services.doctor.run_checks() if check.name == "backups")
    shown = check.render()
    assert not check.ok and bad in shown["detail"] and "No space left on device" in shown["detail"]
    page.goto(f"{page.base}/settings")
    card = page.locator("#backups")
    expect(card.locator("[data-backup-failed] a.text-bad")).to_have_text(bad)
    expect(card).to_contain_text(app.config["BACKUP_DIR"])
    expect(card.locator("[data-backup-s3]")).not_to_contain_text("S3_SECRET_KEY=")
    expect(page.locator("#diagnostics li[data-check=backups]")).to_have_class(re.compile(r"\bbad\b"))
    card.screenshot(path=str(SCREENSHOTS / "screenshot-settings-backups.png"))
