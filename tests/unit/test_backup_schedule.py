"""BACKUP_SCHEDULE: its forms, the due times it gives, and the config refusing anything else."""
from datetime import datetime

import pytest

from incus_api.config import SettingError, load_config
from incus_api.parse.schedule import parse_schedule


@pytest.mark.parametrize("text", ["", "off", "OFF", "none"])
def test_off(text):
    assert parse_schedule(text) is None


@pytest.mark.parametrize("text, shown", [("hourly", "hourly"), ("daily 03:00", "daily 03:00"), ("daily 3:05", "daily 03:05"),
                                         ("weekly sun 23:59", "weekly sun 23:59"), ("Weekly MON  4:00", "weekly mon 04:00")])
def test_forms(text, shown):
    assert parse_schedule(text).text == shown


@pytest.mark.parametrize("text", ["daily", "daily 24:00", "daily 3:60", "weekly 03:00", "weekly xyz 03:00", "@daily",
                                  "0 3 * * *", "daily 03:00; rm -rf /"])
def test_refused(text):
    with pytest.raises(ValueError, match="BACKUP_SCHEDULE"):
        parse_schedule(text)


def test_due_times():
    now = datetime(2026, 12, 7, 10, 30)  # a Monday
    assert parse_schedule("hourly").last_due(now) == datetime(2026, 12, 7, 10, 0)
    assert parse_schedule("daily 03:00").last_due(now) == datetime(2026, 12, 7, 3, 0)
    assert parse_schedule("daily 11:00").last_due(now) == datetime(2026, 12, 6, 11, 0)
    assert parse_schedule("daily 11:00").next_due(now) == datetime(2026, 12, 7, 11, 0)
    assert parse_schedule("weekly mon 10:30").last_due(now) == now
    assert parse_schedule("weekly mon 10:31").last_due(now) == datetime(2026, 11, 30, 10, 31)
    assert parse_schedule("weekly sun 03:00").last_due(now) == datetime(2026, 12, 6, 3, 0)


def test_the_config_refuses_a_bad_schedule_and_keep(tmp_path):
    with pytest.raises(SettingError, match="BACKUP_SCHEDULE"):
        load_config({"BACKUP_SCHEDULE": "sometimes"}, instance_path=tmp_path)
    with pytest.raises(SettingError, match="BACKUP_KEEP"):
        load_config({"BACKUP_KEEP": "0"}, instance_path=tmp_path)
    assert load_config({"BACKUP_SCHEDULE": "daily 03:00"}, instance_path=tmp_path)["BACKUP_KEEP"] == 7
