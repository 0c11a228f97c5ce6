"""Faults and concurrency against the real daemon: Incus going away and coming back (through a
unix-socket relay the test can cut), and many clients racing for the same name or ports."""
import os
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import API_HEADERS, API_SECRET, INCUS_SOCKET
from tests.integration.conftest import free_port


class SocketRelay:
    """A unix socket that relays to the Incus socket while up; ``cut()`` is the daemon stopping."""

    def __init__(self, path):
        self.path = path
        self.connections = []
        self.listener = None

    def start(self):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(INCUS_SOCKET)
            self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.listener.close()
        os.unlink(self.path)
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            except OSError:
                pass
        self.connections = []


@pytest.fixture
def relay(tmp_path):
    relay = SocketRelay(str(tmp_path / "incus.socket"))
    relay.start()
    yield relay
    if relay.listener.fileno() != -1:
        relay.cut()


def test_incus_down_then_back_without_restarting_the_service(tmp_path, relay, make_container):
    from incus_api import create_app

    name = make_container()
    app = create_app({"DATABASE": str(tmp_path / "db"), "API_SECRET_KEY": API_SECRET, "INCUS_SOCKET": relay.path,
                      "NAT_TAG_PREFIX": "incus-api-test-relay:"}, instance_path=tmp_path)
    app.extensions["incus_api"].services.accounts.save_user("admin", "a-good-admin-password")
    api = app.test_client()
    headers = {**API_HEADERS, "Accept-Language": "en"}
    live = api.get(f"/container/{name}/info", headers=headers).get_json()
    assert live["live_data_available"] is True
    dashboard = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', dashboard.get("/login").get_data(as_text=True)).group(1)
    dashboard.post("/login", data={"username": "admin", "password": "a-good-admin-password", "csrf_token": token})
    assert name in dashboard.get("/").get_data(as_text=True)

    relay.cut()
    snapshot = api.get(f"/container/{name}/info", headers=headers)
    assert snapshot.status_code == 200
    body = snapshot.get_json()
    assert body["live_data_available"] is False and body["status"] == "Running" and body["ip"] == live["ip"]
    for method, path, data in [
        ("post", "/container/create", {"name": "t-never", "image": "busybox"}),
        ("post", f"/container/{name}/action", {"action": "restart"}),
        ("post", f"/container/{name}/exec", {"command": "true"}),
        ("post", f"/container/{name}/add_nat_rule", {"host_port": str(free_port()), "container_port": "80", "protocol": "tcp"}),
        ("get", "/container/t-unknown-one/info", None),
    ]:
        response = getattr(api, method)(path, data=data, headers=headers)
        assert response.status_code == 503, (path, response.get_json())
        assert response.get_json()["status"] == "error" and "Incus" in response.get_json()["message"]
    assert api.get(f"/container/{name}/nat_rules", headers=headers).status_code == 200
    page = dashboard.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Incus is unreachable" in page and name in page

    relay.start()
    back = api.get(f"/container/{name}/info", headers=headers).get_json()
    assert back["live_data_available"] is True
    executed = api.post(f"/container/{name}/exec", data={"command": "echo back"}, headers=headers).get_json()
    assert executed["output"] == "back\n"


def http():
    session = requests.Session()
    session.trust_env = False
    session.headers.update(API_HEADERS)
    return session


def test_sixteen_clients_creating_the_same_name(live_server, container_name, busybox_image):
    name = container_name()

    def create(_):
        return http().post(f"{live_server}/container/create", data={"name": name, "image": busybox_image})

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(create, range(16)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 15, [(r.status_code, r.text) for r in responses]
    assert all(r.json()["status"] == "error" for r in responses if r.status_code == 409)


def test_sixteen_clients_forwarding_overlapping_ports(live_server, app, make_container):
    containers = [make_container(), make_container()]
    base = free_port()
    requests_to_make = [
        (containers[i % 2], f"{base + i % 4}-{base + i % 4 + 2}" if i % 3 == 0 else str(base + i % 5), "80")
        for i in range(16)
    ]

    def add(args):
        name, host_port, container_port = args
        return http().post(f"{live_server}/container/{name}/add_nat_rule",
                           data={"host_port": host_port, "container_port": container_port, "protocol": "tcp"})

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(add, requests_to_make))
    assert all(r.status_code in (200, 409) for r in responses), [r.text for r in responses]

    rules = app.extensions["incus_api"].services.nat_rules.list_all()
    forwarded = [port for rule in rules for port in range(rule["host_port"], rule["host_port_end"] + 1)]
    assert len(forwarded) == len(set(forwarded)), rules
    kernel = [forward for _, forward in app.extensions["incus_api"].nat.tagged()]
    assert sorted((f.rule_id, f.host_port, f.host_port_end, f.container_ip) for f in kernel) == \
        sorted((r["id"], r["host_port"], r["host_port_end"], r["container_ip"]) for r in rules)
