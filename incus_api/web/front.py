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
# Framing and per-connection headers: h11 writes its own on each side.
HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
                        b"upgrade", b"expect", b"content-length"))


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
                return backend, True
            backend.close()
        reader, writer = await asyncio.open_unix_connection(self.backend_path, limit=READ_BYTES)
        return Backend(reader, writer), False

    def keep(self, backend):
        """Keep a connection whose exchange ended cleanly for the next request; False when it goes."""
        if backend.http.our_state is not h11.DONE or backend.http.their_state is not h11.DONE \
                or len(self.idle_backends) >= MAX_IDLE_BACKENDS:
            return False
        backend.http.start_next_cycle()
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
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.head_bytes)
        writer.transport.set_write_buffer_limits(high=self.limits.answer_buffer_bytes)

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
            if not await self._pass_on(request, body):
                return
            await self._flushed()
            if self.http.our_state is h11.MUST_CLOSE or self.http.their_state is h11.MUST_CLOSE:
                await self.close()
                return
            self.http.start_next_cycle()

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
        declared = _header(event.headers, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.front.body_limit:
            await self._answer_error(413, "Request too large")
            raise Dropped()
        body = bytearray()
        while True:
            part = await self._event(deadline)
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > self.front.body_limit:
                    await self._answer_error(413, "Request too large")
                    raise Dropped()
            elif isinstance(part, h11.EndOfMessage):
                return event, bytes(body)
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
        """Send the request to the worker and its answer back; False when the connection ends."""
        upgrade = _wants_websocket(request)
        for reused_before in (True, False):
            try:
                backend, reused = await self.front.backend(reuse=reused_before and not upgrade)
            except OSError:
                await self._answer_error(503, "The service is starting or restarting: try again in a moment",
                                         [(b"retry-after", b"1")])
                return False
            kept = False
            try:
                backend.send_request(request, self._headers_for_worker(request, upgrade), body)
                await backend.writer.drain()
                try:
                    answer = await backend.answer_head()
                except (h11.RemoteProtocolError, ConnectionError):
                    if reused:  # the worker let that kept connection go as the request went out: a new one
                        continue
                    raise
                if isinstance(answer, h11.InformationalResponse):  # 101: the worker switched
                    await self._switch(answer, backend)
                    return False
                self._write(h11.Response(status_code=answer.status_code, reason=answer.reason,
                                         headers=_without(answer.headers, HOP_BY_HOP - {b"content-length"})))
                while True:
                    part = await backend.next_part()
                    if isinstance(part, h11.EndOfMessage):
                        self._write(h11.EndOfMessage())
                        break
                    self._write(h11.Data(data=part.data))
                    async with asyncio.timeout(self.limits.send_seconds):
                        await self.writer.drain()
                kept = self.front.keep(backend)
                return True
            except (h11.RemoteProtocolError, ConnectionError) as exc:  # the worker broke off
                if self.http.our_state is h11.SEND_RESPONSE:
                    log.warning("front: the worker gave no answer (%s)", exc)
                    await self._answer_error(502, "The service could not answer")
                    return False
                raise Dropped() from exc
            finally:
                if not kept:
                    backend.close()
        return False

    def _headers_for_worker(self, request, upgrade):
        keep = {b"connection", b"upgrade"} if upgrade else set()
        headers = [(name, value) for name, value in request.headers
                   if name.replace(b"_", b"-") not in (PEER_HEADER, SCHEME_HEADER)
                   and (name not in HOP_BY_HOP or name in keep)]
        headers.append((PEER_HEADER, self.address.encode()))
        headers.append((SCHEME_HEADER, self.front.scheme))
        return headers

    async def _switch(self, answer, backend):
        """The worker took the WebSocket: pass bytes both ways until either side ends."""
        self._write(answer)
        self.writer.transport.set_write_buffer_limits(high=self.limits.socket_buffer_bytes)
        early, _closed = self.http.trailing_data
        if early:
            backend.writer.write(early)
        waiting, _closed = backend.http.trailing_data
        if waiting:
            self.writer.write(waiting)

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
        if self.http.our_state not in (h11.IDLE, h11.SEND_RESPONSE):  # IDLE: the request was unreadable
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


class Backend:
    """One request to the worker over its unix socket, h11 on the client's side."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)

    def send_request(self, request, headers, body):
        framed = body or _header(request.headers, b"content-length") is not None \
            or _header(request.headers, b"transfer-encoding") is not None
        if framed:
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        self.writer.write(self.http.send(h11.Request(method=request.method, target=request.target, headers=headers)))
        if body:
            self.writer.write(self.http.send(h11.Data(data=body)))
        self.writer.write(self.http.send(h11.EndOfMessage()))

    async def _event(self):
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.http.receive_data(await self.reader.read(READ_BYTES))

    async def answer_head(self):
        """The answer's head: an ``h11.Response``, or the ``InformationalResponse`` 101."""
        while True:
            event = await self._event()
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                return event
            if isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("closed before answering")

    async def next_part(self):
        event = await self._event()
        if isinstance(event, (h11.Data, h11.EndOfMessage)):
            return event
        raise ConnectionResetError("closed in the middle of an answer")

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


def trim_heap():
    """glibc's ``malloc_trim(0)``: free pages of every arena back to the system (nothing elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _header(headers, name):
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip()
    return None


def _without(headers, names):
    return [(key, value) for key, value in headers if key not in names]


def _wants_websocket(request):
    upgrade = (_header(request.headers, b"upgrade") or "").lower()
    connection = (_header(request.headers, b"connection") or "").lower()
    return upgrade == "websocket" and "upgrade" in connection


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
