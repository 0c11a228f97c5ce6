"""An interactive Incus exec (a shell on a PTY) over its websockets, for the browser console. No
Flask here.

``POST /1.0/instances/<name>/exec`` with ``interactive: true`` and ``wait-for-websocket: true``
answers an operation with two secrets: websocket ``0`` carries the terminal's bytes both ways
(what the user types, what the PTY prints), ``control`` carries window resizes
(``{"command": "window-resize", "args": {"width": "80", "height": "24"}}``). Both are opened over
the daemon's unix socket as the bounded exec does (``incus_exec.ExecStreams``).

The shell runs with ``INCUS_API_EXEC=<random id>`` in its environment, like every exec of the
service: ending a console kills every process of it in the container (``incus_exec.kill_tagged``),
also the ones it left in the background, before its websockets are closed.
"""
import contextlib
import json
import logging
import socket

import websocket

from . import exec as incus_exec

log = logging.getLogger(__name__)

# bash where the image has one, else sh; both as login shells (profile, prompt), in root's home.
SHELL_COMMAND = ["sh", "-c", 'cd "$HOME" 2>/dev/null; if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l']
TERM = "xterm-256color"
MIN_SIZE, MAX_COLUMNS, MAX_ROWS = 2, 1000, 500


def clamp_size(columns, rows):
    """A terminal size Incus and the PTY accept: whole numbers within sane bounds."""
    return (max(MIN_SIZE, min(MAX_COLUMNS, int(columns))), max(MIN_SIZE, min(MAX_ROWS, int(rows))))


def exec_body(columns, rows, tag):
    """The request that starts the shell on a PTY of ``columns`` x ``rows``."""
    columns, rows = clamp_size(columns, rows)
    return {
        "command": SHELL_COMMAND,
        "wait-for-websocket": True,
        "interactive": True,
        "width": columns,
        "height": rows,
        "environment": {"HOME": "/root", "USER": "root", "LANG": "C.UTF-8", "TERM": TERM,
                        incus_exec.TAG_VARIABLE: tag},
    }


def resize_message(columns, rows):
    columns, rows = clamp_size(columns, rows)
    return json.dumps({"command": "window-resize", "args": {"width": str(columns), "height": str(rows)}})


class ConsoleStreams(incus_exec.ExecStreams):
    """The data (``0``) and ``control`` websockets of one interactive exec.

    ``read`` blocks until the PTY printed something (one thread reads); ``write`` and ``resize``
    may be called from another thread at the same time (websocket-client locks its sends).
    ``close`` from any thread wakes a blocked ``read``, which then answers the end (``b""``).
    """

    def __enter__(self):
        try:
            for fd in ("control", "0"):  # control first: Incus starts the command once 0 is there
                self.sockets[fd] = self._connect(self.fds[fd])
            self.sockets["0"].sock.settimeout(None)
            self.sockets["control"].sock.settimeout(incus_exec.CONNECT_TIMEOUT)
        except BaseException:
            self.close()
            raise
        return self

    def read(self):
        """The next bytes the PTY printed; ``b""`` when the shell ended or the streams closed."""
        ws = self.sockets.get("0")
        while ws is not None:
            try:
                frame = ws.recv_frame()
            except (OSError, websocket.WebSocketException, AttributeError):
                return b""
            if frame is None or frame.opcode in (websocket.ABNF.OPCODE_CLOSE, websocket.ABNF.OPCODE_TEXT):
                return b""  # a text message is Incus' end-of-stream barrier
            if frame.opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT) and frame.data:
                return bytes(frame.data)
        return b""

    def write(self, data):
        """What the user typed (or pasted); False when the shell is gone."""
        try:
            self.sockets["0"].send_bytes(bytes(data))
        except (OSError, KeyError, websocket.WebSocketException):
            return False
        return True

    def resize(self, columns, rows):
        try:
            self.sockets["control"].send(resize_message(columns, rows))
        except (OSError, KeyError, websocket.WebSocketException) as exc:
            log.debug("console resize not sent: %s", exc)
            return False
        return True

    def close(self):
        for ws in list(self.sockets.values()):
            with contextlib.suppress(Exception):  # wakes a read blocked in another thread
                ws.sock.shutdown(socket.SHUT_RDWR)
        super().close()


class Console:
    """One open console: the container, its kill tag, its operation and its streams."""

    def __init__(self, name, tag, operation_id, streams):
        self.name = name
        self.tag = tag
        self.operation_id = operation_id
        self.streams = streams

    def read(self):
        return self.streams.read()

    def write(self, data):
        return self.streams.write(data)

    def resize(self, columns, rows):
        return self.streams.resize(columns, rows)
