"""The front: what faces the network, a process of its own that app.py forks before gunicorn starts.

gunicorn's gthread worker reads a request on a blocking socket in one of its threads: 32
connections that send half a request and stall hold all 32 threads, and everything stops. So the
worker listens only on a unix socket in a private folder, and this front, one asyncio loop in a
process of its own, holds the network side:

- **Requests arrive whole or not at all.** A request (line, headers and body) is read here, then
  passed to the worker in one piece: a worker's thread never waits on a client. A request not
  complete 30 s after it began, a TLS handshake not done in 10 s, or a kept-alive connection idle
  5 s is dropped (``Limits``). Heads are limited to 16 KiB, bodies to the app's limit (``413``
  before the body is read).
- **Answers are held here** (up to 4 MiB a connection) so the worker's thread is free once the app
  has answered; a client that reads nothing of an answer for 30 s is dropped.
- **Parsing**: h11 reads and checks each request; what the worker gets is built from what h11
  accepted, in one write. The worker's answer (gunicorn's, well formed) is not parsed again by h11:
  its head is read for its framing (Content-Length, chunked, or the connection's end) and passed on
  with h11's framing rules for the client, head and a small body in one write (one TLS record).
- **WebSockets** (the console) are passed through byte for byte once the worker agreed to switch.
  A browser that reads none of a console's output for 30 s (256 KiB held) is dropped, and so its
  console ends (the worker sees the socket close).
- **TLS** is ended here (``ssl_context``).
- **Connections**: at most 512 open at once from one client address, and at most
  ``max_connections`` in all (two descriptors each).

The client's address and scheme reach the app in two headers only the front sets (``PEER_HEADER``,
``SCHEME_HEADER``, dropped when a client sends them); ``serving.FrontHeaders`` in the worker turns
them into ``REMOTE_ADDR`` and ``wsgi.url_scheme``. Nothing else is held here: the app's state
(console tickets, the login limit, the scheduler) stays in the one worker.
"""
import asyncio
import asyncio.sslproto
import collections
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import ssl
import struct
from dataclasses import dataclass

import h11

from ..memory import trim_heap

log = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
PR_SET_PDEATHSIG = 1  # from linux/prctl.h
BACKEND_IDLE_SECONDS = 2  # a kept connection to the worker is used again within this (gunicorn keeps it 5 s)
MAX_IDLE_BACKENDS = 32  # as many as the worker has threads
BACKLOG = 1024  # connections the kernel queues before the front accepts them (asyncio's own default is 100)
# asyncio gives each TLS connection a read buffer of this size (256 KiB by default: 90 MB for the
# 350 stalled connections of the slow-client test, 2.5 GB at the connection limit). A TLS record
# is 16 KiB at most; 32 KiB keeps a stalled TLS client near the cost of a plain one.
TLS_BUFFER_BYTES = 32 * 1024


@dataclass(frozen=True)
class Limits:
    request_seconds: float = 30  # a request, line to last byte of its body
    handshake_seconds: float = 10  # a TLS handshake
    idle_seconds: float = 5  # a kept-alive connection between two requests
    send_seconds: float = 30  # a client that reads nothing of what is written to it
    head_bytes: int = 16 * 1024  # a request's line and headers
    answer_buffer_bytes: int = 4 * 1024 * 1024  # an answer held for its client
    socket_buffer_bytes: int = 256 * 1024  # a console's output held for a browser that stopped reading
    per_address: int = 512  # connections open at once from one client address


# After a burst of connections has ended (this many since the last time), free memory goes back
# to the system: glibc keeps what hundreds of TLS connections freed (25 MB after 350) otherwise.
TRIM_AFTER_CLOSED = 64
TRIM_EVERY_SECONDS = 5

PEER_HEADER = b"incus-api-web-peer"
SCHEME_HEADER = b"incus-api-web-scheme"
FRONT_HEADERS = frozenset((PEER_HEADER, SCHEME_HEADER))
# Framing and per-connection headers: the front frames each side itself.
HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                        b"upgrade", b"expect", b"content-length"))


# What ``ClientConnection._pass_on`` leaves to the connection after a request.
ENDED, CLOSE, KEEP = "ended", "close", "keep"


