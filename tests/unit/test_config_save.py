"""install.sh keeps the settings it is given (config.save_settings), and refuses bad ones."""
import os
import stat

import pytest

from incus_api.config import ENV_KEYS, SAVED_KEYS, SettingError, load_config, save_settings


def test_every_documented_setting_is_saved_but_the_admin_password(tmp_path):
    path = tmp_path / "config.env"
    path.write_text("# kept\nIMAGE_REMOTES=images=https://example.invalid\nPORT=6000\n")
    environ = {"RESERVED_PORTS": "22,2222", "NAT_SYNC_INTERVAL": "15", "ISOLATE_CONTAINERS": "false",
               "PORT": "5001", "ADMIN_PASSWORD": "never-in-a-file", "UNRELATED": "x"}
    saved = save_settings(environ, path)
    assert saved == ["ISOLATE_CONTAINERS", "NAT_SYNC_INTERVAL", "PORT", "RESERVED_PORTS"]
    text = path.read_text()
    assert "never-in-a-file" not in text and "UNRELATED" not in text and "# kept" in text
    assert [line for line in text.splitlines() if line.startswith("PORT=")] == ["PORT=5001"]  # replaced
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    config = load_config(environ={"INCUS_API_CONFIG": str(path)}, instance_path=tmp_path)
    assert config["NAT_SYNC_INTERVAL"] == 15 and config["ISOLATE_CONTAINERS"] is False
    assert config["RESERVED_PORTS"] == "22,2222,5001" and config["PORT"] == 5001
    assert set(SAVED_KEYS) == set(ENV_KEYS) - {"ADMIN_PASSWORD"}


@pytest.mark.parametrize("key,value", [("NAT_SYNC_INTERVAL", "1e3"), ("PORT", "²"), ("ISOLATE_CONTAINERS", "maybe"),
                                       ("EXEC_OUTPUT_LIMIT", "9" * 30), ("HOST", "a\nb")])
def test_a_value_the_service_could_not_start_with_is_refused_and_nothing_written(tmp_path, key, value):
    path = tmp_path / "config.env"
    path.write_text("PORT=6000\n")
    with pytest.raises(SettingError):
        save_settings({key: value}, path)
    assert path.read_text() == "PORT=6000\n"
