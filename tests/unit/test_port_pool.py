"""The port pool: the first block of consecutive ports that nothing holds (pure logic and the
database query; the integration tests check it against real listeners and rules)."""
import pytest

from incus_api.config import SettingError
from incus_api.exceptions import Conflict
from incus_api.host import sockets as host_sockets
from incus_api.service.ports import (
    PortPolicy,
    PortPool,
    first_free_block,
    parse_port_pool,
)
from incus_api.store.db import Database


@pytest.mark.parametrize("count, points, ranges, expected", [
    (1, set(), [], 100),
    (3, {101}, [], 102),
    (3, {101}, [(104, 105)], 106),
    (2, set(), [(90, 100)], 101),  # a range that starts below the pool
    (3, set(), [(102, 106), (103, 104)], 107),  # nested ranges
    (2, set(), [(102, 106), (103, 104)], 100),  # a gap before them is enough
    (11, set(), [], 100),  # the whole pool
    (12, set(), [], None),  # more than the pool
    (1, set(range(100, 111)), [], None),
    (1, set(range(100, 110)), [], 110),  # the last port
    (1, {5, 500}, [(1, 50), (200, 300)], 100),  # outside the pool: no effect
])
def test_first_free_block(count, points, ranges, expected):
    assert first_free_block(100, 110, count, points, ranges) == expected


@pytest.mark.parametrize("spec, expected", [("20000-59999", (20000, 59999)), (" 1000 - 1010 ", (1000, 1010)),
                                            ("5000", (5000, 5000)), ("1-65535", (1, 65535))])
def test_parse_port_pool(spec, expected):
    assert parse_port_pool(spec) == expected


@pytest.mark.parametrize("spec", ["", "a-b", "2-1", "0-10", "1-65536", "１-5", "1e3-2e3", "-5", "5-", "1-2-3"])
def test_a_bad_port_pool_stops_the_service(spec):
    with pytest.raises(SettingError):
        parse_port_pool(spec)


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "db.sqlite3")
    database.migrate()
    return database


def add_rule(db, host_port, host_port_end, protocol):
    db.execute("INSERT INTO nat_rules (container_name, host_port, host_port_end, container_port, protocol, container_ip)"
               " VALUES ('c', ?, ?, 80, ?, '10.0.0.2')", (host_port, host_port_end, protocol))


def test_free_block_skips_rules_of_either_protocol_reserved_ports_and_listeners(db, monkeypatch):
    listening = {"tcp": {30004: object()}, "udp": {30007: object()}}
    monkeypatch.setattr(host_sockets, "listeners", lambda protocol: listening[protocol])
    pool = PortPool({"PORT_POOL": "30000-30020"}, PortPolicy({"RESERVED_PORTS": "30003"}))
    add_rule(db, 30000, 30002, "udp")
    assert pool.free_block(db.connection, 1) == (30005, 30005)
    assert pool.free_block(db.connection, 2) == (30005, 30006)
    assert pool.free_block(db.connection, 3) == (30008, 30010)
    add_rule(db, 30008, 30008, "tcp")
    assert pool.free_block(db.connection, 3) == (30009, 30011)
    with pytest.raises(Conflict) as raised:
        pool.free_block(db.connection, 13)
    assert "30000-30020" in raised.value.message and "13" in raised.value.message


def test_the_program_holding_a_socket_is_found_past_descriptors_that_close_meanwhile(tmp_path):
    """A busy process closes descriptors while they are read: one that is gone (here: not a link)
    must not hide the rest of that process's descriptors."""
    fd_dir = tmp_path / "4242" / "fd"
    fd_dir.mkdir(parents=True)
    for fd in range(10):
        (fd_dir / str(fd)).write_text("")  # readlink fails on these, as on a closed descriptor
    (fd_dir / "10").symlink_to("socket:[987654]")
    (tmp_path / "4242" / "comm").write_text("python3\n")
    assert host_sockets.program_of(987654, proc_root=str(tmp_path)) == "python3 (pid 4242)"
