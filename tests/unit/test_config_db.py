import os
import stat

import pytest

from incus_api.config import load_config, parse_remotes, persistent_secret
from incus_api.store import settings
from incus_api.store.db import Database, migrations


def test_defaults_match_the_seed(tmp_path):
    config = load_config(environ={}, instance_path=tmp_path)
    assert config["HOST"] == "0.0.0.0"
    assert config["PORT"] == 5000
    assert config["INCUS_SOCKET"] == "/var/lib/incus/unix.socket"
    assert config["DATABASE"] == str(tmp_path / "incus_api.sqlite3")


def test_environment_beats_config_file(tmp_path):
    (tmp_path / "config.env").write_text("PORT=6000\nAPI_SECRET_KEY='from-file'\n# comment\nUNKNOWN=x\n")
    config = load_config(environ={"PORT": "7000"}, instance_path=tmp_path)
    assert config["PORT"] == 7000
    assert config["API_SECRET_KEY"] == "from-file"
    assert "UNKNOWN" not in config


def test_config_file_from_variable(tmp_path):
    path = tmp_path / "other.env"
    path.write_text("HOST=127.0.0.1\n")
    assert load_config(environ={"INCUS_API_CONFIG": str(path)}, instance_path=tmp_path)["HOST"] == "127.0.0.1"


def test_parse_remotes():
    assert parse_remotes("images=https://a/, mirror = https://b") == {"images": "https://a", "mirror": "https://b"}


def test_persistent_secret_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "sub" / "secret_key"
    first = persistent_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert persistent_secret(path) == first


def test_migrations_are_numbered_and_idempotent(tmp_path):
    versions = [version for version, _ in migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1
    db = Database(tmp_path / "x.sqlite3")
    assert db.migrate() == versions
    assert db.schema_version == versions[-1]
    assert db.migrate() == []
    assert stat.S_IMODE(os.stat(tmp_path / "x.sqlite3").st_mode) == 0o600


def test_transaction_rolls_back_on_error(tmp_path):
    db = Database(tmp_path / "x.sqlite3")
    db.migrate()
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')")
            raise RuntimeError("second step failed")
    assert settings.get(db, "a") is None
    settings.put(db, "a", "1")
    settings.put(db, "a", "2")
    assert settings.get(db, "a") == "2"


def test_nat_rule_port_and_protocol_are_unique_in_the_schema(tmp_path):
    import sqlite3

    db = Database(tmp_path / "x.sqlite3")
    db.migrate()
    insert = "INSERT INTO nat_rules (container_name, host_port, container_port, protocol, container_ip) VALUES (?, ?, ?, ?, ?)"
    db.execute(insert, ("a", 80, 80, "tcp", "10.0.0.2"))
    db.execute(insert, ("a", 80, 80, "udp", "10.0.0.2"))
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ("b", 80, 8080, "tcp", "10.0.0.3"))
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ("b", 0, 8080, "tcp", "10.0.0.3"))
