"""Incus exec over its websockets, bounded: the streams, the deadline, and the kill. No Flask here.

``POST /1.0/instances/<name>/exec`` with ``wait-for-websocket`` answers an operation with four
secrets: Incus runs the command with pipes and mirrors its stdin (fd 0), stdout (1) and stderr (2)
each on a websocket of that operation, plus a control websocket, all over the daemon's unix
socket. Nothing of the output touches the host's disk (``record-output`` would write all of it
to a file under ``/var/lib/incus/containers/<name>/logs/`` first).

- **Output**: the first ``limit`` bytes of each of stdout and stderr are kept; the rest is read
  frame by frame (Incus sends at most 32 KiB a frame) and dropped, so a command that prints
  gigabytes costs the service about ``2 * limit`` bytes, and its stream is marked truncated.
- **Input**: bytes given as stdin are sent on the stdin websocket, then the end-of-stream barrier
  (an empty text message). That is how a secret reaches a command: never in its argv or
  environment, which Incus passes on the ``incusd forkexec`` command line (``/proc/<pid>/cmdline``).
- **Deadline**: past it, ``kill_tagged`` SIGKILLs every process of the command inside the
  container. Each exec carries ``INCUS_API_EXEC=<random id>`` in its environment (not a secret:
  it only names the exec); the kill finds, among the container's processes, the ones that carry
  that id or descend from one that does, stops them (so they cannot fork any more), then kills
  them. Closing the control websocket makes Incus SIGKILL the command's first process as well.

The kill is bounded whatever the container holds (a tenant can fork thousands of processes
that carry the id, or copy it into any process's environment):

- **What is looked at**: the pids in ``cgroup.procs`` of the container's cgroup and the cgroups
  below it (cgroup v2, at most ``MAX_CGROUPS`` of them and ``MAX_PIDS`` pids, each file read
  bounded), never the host's whole ``/proc``; a host without the container's cgroup v2 falls back
  to ``/proc`` and each process's cgroup.
- **Descriptors**: one file or one pidfd open at a time, plus one in the environment reader. A
  process is known by its pid and start time (``/proc/<pid>/stat``); each signal opens a pidfd,
  checks that the pid still is that process, signals through it and closes it, so a reused pid is
  never hit and nothing is held per process (holding a pidfd per stopped process let a tenant
  run the service out of descriptors).
- **Time**: finding and stopping takes at most ``KILL_SECONDS``; what was stopped by then is
  killed (one signal each, cheaper than finding it). Per round, a process already found not to
  be the exec's costs one ``stat`` read, and only a process whose parent is not the exec's has
  its environment read, in ``EnvironReader``'s thread and for at most ``ENVIRON_SECONDS`` (the
  environment is in the process's memory, which its owner can make a read of hang). The scan
  gives the other threads their turn every ``YIELD_EVERY`` processes.

Why not a cgroup of its own per exec and ``cgroup.kill``: Incus attaches every exec to the same
``.lxc`` cgroup of the container and starts the command before the service could move it, so
whatever it forked first would still need this scan; and root in the container can move its
processes between its cgroups anyway.

A root user in the container can still detach a process on purpose (a new environment and a
double fork, or a SIGCONT from elsewhere to a stopped one); that is no more than they can do
from their own shell. What the service promises is that no command it started outlives its
deadline by accident, and that ending one costs the service a bounded time and no descriptors
per process.
"""
import codecs
import contextlib
import itertools
import logging
import os
import queue
import select
import signal
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote

import websocket

from ..exceptions import IncusError, IncusUnavailable
from ..i18n import N_

log = logging.getLogger(__name__)

TAG_VARIABLE = "INCUS_API_EXEC"
CONNECT_TIMEOUT = 10  # Incus itself gives up on an exec whose websockets are not there in 10 s
PROC = "/proc"
CGROUP_READ_LIMIT = 16 * 1024
STAT_READ_LIMIT = 4096  # comm is at most 16 bytes: a stat line is far shorter
ENVIRON_READ_LIMIT = 256 * 1024  # a process that hides the tag behind a larger environment detached itself
ENVIRON_SECONDS = 0.5  # an environment not read by then is taken as not the exec's (its reader is left behind)
MAX_STUCK_READERS = 4  # readers left behind in the service's life; past them environments are no longer read
KILL_ROUNDS = 50  # scans until no new process of the exec shows up (each one stops what it found)
KILL_SECONDS = 2.0  # at most this long to find and stop an exec's processes (killing them follows)
CGROUP2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")  # where cgroup v2 is mounted (unified, hybrid)
MAX_CGROUPS = 1024  # cgroups of one container looked into
MAX_PIDS = 65536  # pids of one container looked at
PROCS_READ_LIMIT = 1024 * 1024  # of one cgroup.procs (a pid and its newline: at most 8 bytes)
YIELD_EVERY = 256  # processes between two turns given to the other threads


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def truncated(self):
        """Whether either stream was longer than the limit (its first ``limit`` bytes are kept)."""
        return self.stdout_truncated or self.stderr_truncated


