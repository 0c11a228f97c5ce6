"""The exec bounds without Incus: the capped output buffer and the kill of a tagged process tree
(real host processes of this test, with the container's cgroup check replaced by their session)."""
import os
import subprocess
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
