"""The Incus client keeps its connections to the daemon alive across requests to different paths
(pylxd's own adapter keys a pool by the whole URL: a new connection for most requests)."""
import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from incus_api.incus import client
from incus_api.incus.client import Incus


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self):
        with self.server.lock:
            self.server.paths.append(self.path)
        body = json.dumps({"type": "sync", "status": "Success", "status_code": 200,
                           "metadata": {"auth": "trusted", "api_extensions": [], "path": self.path}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class _Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def daemon(tmp_path):
    server = _Daemon(str(tmp_path / "unix.socket"), _Handler)
    server.connections, server.paths, server.lock = 0, [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_requests_to_many_paths_share_one_kept_alive_connection(daemon):
    incus = Incus(daemon.server_address)
    names = [f"c{i}" for i in range(40)]  # more paths than pylxd's 25 pools
    for name in names:
        assert incus.instance(name)["path"] == f"/1.0/instances/{name}?recursion=1"
        assert incus.instance_state(name)["path"] == f"/1.0/instances/{name}/state"
    assert len(daemon.paths) == 1 + 2 * len(names)  # GET /1.0 when the client is made, then each call
    assert daemon.connections == 1


def test_concurrent_requests_each_keep_their_connection(daemon):
    incus = Incus(daemon.server_address)
    incus.instance("first")
    barrier = threading.Barrier(4)

    def calls(index):
        barrier.wait()
        for i in range(20):
            incus.instance(f"t{index}-{i}")

    threads = [threading.Thread(target=calls, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(daemon.paths) == 2 + 4 * 20
    assert daemon.connections <= 4  # at most one per concurrent caller, kept for its later calls


def test_a_connection_idle_too_long_is_opened_anew(daemon, monkeypatch):
    """incusd closes a connection idle for 30 s: one idle for IDLE_REUSE_SECONDS is never sent
    a request that could cross that close."""
    monkeypatch.setattr(client, "IDLE_REUSE_SECONDS", 0.2)
    incus = Incus(daemon.server_address)
    incus.instance("a")
    incus.instance("b")
    assert daemon.connections == 1
    time.sleep(0.3)
    assert incus.instance("c")["path"] == "/1.0/instances/c?recursion=1"
    assert daemon.connections == 2