class DeadlinePassed(Exception):
    """The streams were still open at the deadline."""


class CappedBuffer:
    """The first ``limit`` bytes written; the rest is only counted."""

    def __init__(self, limit):
        self.limit = max(0, int(limit))
        self.data = bytearray()
        self.dropped = 0

    def write(self, chunk):
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    @property
    def truncated(self):
        return self.dropped > 0

    def text(self):
        """UTF-8 with replacements; a character cut at the limit is left out, not replaced."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return decoder.decode(bytes(self.data), final=not self.truncated)


class ExecStreams:
    """The four websockets of one exec operation, connected over the Incus unix socket.

    Use as a context manager: leaving it closes every websocket, which ends the command if it
    is still running (Incus kills it when its control websocket goes away).
    """

    def __init__(self, socket_path, operation_id, fds):
        self.socket_path = socket_path
        self.operation_id = operation_id
        self.fds = fds
        self.sockets = {}

    def __enter__(self):
        try:
            # Control first: it is there before Incus starts the command (when 0, 1 and 2 are).
            for fd in ("control", "0", "1", "2"):
                self.sockets[fd] = self._connect(self.fds[fd])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _connect(self, secret):
        path = f"/1.0/operations/{quote(self.operation_id, safe='')}/websocket?secret={quote(secret, safe='')}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.socket_path)
            ws = websocket.WebSocket(skip_utf8_validation=True)
            ws.connect(f"ws://localhost{path}", socket=sock, suppress_origin=True, timeout=CONNECT_TIMEOUT)
        except (OSError, websocket.WebSocketException) as exc:
            sock.close()
            raise IncusUnavailable(N_("Cannot reach the Incus daemon: {reason}"), reason=f"exec websocket: {exc}") from exc
        return ws

    def send_stdin(self, data=b""):
        """Send ``data`` on stdin, then end it (the command reads EOF after it). False when the
        command had already ended or closed its stdin (``true`` can exit before we write): not an
        error here, its exit code tells how it went."""
        ws = self.sockets["0"]
        try:
            if data:
                ws.send_bytes(bytes(data))
            ws.send("")  # the barrier: Incus closes the command's stdin
        except (OSError, websocket.WebSocketException) as exc:
            log.debug("exec stdin closed before it was written: %s", exc)
            return False
        return True

    def drain(self, deadline, limit):
        """Read stdout and stderr until Incus ends both (the command exited); ``(stdout, stderr)``
        as ``CappedBuffer``. Raises ``DeadlinePassed`` when they are still open at ``deadline``
        (a ``time.monotonic()`` value)."""
        buffers = {"1": CappedBuffer(limit), "2": CappedBuffer(limit)}
        open_streams = {self.sockets[fd].sock: fd for fd in ("1", "2")}
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlinePassed()
            buffered = [s for s, fd in open_streams.items() if self.sockets[fd].frame_buffer.recv_buffer]
            readable = buffered or select.select(list(open_streams), [], [], remaining)[0]
            for sock in readable:
                fd = open_streams[sock]
                if not self._read_frame(self.sockets[fd], buffers[fd], deadline):
                    del open_streams[sock]
        return buffers["1"], buffers["2"]

    @staticmethod
    def _read_frame(ws, buffer, deadline):
        """One frame into ``buffer``; False at the end of the stream."""
        ws.sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            frame = ws.recv_frame()
        except websocket.WebSocketTimeoutException:
            raise DeadlinePassed() from None
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return False
        except (OSError, websocket.WebSocketException) as exc:
            raise IncusError(N_("Incus error: {reason}"), reason=f"exec output: {exc}") from exc
        if frame.opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT):
            buffer.write(frame.data)
            return True
        # A text message is Incus' end-of-stream barrier; a close frame ends it too.
        return frame.opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_CLOSE)

    def close(self):
        for ws in self.sockets.values():
            with contextlib.suppress(Exception):
                ws.sock.settimeout(1)
                ws.close(timeout=1)
            with contextlib.suppress(Exception):
                ws.shutdown()
        self.sockets = {}


# -- the kill -----------------------------------------------------------------------------------

def tag_entry(tag):
    return f"{TAG_VARIABLE}={tag}".encode()


def _read(path, limit):
    """At most ``limit`` bytes of a /proc or cgroup file (its owner controls what is in it)."""
    with open(path, "rb", buffering=0) as handle:
        chunks, size = [], 0
        while size < limit:
            chunk = handle.read(min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


def _in_cgroup(pid, cgroup):
    """Whether ``pid`` is in the cgroup ``cgroup`` (``/lxc.payload.<name>``) or below it."""
    try:
        text = _read(f"{PROC}/{pid}/cgroup", CGROUP_READ_LIMIT)
    except OSError:
        return False
    for line in text.split(b"\n"):
        path = line.split(b":", 2)[-1]
        if path == cgroup or path.startswith(cgroup + b"/"):
            return True
    return False


def _stat(pid):
    """``(parent pid, start time)`` of ``pid`` (the start time, in clock ticks since boot, tells
    a process from a later one under the same pid); None when it is gone."""
    try:
        stat = _read(f"{PROC}/{pid}/stat", STAT_READ_LIMIT)
        fields = stat[stat.rindex(b")") + 2:].split()  # after "(comm)": state, ppid, ... starttime
        return int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _carries(pid, entry):
    environ = ENVIRONS.read(pid)
    return environ is not None and entry in environ.split(b"\0")


class EnvironReader:
    """Reads ``/proc/<pid>/environ`` in a thread of its own, one read at a time.

    The environment is the one thing read from a process's memory: a tenant can map it from a file
    of a FUSE server of their own that never answers, and the read would wait forever. Here the
    caller waits at most ``timeout`` seconds (then: not known, so not the exec's); the stuck
    thread is left behind with its one descriptor, and the next read gets a new thread. After
    ``max_stuck`` such threads, environments are no longer read at all (an exec's processes are
    then found by their parentage only): the service's threads and descriptors stay bounded.
    """

    def __init__(self, timeout=ENVIRON_SECONDS, max_stuck=MAX_STUCK_READERS):
        self.timeout = timeout
        self.max_stuck = max_stuck
        self.stuck = 0
        self._lock = threading.Lock()
        self._worker = None  # (requests, answers) of the reader thread

    def read(self, pid):
        """The first ``ENVIRON_READ_LIMIT`` bytes of the environment of ``pid``; None when it is
        gone, unreadable or not read in time."""
        with self._lock:
            if self.stuck >= self.max_stuck:
                return None
            if self._worker is None:
                self._worker = (queue.SimpleQueue(), queue.SimpleQueue())
                threading.Thread(target=self._serve, args=self._worker, name="environ-reader", daemon=True).start()
            requests, answers = self._worker
            requests.put(pid)
            try:
                return answers.get(timeout=self.timeout)
            except queue.Empty:
                self.stuck += 1
                self._worker = None  # its answer, if one ever comes, goes to a queue no one reads
                log.warning("the environment of process %d was not read within %s s; %d reader(s) left behind%s", pid,
                            self.timeout, self.stuck, ": environments are no longer read" if self.stuck >= self.max_stuck else "")
                return None

    @staticmethod
    def _serve(requests, answers):
        while True:
            pid = requests.get()
            try:
                answers.put(_read(f"{PROC}/{pid}/environ", ENVIRON_READ_LIMIT))
            except OSError:
                answers.put(None)


ENVIRONS = EnvironReader()


def _pids():
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def _pid_list(data, limit):
    """The pids of a ``cgroup.procs`` read of at most ``limit`` bytes (a number cut at the limit
    is left out: it would be another pid)."""
    if len(data) >= limit:
        data = data[:data.rfind(b"\n") + 1]
    return [int(word) for word in data.split() if word.isdigit()]


def _container_pids(container):
    """The pids in the cgroup v2 of ``container`` and every cgroup below it (at most
    ``MAX_CGROUPS`` cgroups and ``MAX_PIDS`` pids); None when the host has no such cgroup."""
    base = next((f"{root}/lxc.payload.{container}" for root in CGROUP2_ROOTS
                 if os.path.isfile(f"{root}/lxc.payload.{container}/cgroup.procs")), None)
    if base is None:
        return None
    found, pending, walked, count = {}, [base], 0, 0
    while pending and walked < MAX_CGROUPS and count < MAX_PIDS:
        path = pending.pop()
        walked += 1
        try:
            found[path] = _pid_list(_read(f"{path}/cgroup.procs", PROCS_READ_LIMIT), PROCS_READ_LIMIT)
            count += len(found[path])
            with os.scandir(path) as entries:  # one descriptor, closed before the next cgroup
                below = (entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
                pending += itertools.islice(below, MAX_CGROUPS - walked - len(pending))
        except OSError:  # removed meanwhile
            continue
    # The container's own cgroup (its init and services) last: Incus attaches an exec below it.
    pids = [pid for path, listed in found.items() if path != base for pid in listed] + found.get(base, [])
    return pids[:MAX_PIDS]


def _signal(pid, start, signum):
    """Send ``signum`` to ``pid`` if it still is the process that started at ``start``: through a
    pidfd opened for this one signal and closed at once. Whether it was sent."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # gone already
        return False
    try:
        # Checked through the pidfd's process: while the pidfd is open, the pid is that process's.
        info = _stat(pid)
        if info is None or info[1] != start:
            return False
        signal.pidfd_send_signal(pidfd, signum)
        return True
    except OSError:
        return False
    finally:
        os.close(pidfd)


def kill_tagged(container, tag, budget=None):
    """SIGKILL every process of ``container`` that carries ``INCUS_API_EXEC=<tag>`` in its
    environment or descends from one that does; returns how many were killed.

    Each round stops what it finds (a stopped process cannot fork), until a round finds nothing
    new or ``budget`` seconds (``KILL_SECONDS``) have passed; then every stopped one gets SIGKILL.
    At most one descriptor is open at a time (see the module's docstring).
    """
    deadline = time.monotonic() + (KILL_SECONDS if budget is None else budget)
    cgroup = f"/lxc.payload.{container}".encode()
    entry = tag_entry(tag)
    held = {}  # pid -> start time of a stopped process of the exec
    cleared = {}  # pid -> start time of a process found not to be the exec's
    for _ in range(KILL_ROUNDS):
        if time.monotonic() >= deadline:
            log.warning("exec %s in %s: %d process(es) stopped when the %s s to find them ran out; the "
                        "rest may run on", tag, container, len(held), KILL_SECONDS if budget is None else budget)
            break
        if not _stop_new(container, cgroup, entry, held, cleared, deadline):
            break
    return sum(_signal(pid, start, signal.SIGKILL) for pid, start in held.items())


def _stop_new(container, cgroup, entry, held, cleared, deadline):
    """One round: stop the exec's processes not held yet; how many were new."""
    pids = _container_pids(container)
    if pids is None:  # no cgroup v2 of the container: the host's processes, by their cgroup
        pids = [pid for pid in _pids() if pid not in held and _in_cgroup(pid, cgroup)]
    infos = {}  # pid -> (parent, start) of the processes to decide on
    for count, pid in enumerate(pids):
        if count % YIELD_EVERY == 0 and not _breathe(deadline):
            break
        if pid in held:
            continue
        info = _stat(pid)
        if info is not None and (cleared.get(pid) != info[1] or info[0] in held):
            infos[pid] = info
    found = 0
    for pid in _the_execs(infos, held, cleared, entry, deadline):
        if _signal(pid, infos[pid][1], signal.SIGSTOP):
            held[pid] = infos[pid][1]
            found += 1
    return found


def _the_execs(infos, held, cleared, entry, deadline):
    """The pids of ``infos`` that are the exec's, parents before children: a process is when its
    parent is (held, or found so here), else when it carries the tag (the only environment read).
    The others go to ``cleared``."""
    verdicts = {}
    reads = 0
    for pid in infos:
        chain, seen, up = [], set(), pid
        while up in infos and up not in verdicts and up not in seen:  # up to a decided or outside parent
            chain.append(up)
            seen.add(up)
            up = infos[up][0]
        ours = up in held or verdicts.get(up, False)
        for member in reversed(chain):
            if not ours:
                reads += 1
                if reads % YIELD_EVERY == 0 and not _breathe(deadline):
                    return [pid for pid, verdict in verdicts.items() if verdict]
                ours = _carries(member, entry)
                if not ours:
                    cleared[member] = infos[member][1]
            verdicts[member] = ours
    return [pid for pid, verdict in verdicts.items() if verdict]


def _breathe(deadline):
    """Let the service's other threads run; False once ``deadline`` has passed."""
    time.sleep(0)
    return time.monotonic() < deadline
