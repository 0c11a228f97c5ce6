"""The front (incus_api/web/front.py) with real sockets: a worker stand-in (werkzeug's threaded
server with a small Flask app, on a unix socket) behind it, short deadlines so the tests are quick.
What it must hold: stalled and slow clients cost no worker thread and are dropped at the deadline,
bodies over the limit are refused before they are read, an answer is held for a client that reads
slowly (the worker's thread is free at once), a client's forged peer header never reaches the app,
and a WebSocket passes both ways and ends when its browser stops reading."""
import contextlib
import json
import os
import socket
import threading
import time

import pytest
from flask import Flask, request
from flask_sock import Sock
from werkzeug.serving import make_server

from incus_api.web.front import Front, Limits, listening_socket
from incus_api.web.serving import FrontHeaders

LIMITS = Limits(request_seconds=3, handshake_seconds=1, idle_seconds=0.5, send_seconds=1.5,
                answer_buffer_bytes=16 * 1024 * 1024, socket_buffer_bytes=64 * 1024, per_address=351)
BODY_LIMIT = 100_000
# More than the kernel holds for a client that reads nothing (tcp_wmem's 4 MiB at most), less than
# the front holds for it here.
BIG = 10 * 1024 * 1024


class Worker:
    """The worker's stand-in: what it was asked, and how many requests are inside it now."""

    def __init__(self, path):
        self.seen = []
        self.done = threading.Event()
        self.ws_closed = threading.Event()
        app = Flask(__name__)
        sock = Sock(app)

        @app.route("/echo", methods=["GET", "POST"])
        def echo():
            self.seen.append({"peer": request.remote_addr, "scheme": request.scheme,
                              "forged": [k for k in request.environ if "INCUS_API_WEB" in k]})
            return {"body": len(request.get_data()), "peer": request.remote_addr}

        @app.route("/big")
        def big():
            response = app.response_class("x" * BIG)
            response.call_on_close(self.done.set)  # once the server has written all of it
            return response

        @app.route("/stream")
        def stream():  # no length: the worker frames it itself (chunked, or to its connection's end)
            return app.response_class((f"part{n};" for n in range(3)), mimetype="text/plain")

        @app.route("/empty", methods=["DELETE"])
        def empty():
            return "", 204

        @sock.route("/ws")
        def ws(websocket):
            try:
                while True:
                    message = websocket.receive()
                    if message == "flood":
                        chunk = "y" * 65536
                        while True:
                            websocket.send(chunk)
                    websocket.send(f"echo:{message}")
            finally:
                self.ws_closed.set()

        self.server = make_server(f"unix://{path}", 0, FrontHeaders(app), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def front(tmp_path):
    path = str(tmp_path / "worker.sock")
    worker = Worker(path)
    listener = listening_socket("127.0.0.1", 0)
    front = Front(listener, path, BODY_LIMIT, max_connections=2000, limits=LIMITS)
    ready = threading.Event()
    thread = threading.Thread(target=front.run, args=(ready,), daemon=True)  # app.py runs it in a process
    thread.start()
    ready.wait()
    front.port = listener.getsockname()[1]
    front.worker = worker
    yield front
    front.stop()
    thread.join(timeout=5)
    worker.stop()


def connect(front, timeout=5):
    return socket.create_connection(("127.0.0.1", front.port), timeout=timeout)


def read_answer(sock):
    """One answer (Content-Length framed): ``(status, headers text, body bytes)``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split()[1]), head.decode("latin-1"), body


def get(front, path="/echo", extra=""):
    with connect(front) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        return read_answer(sock)


def closed_by_peer(sock, within):
    """True when the other side closes ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_request_reaches_the_worker_with_the_clients_address_and_no_forged_header(front):
    status, head, body = get(front, extra="Incus-Api-Web-Peer: 203.0.113.9\r\nIncus_Api_Web_Scheme: https\r\n")
    assert status == 200 and json.loads(body)["peer"] == "127.0.0.1"
    assert front.worker.seen == [{"peer": "127.0.0.1", "scheme": "http", "forged": []}]


def test_two_requests_on_one_kept_alive_connection_then_idle_ends_it(front):
    with connect(front) as sock:
        for _ in range(2):
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            status, _, body = read_answer(sock)
            assert status == 200 and json.loads(body)["body"] == 5
        started = time.monotonic()
        assert closed_by_peer(sock, within=5)
        assert time.monotonic() - started < LIMITS.idle_seconds + 1


def answers(sock, requests):
    """The answers to ``requests`` (``(h11.Request, body)``) on one connection: ``(h11.Response,
    body)`` each, read as a client reads them, with h11 checking their framing."""
    import h11

    client, got = h11.Connection(h11.CLIENT), []
    for sent, data in requests:
        sock.sendall(client.send(sent) + (client.send(h11.Data(data=data)) if data else b"")
                     + client.send(h11.EndOfMessage()))
        head, body = None, b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.InformationalResponse):
                continue
            else:
                assert isinstance(event, h11.EndOfMessage), event
                break
        got.append((head, body))
        if client.our_state is h11.MUST_CLOSE:
            assert sent is requests[-1][0]
            assert sock.recv(65536) == b""  # and the front closed the connection
            break
        client.start_next_cycle()
    return got


