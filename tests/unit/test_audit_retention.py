"""The audit log keeps what matters: authenticated and system entries by age, anonymous ones
(anyone can make them) only up to a cap, so a flood of 401s cannot push the real history out."""
import pytest

from incus_api.service import audit as audit_log

ANONYMOUS_KEEP = 5


@pytest.fixture
def app_overrides(tmp_path):
    return {"AUDIT_ANONYMOUS_KEEP": ANONYMOUS_KEEP, "AUDIT_KEEP_DAYS": 30,
            "INCUS_SOCKET": str(tmp_path / "no-incus.socket")}


@pytest.fixture(autouse=True)
def prune_often(monkeypatch):
    monkeypatch.setattr(audit_log, "PRUNE_EVERY", 10)


def rows(app, where="1", params=()):
    return app.extensions["incus_api"].db.query(f"SELECT * FROM audit_log WHERE {where} ORDER BY id", params)


def test_a_flood_of_anonymous_401s_does_not_push_out_an_authenticated_entry(app, api, client):
    assert api.post("/container/create", data={"name": "bad name", "image": "busybox"}).status_code == 400
    for _ in range(95):
        assert client.post("/container/create", data={"name": "x"}).status_code == 401

    authenticated = rows(app, "actor != 'anonymous'")
    assert [(row["actor"], row["action"]) for row in authenticated] == [("api", "api.create_container")]
    anonymous = rows(app, "actor = 'anonymous'")
    # the cap, plus what came after the last prune (every PRUNE_EVERY inserts)
    assert ANONYMOUS_KEEP <= len(anonymous) < ANONYMOUS_KEEP + 10
    assert anonymous[-1]["id"] == 96  # the newest are the ones kept
    assert api.get("/audit_log?limit=1000").get_json()["entries"][-1]["actor"] == "api"


def test_old_entries_are_pruned_by_age_whatever_the_actor(app, api, client):
    db = app.extensions["incus_api"].db
    api.post("/container/create", data={"name": "bad name", "image": "busybox"})
    client.post("/container/create")
    db.execute("UPDATE audit_log SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-31 days')")
    audit_log.write(db, "system", "nat.sync", target="7", details={"readdressed": "7"})  # recent, kept
    db.execute("UPDATE audit_log SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-29 days') WHERE actor = 'system'")
    while rows(app)[-1]["id"] % 10:  # up to the next prune
        api.post("/container/create", data={"name": "bad name", "image": "busybox"})

    kept = rows(app)
    assert {row["id"] for row in kept}.isdisjoint({1, 2})  # the two 31-day-old entries are gone
    assert kept[0]["actor"] == "system" and kept[0]["method"] == "-" and kept[0]["status_code"] == 0


def test_a_system_event_needs_no_request_and_shows_in_the_log(app, api):
    db = app.extensions["incus_api"].db
    entry_id = audit_log.write(db, "system", "nat.sync", target="3", details={"from": "10.0.0.5", "to": "10.0.0.6"},
                           result="warning")
    entry = api.get("/audit_log?target=3").get_json()["entries"][0]
    assert entry["id"] == entry_id
    assert (entry["actor"], entry["action"], entry["result"], entry["client_address"]) == ("system", "nat.sync", "warning", None)
    assert entry["details"] == {"from": "10.0.0.5", "to": "10.0.0.6"}
    # the same through the service the blueprints use, with the configured retention
    service = app.extensions["incus_api"].services.audit_log
    assert service.retention == audit_log.Retention(keep_days=30, anonymous_keep=ANONYMOUS_KEEP)
    service.write("system", "nat.sync", target="3")
    assert [e["target"] for e in service.entries(limit=2, target="3")] == ["3", "3"]


def test_keep_days_zero_keeps_forever_and_a_zero_cap_keeps_no_anonymous(app):
    db = app.extensions["incus_api"].db
    for actor in ("api", "anonymous", "anonymous"):
        audit_log.write(db, actor, "x", method="POST", status_code=401)
    db.execute("UPDATE audit_log SET created_at = '2001-01-01T00:00:00.000Z'")
    assert audit_log.prune(db, audit_log.Retention(keep_days=0, anonymous_keep=0)) == 2
    assert [row["actor"] for row in rows(app)] == ["api"]


def test_the_prune_queries_use_the_indexes(app):
    db = app.extensions["incus_api"].db
    by_actor = db.query("EXPLAIN QUERY PLAN SELECT id FROM audit_log WHERE actor = 'anonymous' ORDER BY id DESC LIMIT 1 OFFSET 5")
    by_time = db.query("EXPLAIN QUERY PLAN DELETE FROM audit_log WHERE created_at < '2020'")
    assert "audit_log_by_actor" in " ".join(row["detail"] for row in by_actor)
    assert "audit_log_by_time" in " ".join(row["detail"] for row in by_time)


def test_entries_only_through_the_service():
    """The blueprints do not reach the database themselves."""
    from pathlib import Path

    for module in ("api/audit.py", "dashboard/audit.py"):
        source = (Path(audit_log.__file__).parents[1] / "web" / module).read_text()
        assert ".db" not in source and "execute(" not in source, module

