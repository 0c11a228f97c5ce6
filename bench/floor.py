"""The floor every ratio is taken against: raw Incus REST over the unix socket, raw NAT rules.

- ``Floor``: the Incus REST calls that fetch the same data as the service's operations, through
  pylxd's API node (no pylxd model objects);
- ``RawNat``: one python-iptables append / exact delete with the xtables lock;
- ``batch_add`` and ``remove_bench_rules``: the bench's own kernel rules (tag ``BENCH_TAG``), put in
  and taken out in bulk.

The bottom of bench/: it puts the repository root on ``sys.path`` for ``incus_api``.
"""
import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from pylxd import Client

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from incus_api.host import leases as dhcp_leases  # noqa: E402
from incus_api.incus.exec import ExecStreams  # noqa: E402
from incus_api.nat import CHAIN, XTABLES_LOCK, NatTable  # noqa: E402
from incus_api.service.addresses import BridgeNetwork, used_ipv4  # noqa: E402

BENCH_TAG = "incus-api-bench:"        # our kernel rules; the service's own and the tests' differ


# -- raw Incus REST over the unix socket -----------------------------------------------------

class Floor:
    """Raw Incus REST calls through pylxd's API node (no pylxd model objects)."""

    def __init__(self, socket_path, bridge):
        self.socket_path = socket_path
        self.bridge = bridge
        self._local = threading.local()

    @property
    def api(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(endpoint=self.socket_path)
        return client.api

    def wait(self, response, timeout=120):
        body = response.json()
        if body.get("type") != "async":
            return body.get("metadata")
        operation = body["operation"].rsplit("/", 1)[-1]
        result = self.api.operations[operation].wait.get(params={"timeout": timeout}).json()["metadata"]
        if result["status_code"] != 200:
            raise RuntimeError(f"Incus operation failed: {result.get('err') or result.get('status')}")
        return result.get("metadata")

    def instances(self):
        return self.api.instances.get(params={"recursion": 1}).json()["metadata"]

    def instance(self, name):
        return self.api.instances[name].get(params={"recursion": 1}).json()["metadata"]

    def leases(self):
        return self.api.networks[self.bridge].leases.get().json()["metadata"]

    def list_and_leases(self):
        return self.instances(), self.leases()

    def exec(self, name, argv):
        """What the service's exec does, bare: POST exec with websockets, connect stdin, stdout,
        stderr and control, end stdin, read both outputs to their end, wait for the operation."""
        body = {"command": argv, "wait-for-websocket": True, "interactive": False,
                "environment": {"HOME": "/root", "USER": "root", "LANG": "C.UTF-8"}}
        response = self.api.instances[name]["exec"].post(json=body)
        answer = response.json()
        operation = answer["operation"].rsplit("/", 1)[-1]
        with ExecStreams(self.socket_path, operation, answer["metadata"]["metadata"]["fds"]) as streams:
            streams.send_stdin(b"")
            streams.drain(time.monotonic() + 120, 1024 * 1024)
            metadata = self.wait(response)
        return metadata.get("return")

    def create(self, name, image="busybox", start=True, devices=None, config=None):
        body = {"name": name, "type": "container", "source": {"type": "image", "alias": image}, "start": start,
                "devices": devices or {}, "config": config or {}}
        self.wait(self.api.instances.post(json=body))

    def free_addresses(self):
        """The addresses the service could pin (outside the bridge's dynamic DHCP range), lowest
        first, that neither Incus nor dnsmasq's own file leases."""
        network = BridgeNetwork.from_incus(self.api.networks[self.bridge].get().json()["metadata"])
        leases = self.api.networks[self.bridge].leases.get().json()["metadata"]
        in_file = dhcp_leases.read(dhcp_leases.lease_file(self.socket_path, self.bridge))
        used = used_ipv4(network, leases) | {lease.address for lease in in_file}
        return [address for address in network.pinnable() if address not in used]

    def pinned_nic(self, address):
        return {"eth0": {"type": "nic", "network": self.bridge, "name": "eth0", "ipv4.address": address}}

    def guarded_nic(self):
        """The NIC the service writes at create (a free address pinned, MAC/IPv4 filtering, port
        isolation), so that the floor's create does the same device work. Chosen untimed."""
        # From the top: the service's create, timed next to this one, takes from the bottom.
        nic = self.pinned_nic(self.free_addresses()[-1])
        nic["eth0"].update({"security.mac_filtering": "true", "security.ipv4_filtering": "true",
                            "security.port_isolation": "true"})
        return nic

    def change_state(self, name, action, force=False):
        self.wait(self.api.instances[name].state.put(json={"action": action, "force": force, "timeout": 30}))

    def delete(self, name):
        """What the service's delete does: forced stop, then delete."""
        with contextlib.suppress(Exception):
            self.change_state(name, "stop", force=True)
        self.wait(self.api.instances[name].delete())


# -- kernel rules (python-iptables, in this process) ------------------------------------------

@contextlib.contextmanager
def xtables_locked():
    fd = os.open(XTABLES_LOCK, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tag(rule):
    return next((m.comment for m in rule.matches if m.name == "comment"), None)


def batch_add(forwards, tag_prefix=BENCH_TAG):
    """Many rules in one table commit (one rewrite of the table instead of one per rule)."""
    NatTable(tag_prefix).add_many(forwards)


def remove_bench_rules(keep=lambda tag: False):
    """Every rule tagged with BENCH_TAG (nat PREROUTING and filter FORWARD, legacy and nft)."""
    import iptc

    removed = 0
    with xtables_locked():
        for table_name, chain_name in (("nat", CHAIN), ("filter", "FORWARD")):
            table = iptc.Table(table_name)
            table.refresh()
            table.autocommit = False
            try:
                chain = iptc.Chain(table, chain_name)
                for rule in chain.rules:
                    tag = _tag(rule)
                    if tag and tag.startswith(BENCH_TAG) and not keep(tag):
                        chain.delete_rule(rule)
                        removed += 1
                table.commit()
            finally:
                table.autocommit = True
    iptables_nft = shutil.which("iptables-nft")
    if iptables_nft:
        listing = subprocess.run([iptables_nft, "-w", "-S", "FORWARD"], capture_output=True, text=True).stdout
        for line in listing.splitlines():
            if BENCH_TAG in line and line.startswith("-A "):
                subprocess.run([iptables_nft, "-w", "-D", *shlex.split(line)[1:]], capture_output=True)
                removed += 1
    return removed


class RawNat:
    """The floor of a NAT change: one python-iptables append / exact delete with the xtables lock,
    one read of the table and one write (no autocommit, which would read the table again)."""

    def __init__(self):
        import iptc

        self.iptc = iptc
        self.nat = NatTable(BENCH_TAG + "floor-")

    def _change(self, forwards, method):
        with xtables_locked():
            table = self.iptc.Table("nat")
            table.autocommit = False
            try:
                table.refresh()
                chain = self.iptc.Chain(table, CHAIN)
                for forward in forwards:
                    getattr(chain, method)(self.nat.rule_for(forward))
                table.commit()
            finally:
                table.close()
                table.autocommit = True

    def add(self, forward):
        self._change([forward], "append_rule")

    def delete(self, forward):
        self._change([forward], "delete_rule")

    def add_many(self, forwards):
        """What a sale's rules cost at the floor: one read and one write of the table for all."""
        self._change(forwards, "append_rule")

    def delete_many(self, forwards):
        self._change(forwards, "delete_rule")
