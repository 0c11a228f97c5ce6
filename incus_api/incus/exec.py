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
  it only names the exec); the kill finds, in the host's ``/proc``, the container's processes
  (its ``lxc.payload.<name>`` cgroup) that carry that id or descend from one that does, stops
  them (so they cannot fork any more), then kills them. Closing the control websocket makes
  Incus SIGKILL the command's first process as well.

A root user in the container can still detach a process on purpose (a new environment and a
double fork); that is no more than they can do from their own shell. What the service promises is
that no command it started outlives its deadline by accident.
"""
import codecs
import contextlib
import logging
import os
import select
import signal
import socket
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
KILL_ROUNDS = 50  # scans until no new process of the exec shows up (each one stops what it found)


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
    """At most ``limit`` bytes of a /proc file (its owner controls what is in it)."""
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


def _parent(pid):
    try:
        stat = _read(f"{PROC}/{pid}/stat", STAT_READ_LIMIT)
        return int(stat[stat.rindex(b")") + 2:].split()[1])  # after "(comm)": state, ppid
    except (OSError, ValueError, IndexError):
        return None


def _carries(pid, entry):
    try:
        return entry in _read(f"{PROC}/{pid}/environ", ENVIRON_READ_LIMIT).split(b"\0")
    except OSError:
        return False


def _pids():
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def kill_tagged(container, tag):
    """SIGKILL every process of ``container`` that carries ``INCUS_API_EXEC=<tag>`` in its
    environment or descends from one that does; returns how many were killed.

    Each round stops what it finds (a stopped process cannot fork), until a round finds nothing
    new; then all of them get SIGKILL. Signals go through pidfds, so a pid that was reused in the
    meantime is never hit.
    """
    cgroup = f"/lxc.payload.{container}".encode()
    entry = tag_entry(tag)
    held = {}  # pid -> pidfd of a stopped process of the exec
    try:
        for _ in range(KILL_ROUNDS):
            if not _stop_new(cgroup, entry, held):
                break
        for pidfd in held.values():
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return len(held)
    finally:
        for pidfd in held.values():
            os.close(pidfd)


def _stop_new(cgroup, entry, held):
    """One scan: stop the exec's processes not held yet; how many were new."""
    parents = {pid: _parent(pid) for pid in _pids() if pid not in held and _in_cgroup(pid, cgroup)}
    tagged = {pid for pid in parents if _carries(pid, entry)}
    found = 0
    changed = True
    while changed:  # a child is the exec's when its parent is, however deep
        changed = False
        for pid, parent in list(parents.items()):
            if pid not in tagged and parent not in held:
                continue
            del parents[pid]
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # gone already
                continue
            # Checked again through the pidfd's process: the pid may have been reused meanwhile.
            if _in_cgroup(pid, cgroup) and (_parent(pid) in held or _carries(pid, entry)):
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(pidfd, signal.SIGSTOP)
                held[pid] = pidfd
                found += 1
                changed = True
            else:
                os.close(pidfd)
    return found
