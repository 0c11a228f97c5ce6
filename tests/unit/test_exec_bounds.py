"""The exec bounds without Incus: the capped output buffer and the kill of a tagged process tree
(real host processes of this test, with the container's cgroup check replaced by their session)."""
import os
import signal
import subprocess
import threading
import time

import pytest

from incus_api.incus import exec as incus_exec
from incus_api.incus.exec import CappedBuffer


def test_a_capped_buffer_keeps_the_first_bytes_and_counts_the_rest():
    buffer = CappedBuffer(10)
    for chunk in (b"abc", b"defghij", b"klm", b"", b"nop"):
        buffer.write(chunk)
    assert bytes(buffer.data) == b"abcdefghij" and buffer.dropped == 6 and buffer.truncated
    assert buffer.text() == "abcdefghij"

    exact = CappedBuffer(3)
    exact.write(b"abc")
    assert not exact.truncated and exact.text() == "abc"


def test_a_character_cut_at_the_limit_is_left_out_and_invalid_bytes_are_replaced():
    cut = CappedBuffer(4)
    cut.write("ab中".encode())  # 2 + 3 bytes: the limit falls inside 中
    assert cut.truncated and cut.text() == "ab"
    whole = CappedBuffer(100)
    whole.write(b"ok \xff\xfe")
    assert whole.text() == "ok \ufffd\ufffd"


def test_an_exec_result_is_truncated_when_either_stream_was():
    assert incus_exec.ExecResult(0, "", "", stderr_truncated=True).truncated
    assert not incus_exec.ExecResult(0, "", "").truncated


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def _session_members(sid):
    members = []
    for pid in incus_exec._pids():
        try:
            if os.getsid(pid) == sid:
                members.append(pid)
        except OSError:
            pass
    return members


@pytest.fixture
def tagged_tree(monkeypatch):
    """A process tree of this test in a session of its own: a tagged shell with a tagged child and
    a child that dropped its whole environment (env -i), so only its parentage ties it to the exec."""
    tag = "0123456789abcdef"
    script = "sleep 300 & env -i /bin/sleep 301 & sh -c 'sleep 302' & wait"
    process = subprocess.Popen(["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"], incus_exec.TAG_VARIABLE: tag},
                               start_new_session=True)
    # The container's cgroup check becomes "in the tree's session" (the test runs outside a container).
    monkeypatch.setattr(incus_exec, "_in_cgroup", lambda pid, cgroup: _sid(pid) == process.pid)
    deadline = time.monotonic() + 5
    while _sleeps(process.pid) != {b"300", b"301", b"302"} and time.monotonic() < deadline:
        time.sleep(0.02)
    yield tag, process
    if process.poll() is None:
        os.killpg(process.pid, 9)
        process.wait()


def _sleeps(sid):
    found = set()
    for pid in _session_members(sid):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        if argv[0].endswith(b"sleep"):
            found.add(argv[1])
    return found


def _sid(pid):
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_kill_tagged_kills_the_whole_tree_and_nothing_else(tagged_tree):
    tag, process = tagged_tree
    members = _session_members(process.pid)
    assert len(members) >= 4  # the shell and three sleeps (and a shell between, as sh likes)
    bystander = subprocess.Popen(["sleep", "300"], env={incus_exec.TAG_VARIABLE: "another-exec"}, start_new_session=True)
    try:
        assert incus_exec.kill_tagged("c1", "not-the-tag") == 0
        assert incus_exec.kill_tagged("c1", tag) == len(members)
        process.wait(5)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(_alive(pid) for pid in members)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_proc_files_are_read_bounded(tmp_path):
    path = tmp_path / "environ"
    path.write_bytes(b"A=1\0" * 100_000)
    assert len(incus_exec._read(path, 1000)) == 1000


# -- the kill is bounded (issue 18, point 7) ------------------------------------------------------

def _descriptors():
    return len(os.listdir("/proc/self/fd"))