class Dropped(Exception):
    """The client's connection ends here without an answer (timed out, closed, unusable)."""


def error_answer(status, message, extra=()):
    """A JSON error in the API's shape, for what the front answers itself."""
    body = json.dumps({"status": "error", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *extra]
    return h11.Response(status_code=status, headers=headers), body


class Front:
    def __init__(self, listener, backend_path, body_limit, ssl_context=None, max_connections=1000, limits=Limits()):
        self.listener = listener  # bound and listening
        self.backend_path = backend_path  # the worker's unix socket
        self.body_limit = body_limit
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.limits = limits
        self.scheme = b"https" if ssl_context else b"http"
        self.scheme_line = SCHEME_HEADER + b": " + self.scheme
        self.open = 0
        self.closed = 0  # since the heap was last trimmed
        self.by_address = collections.Counter()
        self.idle_backends = []  # (Backend, since when): connections to the worker kept for the next request
        self.loop = None

    # -- its process -------------------------------------------------------------------------

    def spawn(self):
        """Serve in a process of its own, forked now; returns its pid. Call it while this process
        has no other thread: a fork while another thread holds one of OpenSSL's locks leaves that
        lock held in the child for ever (gunicorn's worker, forked from a process whose thread was
        serving TLS, hung in its first scrypt). The front ends with its parent."""
        parent = os.getpid()
        # Objects made so far are never collected: the child's garbage collector then leaves them
        # untouched, and their pages stay shared with the parent instead of being copied.
        gc.freeze()
        pid = os.fork()
        if pid:
            return pid
        status = 1
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent went before the line above
                os._exit(0)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the server's to handle
            self.run()
            status = 0
        finally:
            os._exit(status)

    def run(self, ready=None):
        """Serve in the calling thread until ``stop``; ``ready`` (an Event) is set once the
        listener is served."""
        asyncio.sslproto.SSLProtocol.max_size = TLS_BUFFER_BYTES  # this process serves nothing else over TLS
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(_quiet_handler)
        self.loop.run_until_complete(asyncio.start_server(
            self._accepted, sock=self.listener, ssl=self.ssl_context, limit=READ_BYTES, backlog=BACKLOG,
            ssl_handshake_timeout=self.limits.handshake_seconds if self.ssl_context else None))
        self.loop.create_task(self._trim_after_bursts())
        if ready is not None:
            ready.set()
        self.loop.run_forever()

    def stop(self):
        """Stop ``run`` from another thread: every connection is cancelled."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._shut)

    def _shut(self):
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.call_soon(self.loop.stop)

    async def _trim_after_bursts(self):
        while True:
            await asyncio.sleep(TRIM_EVERY_SECONDS)
            if self.closed >= TRIM_AFTER_CLOSED:
                self.closed = 0
                trim_heap()

    # -- connections to the worker ----------------------------------------------------------

    async def backend(self, reuse=True):
        """A connection to the worker: ``(Backend, reused)``. One kept from an earlier answer when
        ``reuse`` and it has been idle less than ``BACKEND_IDLE_SECONDS`` (under gunicorn's keep-alive,
        so the worker has not let it go), else a new one. Kept connections spare the worker's
        one accepting thread an accept and a close per request."""
        now = self.loop.time()
        while reuse and self.idle_backends:
            backend, since = self.idle_backends.pop()
            if now - since < BACKEND_IDLE_SECONDS and not backend.reader.at_eof() and not backend.writer.is_closing():
                backend.reusable = False
                return backend, True
            backend.close()
        reader, writer = await asyncio.open_unix_connection(self.backend_path, limit=READ_BYTES)
        return Backend(reader, writer), False

    def keep(self, backend):
        """Keep a connection whose exchange ended cleanly for the next request; False when it goes."""
        if not backend.reusable or len(self.idle_backends) >= MAX_IDLE_BACKENDS:
            return False
        self.idle_backends.append((backend, self.loop.time()))
        return True

    # -- one connection ----------------------------------------------------------------------

    async def _accepted(self, reader, writer):
        peer = str((writer.get_extra_info("peername") or ("",))[0])
        address = peer.removeprefix("::ffff:") if "." in peer else peer
        if self.open >= self.max_connections or self.by_address[address] >= self.limits.per_address:
            drop(writer)
            return
        self.open += 1
        self.by_address[address] += 1
        # asyncio sets TCP_NODELAY only for sockets made with proto=IPPROTO_TCP, and a listener from
        # socket.create_server has proto 0: without it Nagle holds an answer's body behind its head
        # until the client's delayed ACK, 40 ms on every kept-alive request.
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = ClientConnection(self, reader, writer, address)
            await connection.serve()
            if not writer.is_closing():  # idle, or the client closed first
                await connection.close()
        except (Dropped, TimeoutError, ConnectionError, ssl.SSLError, h11.ProtocolError):
            drop(writer)
        except Exception:  # noqa: BLE001 - one connection's bug never stops the front
            log.exception("front: connection from %s failed", address)
            drop(writer)
        finally:
            self.open -= 1
            self.closed += 1
            self.by_address[address] -= 1
            if not self.by_address[address]:
                del self.by_address[address]


class ClientConnection:
    def __init__(self, front, reader, writer, address):
        self.front = front
        self.limits = front.limits
        self.reader = reader
        self.writer = writer
        self.address = address
        self.peer_line = PEER_HEADER + b": " + address.encode()
        self.http = self._parser()
        self.answering = False  # part of the answer to this request has been written to the client
        writer.transport.set_write_buffer_limits(high=self.limits.answer_buffer_bytes)

    def _parser(self):
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.head_bytes)

    async def serve(self):
        first = True
        while True:
            try:
                request, body = await self._request(first)
            except h11.RemoteProtocolError as exc:
                await self._answer_error(exc.error_status_hint, "Bad request")
                return
            if request is None:  # closed, or idle too long between two requests
                return
            first = False
            after = await self._pass_on(request, body)
            if after is ENDED:
                return
            await self._flushed()
            if after is CLOSE:
                await self.close()
                return
            self._next_cycle()

    def _next_cycle(self):
        """A parser for the next request, with what the client already sent behind this one. The
        answer went out without this request's parser (it validates what the client sends, not what
        the worker answers), so a new one starts where it stopped."""
        data, closed = self.http.trailing_data
        self.http = self._parser()
        if data:
            self.http.receive_data(data)
        if closed:
            self.http.receive_data(b"")
        self.answering = False

    async def _flushed(self):
        """Wait until the answer has gone to the kernel (a slow reader is not idle); past
        ``send_seconds`` the client is dropped."""
        transport = self.writer.transport
        if transport.get_write_buffer_size():
            # high=1, low=0: paused while anything is held, resumed once nothing is. Never high=0:
            # asyncio's TLS transport pauses at size >= high, so 0 pauses an empty buffer, and
            # nothing is written that would resume it (the kept-alive connection then hangs).
            transport.set_write_buffer_limits(high=1, low=0)
            try:
                async with asyncio.timeout(self.limits.send_seconds):
                    await self.writer.drain()
            finally:
                transport.set_write_buffer_limits(high=self.limits.answer_buffer_bytes)

    async def _request(self, first):
        """The next request, whole: ``(h11.Request, body)``, or ``(None, b"")`` when the client is
        done. Raises ``TimeoutError`` past the request's deadline."""
        loop = asyncio.get_running_loop()
        event = h11.NEED_DATA
        if not first:  # kept alive: the next request begins within idle_seconds, or the connection ends
            event = self.http.next_event()  # one the client already sent behind the last
            if event is h11.NEED_DATA:
                try:
                    async with asyncio.timeout(self.limits.idle_seconds):
                        self.http.receive_data(await self.reader.read(READ_BYTES))
                except TimeoutError:
                    return None, b""
        deadline = loop.time() + self.limits.request_seconds
        if event is h11.NEED_DATA:
            event = await self._event(deadline)
        if isinstance(event, h11.ConnectionClosed):
            return None, b""
        if not isinstance(event, h11.Request):
            raise Dropped()
        declared = _declared_length(event.headers)
        if declared is not None and declared > self.front.body_limit:
            await self._answer_error(413, "Request too large")
            raise Dropped()
        parts, size = [], 0
        while True:
            part = await self._event(deadline)
            if type(part) is h11.Data:
                parts.append(part.data)
                size += len(part.data)
                if size > self.front.body_limit:
                    await self._answer_error(413, "Request too large")
                    raise Dropped()
            elif type(part) is h11.EndOfMessage:
                return event, parts[0] if len(parts) == 1 else b"".join(parts)
            else:
                raise Dropped()

    async def _event(self, deadline):
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.http.they_are_waiting_for_100_continue:
                self.writer.write(self.http.send(h11.InformationalResponse(status_code=100, headers=[])))
            async with asyncio.timeout_at(deadline):
                self.http.receive_data(await self.reader.read(READ_BYTES))

    async def _pass_on(self, request, body):
        """Send the request to the worker and its answer back: ``KEEP`` or ``CLOSE`` once the answer
        is written, ``ENDED`` when the connection is over (answered by the front, or switched)."""
        out, upgrade, keep_alive = self._for_worker(request, body)
        for reused_before in (True, False):
            try:
                backend, reused = await self.front.backend(reuse=reused_before and not upgrade)
            except OSError:
                await self._answer_error(503, "The service is starting or restarting: try again in a moment",
                                         [(b"retry-after", b"1")])
                return ENDED
            kept = False
            try:
                backend.writer.write(out)
                if backend.writer.transport.get_write_buffer_size():  # a body the socket did not take at once
                    await backend.writer.drain()
                try:
                    answer = await backend.answer_head(request.method, upgrade)
                except ConnectionError:
                    if reused:  # the worker let that kept connection go as the request went out: a new one
                        continue
                    raise
                if answer.status == 101:  # the worker switched
                    await self._switch(answer, backend)
                    return ENDED
                keep_alive = await self._relay(request.method, answer, backend, keep_alive)
                kept = not upgrade and self.front.keep(backend)
                return KEEP if keep_alive else CLOSE
            except ConnectionError as exc:  # the worker broke off (or its answer was unreadable)
                if not self.answering and self.http.our_state is h11.SEND_RESPONSE:
                    log.warning("front: the worker gave no answer (%s)", exc)
                    await self._answer_error(502, "The service could not answer")
                    return ENDED
                raise Dropped() from exc
            finally:
                if not kept:
                    backend.close()
        return ENDED

    def _for_worker(self, request, body):
        """``(bytes, upgrade, keep_alive)``: the request as the worker gets it, in one piece (its
        head built from what h11 validated: the client's headers as sent, less the per-connection
        ones and any copy of the front's own two, which are added; the body framed by its length),
        whether it asks for a WebSocket, and whether the client keeps its connection after it."""
        lines = [request.method + b" " + request.target + b" HTTP/1.1"]
        framed = bool(body)
        hop = []  # Connection and Upgrade: passed on for a WebSocket only
        connection, upgrade = b"", None
        close = False
        for name, value in request.headers.raw_items():
            lower = name.lower()
            if lower in HOP_BY_HOP:
                if lower == b"connection":
                    tokens = value.lower()
                    connection = connection or tokens
                    close = close or b"close" in [token.strip() for token in tokens.split(b",")]
                    hop.append(name + b": " + value)
                elif lower == b"upgrade":
                    upgrade = value.lower() if upgrade is None else upgrade
                    hop.append(name + b": " + value)
                elif lower in (b"content-length", b"transfer-encoding"):
                    framed = True
            elif lower not in FRONT_HEADERS and (b"_" not in lower or lower.replace(b"_", b"-") not in FRONT_HEADERS):
                lines.append(name + b": " + value)
        websocket = upgrade == b"websocket" and b"upgrade" in connection
        if websocket:
            lines += hop
        lines.append(self.peer_line)
        lines.append(self.front.scheme_line)
        if framed:
            lines.append(b"content-length: %d" % len(body))
        lines.append(b"")
        lines.append(body)
        return b"\r\n".join(lines), websocket, request.http_version == b"1.1" and not close

    async def _relay(self, method, answer, backend, keep_alive):
        """The worker's answer to the client: its head as the worker wrote it, less the
        per-connection headers, with the framing h11 would give it (``Transfer-Encoding: chunked``
        for an answer of unknown length to an HTTP/1.1 client, the end of the connection for an
        HTTP/1.0 one; ``Connection: close`` when the connection ends); then its body, held here up
        to ``answer_buffer_bytes``. Returns whether the client's connection is kept."""
        lines = [b"HTTP/1.1 " + answer.rest, *answer.lines]
        no_body = method == b"HEAD" or answer.status in (204, 304) or (method == b"CONNECT" and answer.status < 300)
        rechunk = False
        if answer.length is None and answer.status not in (204, 304) \
                and not (method == b"CONNECT" and answer.status < 300):  # a body of unknown length
            if self.http.their_http_version == b"1.1":
                lines.append(b"Transfer-Encoding: chunked")
                rechunk = True
            elif method != b"HEAD":
                keep_alive = False
        if not keep_alive:
            lines.append(b"Connection: close")
        lines.append(b"\r\n")
        head = b"\r\n".join(lines)
        self.answering = True
        if no_body:
            backend.reusable = answer.reusable
            self.writer.write(head)
        elif answer.length is not None:
            left = answer.length
            if left <= READ_BYTES:  # the usual answer: one write, one TLS record
                self.writer.write((head + await backend.exactly(left)) if left else head)
            else:
                self.writer.write(head)
                while left:
                    data = await backend.reader.read(min(left, READ_BYTES))
                    if not data:
                        raise ConnectionResetError("closed in the middle of an answer")
                    left -= len(data)
                    await self._held(data)
            backend.reusable = answer.reusable
        else:
            self.writer.write(head)
            async with contextlib.aclosing(backend.pieces(answer.chunked)) as pieces:
                async for data in pieces:
                    await self._held(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
            if rechunk:
                self.writer.write(b"0\r\n\r\n")
            backend.reusable = answer.reusable and answer.chunked
        return keep_alive

    async def _held(self, data):
        """Write a piece of an answer; past ``answer_buffer_bytes`` held, wait for the client to
        read, ``send_seconds`` at most."""
        self.writer.write(data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() >= self.limits.answer_buffer_bytes or transport.is_closing():
            async with asyncio.timeout(self.limits.send_seconds):
                await self.writer.drain()

    async def _switch(self, answer, backend):
        """The worker took the WebSocket: pass bytes both ways until either side ends."""
        self.answering = True
        self.writer.write(answer.head)
        self.writer.transport.set_write_buffer_limits(high=self.limits.socket_buffer_bytes)
        early, _closed = self.http.trailing_data
        if early:
            backend.writer.write(early)
        # What the worker sent behind its head is still in backend.reader: to_browser reads it first.

        async def to_worker():
            while data := await self.reader.read(READ_BYTES):
                backend.writer.write(data)
                await backend.writer.drain()

        async def to_browser():
            while data := await backend.reader.read(READ_BYTES):
                self.writer.write(data)
                async with asyncio.timeout(self.limits.send_seconds):
                    await self.writer.drain()

        tasks = [asyncio.ensure_future(to_worker()), asyncio.ensure_future(to_browser())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        raise Dropped()

    def _write(self, event):
        data = self.http.send(event)
        if data:
            self.writer.write(data)

    async def _answer_error(self, status, message, extra=()):
        if self.answering or self.http.our_state not in (h11.IDLE, h11.SEND_RESPONSE):  # IDLE: the request was unreadable
            return
        response, body = error_answer(status, message, extra)
        self._write(response)
        self._write(h11.Data(data=body))
        self._write(h11.EndOfMessage())
        await self.close()

    async def close(self):
        """Close once what is written has reached the client, or drop it after ``send_seconds``."""
        self.writer.close()
        try:
            async with asyncio.timeout(self.limits.send_seconds):
                await self.writer.wait_closed()
        except (TimeoutError, ConnectionError, ssl.SSLError):
            drop(self.writer)


class BrokenAnswer(ConnectionError):
    """The worker's answer cannot be read as HTTP/1.1."""


class Answer:
    """The head of the worker's answer, as far as the front needs it."""

    __slots__ = ("status", "rest", "lines", "length", "chunked", "reusable", "head")

    def __init__(self, status, rest, lines=(), length=None, chunked=False, reusable=False, head=b""):
        self.status = status  # the code
        self.rest = rest  # the status line after the version: code and reason
        self.lines = lines  # header lines for the client (Content-Length kept, other framing and per-connection ones dropped)
        self.length = length  # Content-Length when the body is framed by it
        self.chunked = chunked
        self.reusable = reusable  # the worker keeps the connection after this answer
        self.head = head  # as received (a 101's, passed on whole)


class Backend:
    """One connection to the worker over its unix socket. gunicorn's answers are well formed: the
    head is split into lines and read for its framing only (Content-Length, chunked, or to the end
    of the connection), and the body is passed on as it comes."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.reusable = False  # the last answer was read whole and the worker keeps the connection

    async def answer_head(self, method, upgrade):
        """The answer's head (a 101 only when ``upgrade``); interim 1xx answers are skipped."""
        while True:
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                raise ConnectionResetError("closed before answering") from exc
            except asyncio.LimitOverrunError as exc:
                raise BrokenAnswer("an answer's head over the read limit") from exc
            lines = head[:-4].split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or not code.isdigit() or rest[3:4] not in (b"", b" "):
                raise BrokenAnswer(f"not an answer: {lines[0][:80]!r}")
            status = int(code)
            if status == 101 and upgrade:
                return Answer(status, rest, head=head)
            if status < 200:
                if status == 101:
                    raise BrokenAnswer("switched without being asked")
                continue
            kept, length, chunked, reusable = [], None, False, version == b"HTTP/1.1"
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon:
                    raise BrokenAnswer(f"not a header: {line[:80]!r}")
                lower = name.lower()
                if lower not in HOP_BY_HOP:
                    kept.append(line)
                elif lower == b"content-length":
                    value = value.strip()
                    if not value.isdigit() or (length is not None and int(value) != length):
                        raise BrokenAnswer("a bad Content-Length")
                    if length is None:
                        kept.append(line)
                    length = int(value)
                elif lower == b"transfer-encoding":
                    if value.strip().lower() != b"chunked":
                        raise BrokenAnswer("a transfer coding other than chunked")
                    chunked = True
                elif lower == b"connection" and b"close" in [token.strip() for token in value.lower().split(b",")]:
                    reusable = False
            if chunked and length is not None:  # chunked wins (RFC 9112 6.3); the length goes
                kept = [line for line in kept if line.partition(b":")[0].lower() != b"content-length"]
                length = None
            if not chunked and length is None and not (method == b"HEAD" or status in (204, 304)):
                reusable = False  # its body ends with the connection
            return Answer(status, rest, kept, length, chunked, reusable)

    async def exactly(self, size):
        try:
            return await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("closed in the middle of an answer") from exc

    async def pieces(self, chunked):
        """A body of unknown length, piece by piece: chunked, or to the end of the connection."""
        reader = self.reader
        if not chunked:
            while data := await reader.read(READ_BYTES):
                yield data
            return
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    size = -1
                if size < 0:
                    raise BrokenAnswer("a bad chunk size")
                if not size:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers: dropped, as before
                        pass
                    return
                while size:
                    data = await reader.read(min(size, READ_BYTES))
                    if not data:
                        raise ConnectionResetError("closed in the middle of an answer")
                    size -= len(data)
                    yield data
                if await reader.readexactly(2) != b"\r\n":
                    raise BrokenAnswer("a chunk without its end")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionResetError("closed in the middle of an answer") from exc
        except asyncio.LimitOverrunError as exc:
            raise BrokenAnswer("a chunk's line over the read limit") from exc

    def close(self):
        self.writer.transport.abort()


def drop(writer):
    """End a connection now: what it holds unsent is thrown away (a reset, not a close that the
    kernel would go on delivering to a client that reads nothing)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family != socket.AF_UNIX:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def _declared_length(headers):
    """A request's Content-Length (h11 has checked it is digits), or None."""
    for name, value in headers.raw_items():
        if len(name) == 14 and name.lower() == b"content-length":
            return int(value)
    return None


def _quiet_handler(loop, context):
    """Handshakes that fail or time out are the internet's noise: logged at debug level."""
    exception = context.get("exception")
    if isinstance(exception, (ssl.SSLError, ConnectionError, TimeoutError)):
        log.debug("front: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def listening_socket(host, port, backlog=None):
    """The front's listener on ``host``:``port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog or BACKLOG, reuse_port=False)


def tls_context(cert, key):
    """TLS 1.2 and later, the certificate chain and key from PEM files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context
