"""Slow clients cost nothing (issue 18, point 2), against app.py as a host runs it (the front with
TLS, gunicorn behind) and real containers: 300 connections that send part of a request and stall,
50 that send a body a byte a second and 10 console WebSockets that never read. Meanwhile the API
(info, exec), the dashboard and a new console answer within a second; the stalled requests are
dropped at the 30 s deadline, the unread consoles are ended with their processes, and afterwards
the service's threads, descriptors and memory are back where they were."""
import contextlib
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import incus_cli
from tests.integration.test_console import read_until

DEADLINE = 30  # front.Limits.request_seconds and send_seconds


def processes(service):
    """``(front, worker)``: app.py's two children, the front the one that listens on its port."""
    children = [int(pid) for pid in Path(f"/proc/{service.pid}/task/{service.pid}/children").read_text().split()]
    port = service.base.rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    front = int(re.search(r"pid=(\d+)", listening).group(1))
    assert len(children) == 2 and front in children, (children, listening)
    return front, next(pid for pid in children if pid != front)


def usage(service):
    """Threads of the worker, descriptors and memory (Pss, kB) of app.py's three processes."""
    front, worker = processes(service)
    pids = [service.pid, front, worker]
    threads = int(re.search(r"Threads:\s+(\d+)", Path(f"/proc/{worker}/status").read_text()).group(1))
    descriptors = sum(len(list(Path(f"/proc/{pid}/fd").iterdir())) for pid in pids)
    memory = [int(re.search(r"Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text()).group(1)) for pid in pids]
    return {"threads": threads, "descriptors": descriptors, "memory_kb": sum(memory), "front_kb": memory[1],
            "worker_kb": memory[2]}


def tls_socket(service):
    host, port = service.base.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=service.cert)
    sock = context.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
    return sock


def dropped(sock, within):
    """True when the other side ends ``sock`` within ``within`` seconds (what the kernel still
    held for it is read on the way)."""
    deadline = time.monotonic() + within
    try:
        while True:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def open_console(service, cookie, name):
    url = f"{service.base.replace('https://', 'wss://')}/container/{name}/console/ws?cols=80&rows=24"
    ws = service.websocket(url, cookie=cookie, origin=service.base, timeout=15)
    ws.send_binary(b"echo ready-$((6*7))\n")
    read_until(ws, rb"ready-42")
    return ws


def yes_running(name):
    return "yes" in incus_cli("exec", name, "--", "ps", "-o", "args").stdout.split()


def test_slow_clients_hold_nothing_and_are_dropped(service, make_container):
    names = [make_container(wait_for_ip=False) for _ in range(6)]
    session = service.login()
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    api = service.session()
    api.headers.update(service.api)

    # Warm up what a normal day uses (the thread pool grows once and keeps its threads), then measure.
    warm = [open_console(service, cookie, names[index // 2]) for index in range(10)]
    for ws in warm:
        ws.close()
    for name in names:
        assert api.post(f"{service.base}/container/{name}/exec", data={"command": "true"}, timeout=30).status_code == 200
    time.sleep(1)  # the consoles' ends settle (their relays exit): the baseline is the quiet service
    before = usage(service)

    stalled, slow, unread = [], [], []
    stop = threading.Event()
    try:
        for index in range(300):
            sock = tls_socket(service)
            sock.sendall(b"GET /container/x/info HTTP/1.1\r\nHost: x\r\nX-A" if index % 2 else b"GET /cont")
            stalled.append(sock)
        for _ in range(50):
            sock = tls_socket(service)
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 100000\r\n\r\nu")
            slow.append(sock)

        def trickle():  # a byte a second on each slow body, as long as the front lets it
            while not stop.wait(1):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"x")

        threading.Thread(target=trickle, daemon=True).start()
        for index in range(10):  # two on each of five containers; they print without end, nobody reads
            ws = open_console(service, cookie, names[index // 2])
            ws.send_binary(b"yes\n")
            unread.append(ws)
        attack_began = time.monotonic()

        # Everything else answers within a second, again and again while the attack lasts.
        for _ in range(3):
            info, seconds = timed(lambda: api.get(f"{service.base}/container/{names[0]}/info", timeout=10))
            assert info.status_code == 200 and seconds < 1, seconds
            done, seconds = timed(lambda: api.post(f"{service.base}/container/{names[1]}/exec",
                                                   data={"command": "echo fine"}, timeout=10))
            assert done.status_code == 200 and done.json()["stdout"].strip() == "fine" and seconds < 1, seconds
            page, seconds = timed(lambda: session.get(service.base + "/", timeout=10))
            assert page.status_code == 200 and seconds < 1, seconds
        fresh, seconds = timed(lambda: open_console(service, cookie, names[5]))
        assert seconds < 1, seconds
        fresh.close()

        # At the deadline the front drops the stalled requests, the slow bodies and the unread consoles.
        wait_until = attack_began + DEADLINE + 10
        for sock in stalled + slow:
            assert dropped(sock, within=max(0.1, wait_until - time.monotonic()))
        for name in names[:5]:  # the unread consoles end, and with them their processes
            deadline = attack_began + DEADLINE + 25
            while yes_running(name):
                assert time.monotonic() < deadline, f"{name}: the unread console's yes still runs"
                time.sleep(0.5)
        for ws in unread:  # what the kernels and the front still held reaches the reader, then the end
            assert dropped(ws.sock, within=DEADLINE)
    finally:
        stop.set()
        for sock in stalled + slow:
            sock.close()
        for ws in unread:
            with contextlib.suppress(Exception):
                ws.sock.close()

    deadline = time.monotonic() + 15
    while True:  # back where it was: the worker's threads, both processes' descriptors and memory
        after = usage(service)
        back = (after["threads"] <= before["threads"] + 2 and after["descriptors"] <= before["descriptors"] + 8
                and after["memory_kb"] <= before["memory_kb"] + 20 * 1024)
        if back or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert back, (before, after)
    assert api.get(f"{service.base}/container/{names[0]}/info", timeout=10).status_code == 200