def test_killing_hundreds_of_processes_holds_no_descriptor_per_process(monkeypatch):
    """400 tagged children of a shell of this test: all killed, never more than 2 descriptors
    open over the idle count meanwhile (the old kill held a pidfd per process)."""
    tag = "fedcba9876543210"
    process = subprocess.Popen(["/bin/sh", "-c", "i=0; while [ $i -lt 400 ]; do sleep 300 & i=$((i+1)); done; wait"],
                               env={"PATH": os.environ["PATH"], incus_exec.TAG_VARIABLE: tag}, start_new_session=True)
    monkeypatch.setattr(incus_exec, "_in_cgroup", lambda pid, cgroup: _sid(pid) == process.pid)
    try:
        deadline = time.monotonic() + 20
        while len(_session_members(process.pid)) < 401 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = _session_members(process.pid)
        assert len(members) >= 401
        idle, peak, done = _descriptors(), [0], threading.Event()

        def count():
            while not done.is_set():
                peak[0] = max(peak[0], _descriptors())

        counter = threading.Thread(target=count)
        counter.start()
        try:
            killed = incus_exec.kill_tagged("c1", tag)
        finally:
            done.set()
            counter.join()
        assert killed == len(members)
        assert peak[0] - idle <= 3  # the counter's own listing, a file or pidfd, the environment reader's file
        process.wait(5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()


def test_finding_the_processes_stops_at_the_budget(monkeypatch):
    """A container of 200,000 pids whose environments each take 1 ms to read: the kill gives up
    finding more after its budget and signals what it stopped."""
    monkeypatch.setattr(incus_exec, "_container_pids", lambda container: list(range(10, 200_010)))
    monkeypatch.setattr(incus_exec, "_stat", lambda pid: (1, 7))  # every parent outside the container
    stopped = []
    monkeypatch.setattr(incus_exec, "_carries", lambda pid, entry: time.sleep(0.001) or pid % 2 == 0)
    monkeypatch.setattr(incus_exec, "_signal", lambda pid, start, signum: stopped.append((pid, signum)) or True)
    started = time.monotonic()
    killed = incus_exec.kill_tagged("c1", "tag", budget=0.5)
    took = time.monotonic() - started
    assert took < 1.5, took
    stops = [pid for pid, signum in stopped if signum == signal.SIGSTOP]
    assert 0 < len(stops) < 2000 and all(pid % 2 == 0 for pid in stops)
    assert killed == len(stops) == len([pid for pid, signum in stopped if signum == signal.SIGKILL])


def test_each_round_reads_only_the_environments_of_processes_not_seen_yet(monkeypatch):
    """A child of a stopped process is the exec's without a read; a process found not to be the
    exec's is not read again in the next round (same pid, same start time)."""
    tree = {100: (1, 5), 101: (100, 6), 102: (101, 7), 200: (1, 8), 201: (200, 9)}  # pid -> (parent, start)
    rounds = [[100, 101, 200, 201], [100, 101, 102, 200, 201], [100, 101, 102, 200, 201]]
    monkeypatch.setattr(incus_exec, "_container_pids", lambda container: rounds.pop(0) if rounds else [])
    monkeypatch.setattr(incus_exec, "_stat", tree.get)
    reads = []
    monkeypatch.setattr(incus_exec, "_carries", lambda pid, entry: reads.append(pid) or pid == 100)
    signals = []
    monkeypatch.setattr(incus_exec, "_signal", lambda pid, start, signum: signals.append((pid, signum)) or True)
    assert incus_exec.kill_tagged("c1", "tag") == 3
    assert sorted(reads) == [100, 200, 201]  # 101 and 102 by parentage; 200 and 201 in the first round only
    assert [pid for pid, signum in signals if signum == signal.SIGSTOP] == [100, 101, 102]


def test_a_container_s_cgroups_are_walked_bounded(tmp_path, monkeypatch):
    base = tmp_path / "lxc.payload.c1"
    (base / ".lxc" / "inner").mkdir(parents=True)
    (base / "cgroup.procs").write_text("1\n2\n")
    (base / ".lxc" / "cgroup.procs").write_text("10\n11\n")
    (base / ".lxc" / "inner" / "cgroup.procs").write_text("20\n")
    for index in range(50):
        (base / f"extra{index}").mkdir()
        (base / f"extra{index}" / "cgroup.procs").write_text(f"{1000 + index}\n")
    monkeypatch.setattr(incus_exec, "CGROUP2_ROOTS", ("/nonexistent", str(tmp_path)))
    pids = incus_exec._container_pids("c1")
    assert sorted(pids) == sorted([1, 2, 10, 11, 20, *range(1000, 1050)])
    assert pids[-2:] == [1, 2]  # the container's own cgroup (init, its services) last
    monkeypatch.setattr(incus_exec, "MAX_CGROUPS", 10)
    assert len(incus_exec._container_pids("c1")) < 20
    monkeypatch.setattr(incus_exec, "MAX_CGROUPS", 1000)
    monkeypatch.setattr(incus_exec, "MAX_PIDS", 3)
    assert len(incus_exec._container_pids("c1")) == 3
    assert incus_exec._container_pids("c2") is None  # no such cgroup: the /proc scan instead


def test_a_cgroup_procs_read_cut_at_its_limit_leaves_the_cut_pid_out():
    assert incus_exec._pid_list(b"12\n345\n6789", 11) == [12, 345]
    assert incus_exec._pid_list(b"12\n345\n", 100) == [12, 345]


def test_an_environment_read_that_hangs_costs_a_bounded_wait_and_bounded_threads(monkeypatch):
    """The tenant's FUSE-backed environment never answers: each read waits ``timeout``, then its
    reader is left behind; after ``max_stuck`` of them nothing is read any more."""
    release = threading.Event()
    calls = []

    def read(path, limit):
        calls.append(path)
        if "/666/" in path:
            release.wait(30)
        return b"A=1\0INCUS_API_EXEC=t\0"

    monkeypatch.setattr(incus_exec, "_read", read)
    reader = incus_exec.EnvironReader(timeout=0.2, max_stuck=2)
    try:
        assert reader.read(5) == b"A=1\0INCUS_API_EXEC=t\0"
        started = time.monotonic()
        assert reader.read(666) is None
        assert time.monotonic() - started < 1
        assert reader.read(6) is not None  # a new reader answers
        assert reader.read(666) is None and reader.stuck == 2
        before = len(calls)
        assert reader.read(7) is None and len(calls) == before  # no more reads at all
    finally:
        release.set()
