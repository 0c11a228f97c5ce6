"""The console's one-time link route (401/404/409, expiry, one use, hash-only storage) against the
real Incus, and the console served the way app.py serves it (gunicorn in a subprocess, like
bench/bench.py's service): 8 consoles at once, two on one container, while the dashboard answers;
SIGTERM ends them all and leaves no process of theirs in the containers."""
import hashlib
import json
import re
import signal
import subprocess
import threading
import time

import websocket

from tests.conftest import incus_cli
from tests.integration.test_exec_bounds import (
    DETACHED,
    ENDING_SECONDS,
    FORK_LOOP,
    MORE_DESCRIPTORS,
    TAGGED,
    WhileEnding,
    container_processes,
    process_count,
    wait_for_processes,
)

PROCESSES = "for e in /proc/[0-9]*/environ; do grep -qs INCUS_API_EXEC= $e && echo ${e%/environ}; done; true"

ENGLISH = {"Accept-Language": "en"}  # the messages checked below are the English ones


def tagged_processes(name):
    return subprocess.run(["incus", "exec", name, "--", "sh", "-c", PROCESSES],
                          capture_output=True, text=True, check=True).stdout.split()


def csrf_of(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client, app, password="test-admin-password"):

    app.extensions["incus_api"].services.accounts.save_user("admin", password)
    client.post("/login", data={"username": "admin", "password": password,
                                "csrf_token": csrf_of(client.get("/login").get_data(as_text=True))})
    return csrf_of(client.get("/settings").get_data(as_text=True))


# -- the token route -------------------------------------------------------------------------

def test_the_token_route_answers_401_404_409_and_a_link(api, client, app, make_container):
    name = make_container(wait_for_ip=False)
    assert client.post(f"/container/{name}/console_token").status_code == 401
    assert api.post("/container/t-no-such-container-x/console_token").status_code == 404
    answer = api.post(f"/container/{name}/console_token")
    body = answer.get_json()
    assert answer.status_code == 200 and body["status"] == "success" and body["expires_in"] == 60
    token = body["url"].removeprefix("/console/")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)

    rows = app.extensions["incus_api"].db.query("SELECT * FROM console_tokens")
    stored = json.dumps([dict(row) for row in rows])
    assert token not in stored and rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert rows[0]["container_name"] == name and rows[0]["used_at"] is None

    incus_cli("stop", "--force", name)
    refused = api.post(f"/container/{name}/console_token", headers=ENGLISH)
    assert refused.status_code == 409 and "Stopped" in refused.get_json()["message"]
    page = client.get(body["url"], headers={"Accept": "text/html", **ENGLISH})  # the earlier link opens nothing now
    assert page.status_code == 409 and "Stopped" in page.get_data(as_text=True)
    assert client.get(f"/console/{token}").status_code == 409  # ... and was not spent by that


def test_suspended_containers_refuse_the_link_and_the_session_needs_csrf(api, client, app, make_container):
    name = make_container(wait_for_ip=False)
    csrf = log_in(client, app)
    assert client.post(f"/container/{name}/console_token").status_code == 400  # the session without CSRF
    answer = client.post(f"/container/{name}/console_token", headers={"X-CSRFToken": csrf})
    assert answer.status_code == 200
    assert api.post(f"/container/{name}/action", data={"action": "suspend"}).status_code == 200
    refused = api.post(f"/container/{name}/console_token", headers=ENGLISH)
    assert refused.status_code == 409 and "suspended" in refused.get_json()["message"]
    page = client.get(answer.get_json()["url"], headers={"Accept": "text/html", **ENGLISH})
    assert page.status_code == 409 and "suspended" in page.get_data(as_text=True)
    page = client.get(f"/container/{name}/console", headers={"Accept": "text/html", **ENGLISH})
    assert page.status_code == 409 and "suspended" in page.get_data(as_text=True)


