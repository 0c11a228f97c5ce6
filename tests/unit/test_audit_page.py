"""The audit page's result badge says how an entry ended, whatever its HTTP status."""
import re

from incus_api.service import audit as audit_log

PASSWORD = "a-good-admin-password"


def badges(app, client):
    app.extensions["incus_api"].services.accounts.save_user("admin", PASSWORD)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    page = client.get("/audit").get_data(as_text=True)
    return {text.strip(): cls for cls, text in re.findall(r'<span class="badge (\w+)">([^<]*)</span>', page)}


def test_each_result_gets_its_badge(app, client):
    db = app.extensions["incus_api"].db
    for action, result, status in (("api.create_container", "success", 200),
                                   ("api.exec_command", "error", 200),  # the command exited non-zero
                                   ("api.container_info", "NotFound", 404),
                                   ("traffic.enforce", "error", 0),  # a system event: no HTTP status
                                   ("console.session", "open", 0),
                                   ("console.session", "closed", 0)):
        audit_log.write(db, "api", action, target=action, result=result, status_code=status)
    expected = {"success · 200": "ok", "error · 200": "bad", "NotFound · 404": "bad",
                "error": "bad", "open": "warn", "closed": "ok"}
    found = badges(app, client)
    assert {text: found.get(text) for text in expected} == expected
