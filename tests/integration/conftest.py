import secrets
import subprocess
import sys
from dataclasses import dataclass

import pytest

PROBE = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    print(data.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip())
except OSError as exc:
    print("ERROR", type(exc).__name__, exc)
    sys.exit(1)
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class TestHost:
    """A network namespace of our own, wired to the host by a veth pair: a client outside the host."""

    name: str
    host_ip: str  # the host's address on the veth, i.e. the address the client connects to
    client_ip: str

    def http_get(self, address, port):
        """GET / from inside the namespace; the body, or None when the connection failed."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", PROBE, address, str(port)],
            capture_output=True, text=True, timeout=20,
        )
        if result.returncode != 0:  # shown with a failing test's output: refused, timed out, unreachable
            print(f"GET http://{address}:{port}/ from {self.name}: {result.stdout.strip()} {result.stderr.strip()}",
                  file=sys.stderr)
            return None
        return result.stdout.strip()


@pytest.fixture
def test_host():
    token = secrets.token_hex(3)
    subnet = 200 + secrets.randbelow(50)  # one at a time: the host's tests run one after another
    name, veth_host, veth_ns = f"t-ns-{token}", f"tvh{token}", f"tvn{token}"
    host_ip, client_ip = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
    try:
        ip("netns", "add", name)
        ip("link", "add", veth_host, "type", "veth", "peer", "name", veth_ns)
        ip("link", "set", veth_ns, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", veth_host)
        ip("link", "set", veth_host, "up")
        for args in (("addr", "add", f"{client_ip}/30", "dev", veth_ns), ("link", "set", veth_ns, "up"),
                     ("link", "set", "lo", "up"), ("route", "add", "default", "via", host_ip)):
            ip("netns", "exec", name, "ip", *args)
        yield TestHost(name=name, host_ip=host_ip, client_ip=client_ip)
    finally:
        ip("link", "del", veth_host, check=False)
        ip("netns", "del", name, check=False)


def free_port():
    """A host port unlikely to be in use or reserved: 20000-29999."""
    return 20000 + secrets.randbelow(10000)


def kernel_nat_rules():
    return subprocess.run(["iptables-legacy", "-t", "nat", "-S", "PREROUTING"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def forward_policy_drop_later():
    """``drop(backend)``: FORWARD policy DROP in ``iptables-legacy`` or ``iptables-nft``, as Docker
    sets it; every policy set is restored afterwards (the ``app`` fixture removes its rules)."""
    nft_had_filter = subprocess.run(["nft", "list", "table", "ip", "filter"], capture_output=True).returncode == 0
    changed = []

    def drop(backend):
        subprocess.run([backend, "-P", "FORWARD", "DROP"], check=True)
        changed.append(backend)

    yield drop
    for backend in changed:
        subprocess.run([backend, "-P", "FORWARD", "ACCEPT"], check=True)
    if not nft_had_filter and "incus-api" not in subprocess.run(
            ["iptables-nft", "-S", "FORWARD"], capture_output=True, text=True).stdout:
        subprocess.run(["nft", "delete", "table", "ip", "filter"], check=False)


def pool_for_test():
    """A pool of 200 ports of its own per test, so parallel runs and other tests do not meet.

    It lies in 10000-19999: under the kernel's ephemeral range, where an outgoing connection of
    any program could hold one of its ports, and apart from the 20000-29999 other tests take.
    """
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    assert ephemeral_low >= 20000, f"the ephemeral ports start at {ephemeral_low}: move the test pools"
    start = 10000 + secrets.randbelow(99) * 100
    return start, start + 199


@pytest.fixture
def pool():
    """Host ports of this test's own for a PORT_POOL (``pool_for_test``)."""
    return pool_for_test()