def test_a_link_opens_once_and_expires(api, client, app, make_container):
    name = make_container(wait_for_ip=False)
    fresh = app.test_client()  # no session at all
    url = api.post(f"/container/{name}/console_token").get_json()["url"]
    first = fresh.get(url)
    assert first.status_code == 200 and 'data-socket-url="/console/ws/' in first.get_data(as_text=True)
    second = fresh.get(url, headers=ENGLISH)
    assert second.status_code == 410 and "already been used" in second.get_data(as_text=True)
    assert app.extensions["incus_api"].db.query_one("SELECT used_at FROM console_tokens")["used_at"]

    console = app.extensions["incus_api"].services.console
    url = api.post(f"/container/{name}/console_token").get_json()["url"]
    real_clock = console.clock
    console.clock = lambda: real_clock() + 61
    try:
        expired = fresh.get(url, headers=ENGLISH)
    finally:
        console.clock = real_clock
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert fresh.get("/console/" + "x" * 43).status_code == 403


def test_a_link_opens_nothing_on_a_container_made_again_under_its_name(api, app, make_container, busybox_image):
    """The link is bound to the instance (its Incus UUID): deleted behind the service's back and
    launched again under the same name within the link's minute, the new container is not opened."""
    name = make_container(wait_for_ip=False)
    url = api.post(f"/container/{name}/console_token").get_json()["url"]
    assert incus_cli("delete", "--force", name).returncode == 0
    assert incus_cli("launch", busybox_image, name).returncode == 0
    page = app.test_client().get(url, headers=ENGLISH)
    assert page.status_code == 410 and "since been deleted" in page.get_data(as_text=True)
    fresh = api.post(f"/container/{name}/console_token").get_json()["url"]  # a new link opens the new one
    assert app.test_client().get(fresh).status_code == 200


def test_at_most_console_per_container_consoles_on_one_container(api, client, app, make_container):
    """Two real shells open on a container (CONSOLE_PER_CONTAINER's default): a new link answers
    429, so do an earlier link's page (without spending it), the admin's console page and the
    admin's WebSocket before its handshake; another container still opens; a place freed, the
    earlier link opens."""
    name, other = make_container(wait_for_ip=False), make_container(wait_for_ip=False)
    consoles = app.extensions["incus_api"].services.console
    early = api.post(f"/container/{name}/console_token").get_json()["url"]
    csrf = log_in(client, app)
    sessions = [consoles.start(name, "admin:test", 80, 24) for _ in range(2)]
    try:
        refused = api.post(f"/container/{name}/console_token", headers=ENGLISH)
        assert refused.status_code == 429, refused.get_json()
        assert refused.get_json()["message"] == f"2 consoles are open on container {name} already, its limit: close one first"
        page = app.test_client().get(early, headers={"Accept": "text/html", **ENGLISH})
        assert page.status_code == 429 and "its limit" in page.get_data(as_text=True)
        assert client.get(f"/container/{name}/console", headers=ENGLISH).status_code == 429
        handshake = {"Origin": "http://localhost", "Connection": "Upgrade", "Upgrade": "websocket",
                     "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **ENGLISH}
        socket = client.get(f"/container/{name}/console/ws", headers=handshake)
        assert socket.status_code == 429 and "its limit" in socket.get_data(as_text=True)
        assert client.post(f"/container/{other}/console_token", headers={"X-CSRFToken": csrf}).status_code == 200
        consoles.end(sessions.pop(), "closed")
        assert app.test_client().get(early).status_code == 200  # the early link was not spent
    finally:
        for session in sessions:
            consoles.end(session, "closed")
    assert tagged_processes(name) == []


# -- served by app.py (gunicorn) -----------------------------------------------------------------

def read_until(ws, pattern, timeout=15):
    seen, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            break
        seen += data if isinstance(data, bytes) else data.encode()
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"{pattern!r} not read in {timeout} s: {seen[-500:]!r}")


