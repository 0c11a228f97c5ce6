"""doctor's backups check: the decision over what the backup service says of its schedule and of
the disk of BACKUP_DIR (pure, with a fake service; the real one is checked in
tests/browser/test_backups_page.py)."""
from incus_api.service.doctor import Doctor, human_bytes

GiB = 1024 ** 3


class FakeBackups:
    def __init__(self, schedule="daily 03:00", failed=(), disk=None, s3=False, rows=()):
        self.state = {"schedule": schedule, "next": "2026-12-08T03:00:00+01:00" if schedule else None, "keep": 7,
                      "failed": list(failed), "directory": "/var/lib/incus-api-web/backups", "s3": s3}
        self._disk = disk
        self.rows = list(rows)

    def schedule_state(self):
        return self.state

    def disk(self):
        return self._disk

    def list(self, name=None):
        return [row for row in sorted(self.rows, key=lambda row: -row["id"]) if name is None or row["container"] == name]


def row(backup_id, container, trigger="schedule", state="ok", error=None, s3_state=None, s3_error=None):
    return {"id": backup_id, "container": container, "trigger": trigger, "state": state, "error": error,
            "s3_state": s3_state, "s3_error": s3_error}


def checks(backups):
    return Doctor(incus=None, nat_rules=None, nic_guard=None, backups=backups)._backup_checks()


def disk(share, free=5 * GiB, backups=3 * GiB):
    return {"used_share": share, "free_bytes": free, "backups_bytes": backups, "full": share >= 0.9}


def test_all_well_says_the_schedule_keep_next_run_and_s3():
    [check] = checks(FakeBackups(disk=disk(0.4)))
    text = check.render()["detail"]
    assert check.ok and check.name == "backups"
    assert "daily 03:00" in text and "2026-12-08 03:00" in text and "7 kept" in text and "S3_ENDPOINT is not set" in text
    [check] = checks(FakeBackups(schedule=None, s3=True))
    text = check.render()["detail"]
    assert check.ok and "BACKUP_SCHEDULE is off" in text and "copies in S3" in text


def test_a_failed_scheduled_backup_names_the_containers_and_the_latest_error():
    rows = [row(1, "web1", state="failed", error="old failure"), row(4, "web1", state="failed", error="disk full"),
            row(5, "web1", trigger="api"), row(3, "db1", s3_state="failed", s3_error="S3 refused the upload"),
            row(2, "db1", state="failed", error="older")]
    [check] = checks(FakeBackups(failed=["db1", "web1"], disk=disk(0.5), rows=rows))
    shown = check.render()
    assert not check.ok and check.name == "backups"
    assert "db1, web1" in shown["detail"] and "2 container(s)" in shown["detail"]
    assert "web1: disk full" in shown["detail"]  # the newest scheduled one, not the later backup by hand
    assert "Backups page" in shown["hint"] and "2026-12-08 03:00" in shown["hint"]


def test_a_disk_filling_up_says_how_full_what_is_free_and_what_the_backups_take():
    [check] = checks(FakeBackups(disk=disk(0.93, free=2 * GiB, backups=40 * GiB)))
    shown = check.render()
    assert not check.ok and check.name == "backup_disk"
    assert "93%" in shown["detail"] and "2.0 GiB free" in shown["detail"] and "40.0 GiB" in shown["detail"]
    assert "BACKUP_KEEP" in shown["hint"] and "S3_ENDPOINT" in shown["hint"]
    assert checks(FakeBackups(disk=disk(0.89)))[0].ok


def test_both_problems_are_told_and_no_backup_dir_yet_is_no_problem():
    found = checks(FakeBackups(failed=["web1"], disk=disk(0.95), rows=[row(1, "web1", state="failed", error="x")]))
    assert [(check.name, check.ok) for check in found] == [("backups", False), ("backup_disk", False)]
    assert checks(FakeBackups(disk=None))[0].ok


def test_human_bytes():
    assert human_bytes(0) == "0 B" and human_bytes(1536) == "1.5 KiB" and human_bytes(3 * GiB) == "3.0 GiB"
