"""The container list shows the orphaned NAT rules (their container vanished outside the service)
with a delete button, which deletes through the API with the session's CSRF token."""
import secrets

from playwright.sync_api import expect

from incus_api.store import nat_rules as rules_table
from tests.browser.conftest import screenshot


def test_orphaned_rules_are_listed_under_the_containers_and_deleted_from_there(logged_in, app):
    page = logged_in
    db = app.extensions["incus_api"].services.nat_rules.db
    port = 20000 + secrets.randbelow(10000)
    gone = f"t-gone-{secrets.token_hex(3)}"  # no such container: it was deleted behind the service's back
    with db.transaction() as conn:
        rule_id = rules_table.insert(conn, gone, port, port + 1, 80, "tcp", "10.88.0.250", "uuid-of-the-gone-one")
        rules_table.orphan(conn, [rule_id])

    page.reload()
    section = page.locator("[data-orphaned-rules]")
    row = section.locator(f"tr[data-rule-id='{rule_id}']")
    expect(row).to_contain_text(f"{port}-{port + 1}/tcp")
    expect(row).to_contain_text(gone)
    expect(row).to_contain_text("10.88.0.250:80-81")
    expect(page.locator(f"#container-list tr[data-name='{gone}']")).to_have_count(0)  # not a container row
    screenshot(page, "orphaned-rules")

    # The session alone (no CSRF token) cannot delete it.
    assert page.request.delete(f"{page.base}/container/nat_rule/{rule_id}").status == 400
    assert rules_table.get(db, rule_id) is not None

    row.locator("[data-delete-rule]").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text(f"{port}-{port + 1}/tcp")
    dialog.locator(".dialog-ok").click()
    expect(page.locator("#notice")).to_contain_text(str(rule_id))
    expect(section).to_have_count(0)  # the list refreshed: no orphan left, no section
    assert rules_table.get(db, rule_id) is None