def test_app_py_serves_8_consoles_while_the_dashboard_answers(service, make_container):
    names = [make_container(wait_for_ip=False) for _ in range(4)]
    session = service.login()
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    ws_base = service.base.replace("https://", "wss://")

    consoles = []
    for index in range(8):
        name = names[index % 4]  # two consoles on each container
        if index < 4:  # the admin's
            url = f"{ws_base}/container/{name}/console/ws?cols=100&rows=30"
            consoles.append(service.websocket(url, cookie=cookie, origin=service.base, timeout=15))
        else:  # one-time links
            link = session.post(f"{service.base}/container/{name}/console_token", headers=service.api, timeout=10)
            page = session.get(service.base + link.json()["url"], timeout=10).text
            path = re.search(r'data-socket-url="([^"]+)"', page).group(1)
            consoles.append(service.websocket(ws_base + path + "?cols=90&rows=20", origin=service.base,
                                                        timeout=15))
    for index, ws in enumerate(consoles):
        ws.send_binary(f"echo n-$(({index}*7)); sleep 300 &\n".encode())
    for index, ws in enumerate(consoles):
        read_until(ws, rf"\nn-{index * 7}\r?\n".encode())

    started = time.monotonic()
    assert session.get(service.base + "/", timeout=10).status_code == 200  # the dashboard, 8 consoles open
    assert session.get(f"{service.base}/containers/{names[0]}", timeout=10).status_code == 200
    assert service.session().get(service.base + "/containers", headers=service.api, timeout=10).status_code == 200
    assert time.monotonic() - started < 10
    for name in names:
        assert len(tagged_processes(name)) == 4  # two shells, two sleeps

    consoles[0].close()  # one tab closed: its shell and its sleep go, its neighbour on the container stays
    deadline = time.monotonic() + 10
    while len(tagged_processes(names[0])) > 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(tagged_processes(names[0])) == 2

    service.send_signal(signal.SIGTERM)  # what systemd does: the open consoles end with it
    service.wait(timeout=20)
    for name in names:
        assert tagged_processes(name) == [], name
    log = service.log.read_text()
    assert log.count(" ended (stopping)") == 7 and log.count(" ended (closed)") == 1, log[-3000:]


def test_ending_a_console_that_forked_thousands_of_tagged_processes_is_bounded(app, live_server, make_container):
    """Typed into a console: 3,000 background children and 300 detached ones carrying its tag.
    Ending the session takes under 5 s, the service's descriptors stay flat, another container's
    info keeps answering, and none of the processes is left (issue 18, point 7)."""
    name, other = make_container(wait_for_ip=False), make_container(wait_for_ip=False)
    consoles = app.extensions["incus_api"].services.console
    idle = process_count(name)
    session = consoles.start(name, "admin:test", 80, 24)
    drain = threading.Thread(target=lambda: all(iter(session.console.read, b"")), daemon=True)  # what the PTY prints
    drain.start()
    session.console.write(f"{FORK_LOOP}\n".encode())
    wait_for_processes(name, idle + 1 + TAGGED + DETACHED, time.monotonic() + 60)  # the shell, and what it forked
    with WhileEnding(live_server, other) as watch:
        time.sleep(0.5)
        started = time.monotonic()
        consoles.end(session, "closed")
        ended = time.monotonic()
        time.sleep(0.2)
    before, peak = watch.peak(end=started), watch.peak(started, ended)
    during = watch.during(started, ended)
    print(f"\nconsole end with {TAGGED + DETACHED} tagged processes: {ended - started:.2f} s; descriptors: {before} at "
          f"most before, {peak} at most while it ended; {len(during)} other call(s) meanwhile, slowest "
          f"{max(seconds for seconds, _ in during):.2f} s")
    assert ended - started < ENDING_SECONDS
    assert peak - before < MORE_DESCRIPTORS
    assert during and all(status == 200 and seconds < 2 for seconds, status in during), during
    assert tagged_processes(name) == [] and container_processes(name) == []
    assert consoles.sessions == {}