def test_answers_of_every_framing_on_one_connection_and_pipelined_requests(front):
    import h11

    def ask(method, target, headers=(), body=b""):
        return h11.Request(method=method, target=target, headers=[(b"host", b"x"), *headers]), body

    with connect(front) as sock:  # kept alive through a chunked answer, a HEAD, a 204 and a form POST
        got = answers(sock, [ask("GET", "/stream"), ask("HEAD", "/echo"), ask("DELETE", "/empty"),
                             ask("POST", "/echo", [(b"content-length", b"5")], body=b"hello")])
    (stream, body), (head, head_body), (empty, empty_body), (echo, _) = got
    assert (stream.status_code, body) == (200, b"part0;part1;part2;")
    assert dict(stream.headers)[b"transfer-encoding"] == b"chunked"
    assert head.status_code == 200 and head_body == b"" and int(dict(head.headers)[b"content-length"]) > 0
    assert (empty.status_code, empty_body, echo.status_code) == (204, b"", 200)
    with connect(front) as sock:  # HTTP/1.0: the body without framing, then the end of the connection
        sock.sendall(b"GET /stream HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_text, _, body = data.decode("latin-1").partition("\r\n\r\n")
    assert head_text.startswith("HTTP/1.1 200 ") and body == "part0;part1;part2;"
    assert "transfer-encoding" not in head_text.lower() and "connection: close" in head_text.lower()
    with connect(front) as sock:  # two requests in one packet
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 ") == 2 and json.loads(data.rpartition(b"\r\n\r\n")[2])["body"] == 3
    with connect(front) as sock:  # one that waits for 100 Continue
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"abcd")
        status, head_text, body = read_answer(sock)
        assert status == 200 and json.loads(body)["body"] == 4 and "connection: close" in head_text.lower()
    assert [seen["peer"] for seen in front.worker.seen] == ["127.0.0.1"] * 5


def test_stalled_and_slow_clients_hold_no_worker_and_are_dropped_at_the_deadline(front):
    stalled = [connect(front) for _ in range(300)]
    for index, sock in enumerate(stalled):
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad:" if index % 2 else b"GET /ec")
    slow = [connect(front) for _ in range(50)]
    for sock in slow:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
    try:
        started = time.monotonic()
        status, _, _ = get(front)
        assert status == 200 and time.monotonic() - started < 1
        assert len(front.worker.seen) == 1  # none of the 350 reached the worker
        with connect(front) as last, connect(front) as extra:  # the 351st is let in, the 352nd refused
            assert closed_by_peer(extra, within=2) and not closed_by_peer(last, within=0.2)
        for sock in slow[:10]:
            sock.sendall(b"c")  # a byte now and then does not move the deadline
        deadline = time.monotonic() + LIMITS.request_seconds + 3
        for sock in stalled + slow:
            assert closed_by_peer(sock, within=max(0.1, deadline - time.monotonic()))
        assert len(front.worker.seen) == 1
    finally:
        for sock in stalled + slow:
            sock.close()
    for _ in range(100):  # the front forgets them (its counts drop as the loop ends each)
        if front.open == 0:
            break
        time.sleep(0.02)
    assert front.open == 0 and not front.by_address


def test_a_body_over_the_limit_is_refused_before_it_is_sent(front):
    with connect(front) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_LIMIT + 1}\r\n\r\n".encode())
        status, head, body = read_answer(sock)
    assert status == 413 and json.loads(body) == {"status": "error", "message": "Request too large"}
    with connect(front) as sock:  # chunked: cut where it passes the limit
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(4):
                sock.sendall(b"%x\r\n%s\r\n" % (40_000, b"a" * 40_000))
        assert read_answer(sock)[0] == 413
    assert front.worker.seen == []


def test_a_malformed_request_gets_a_json_400(front):
    with connect(front) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nBad Header\r\n\r\n")
        status, _, body = read_answer(sock)
    assert status == 400 and json.loads(body)["status"] == "error"
    with connect(front) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (LIMITS.head_bytes + 10))
        assert read_answer(sock)[0] == 431


def test_an_answer_is_held_for_a_client_that_does_not_read_and_the_worker_is_free_at_once(front):
    with connect(front) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert front.worker.done.wait(5)  # the worker has written it all while the client read nothing
        assert closed_by_peer_after_reading_nothing(sock, within=LIMITS.send_seconds + 3)


def closed_by_peer_after_reading_nothing(sock, within):
    """Wait ``within`` seconds without reading, then read: the front must have dropped us (what
    the kernel held arrives, then the end, before all ``BIG`` bytes)."""
    time.sleep(within)  # the client's stall is the point: nothing to wait on but the clock
    sock.settimeout(5)
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received < BIG


def test_the_worker_being_away_answers_503(front, tmp_path):
    front.worker.stop()
    os.unlink(front.backend_path)
    status, head, body = get(front)
    assert status == 503 and "retry-after: 1" in head.lower() and json.loads(body)["status"] == "error"


def test_a_websocket_passes_both_ways_and_ends_when_its_browser_stops_reading(front):
    import websocket

    ws = websocket.create_connection(f"ws://127.0.0.1:{front.port}/ws", timeout=5,
                                     sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    ws.send("hi")
    assert ws.recv() == "echo:hi"
    ws.send("flood")  # the worker writes without end; the browser reads nothing more
    assert front.worker.ws_closed.wait(LIMITS.send_seconds + 10)
    ws.sock.close()

