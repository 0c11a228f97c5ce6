"""The one fake Incus of the unit tests: the methods of ``incus_api.incus.client.Incus`` that the
services under test call, with the same names, signatures and exceptions, over plain dicts.

- ``add(name, ...)``: an instance (status, config with its ``volatile.uuid``, devices), as if
  Incus had it; ``create`` makes one the way Incus does (from a known image, with the profile's
  devices expanded under its own).
- ``files[name][path]``: what ``make_directory`` and ``push_file`` left in an instance
  (``{"type", "mode", "uid", "gid"}`` and a file's ``content``); a parent must exist first.
- ``execs``: every ``exec`` as ``Exec(name, argv, stdin)``; ``exec_result`` is what it answers:
  an ``ExecResult``, an exception to raise, or a function of the ``Exec`` returning either.
- ``consoles`` / ``ended``: the console streams ``open_console`` gave and ``end_console`` ended.
- ``failing[method] = exception``: that method raises it (Incus refusing), after the lookups.
- ``deleted`` / ``reads``: the instances deleted, and every read of one (``(method, name)``).
"""
import queue
import uuid
from dataclasses import dataclass

from incus_api.exceptions import IncusError, NotFound
from incus_api.incus.exec import ExecResult

BRIDGE = "incusbr0"
GATEWAY = "10.10.10.1/24"
DEFAULT_PROFILE = {
    "name": "default",
    "devices": {"eth0": {"type": "nic", "network": BRIDGE, "name": "eth0"},
                "root": {"type": "disk", "path": "/", "pool": "default"}},
}


def incus_error(reason):
    """An error as the client raises it for a refusal of the daemon's."""
    return IncusError("Incus error: {reason}", reason=reason)


@dataclass(frozen=True)
class Exec:
    name: str
    argv: list
    stdin: bytes


class FakeConsole:
    """A console stream: ``output`` is what the shell writes (``b""``: it ended), ``typed`` and
    ``sizes`` what reached it."""

    def __init__(self, name, columns, rows):
        self.name, self.size = name, (columns, rows)
        self.typed, self.sizes = [], []
        self.output = queue.Queue()

    def read(self):
        return self.output.get()

    def write(self, data):
        self.typed.append(data)
        return True

    def resize(self, columns, rows):
        self.sizes.append((columns, rows))
        return True


class FakeIncus:
    def __init__(self):
        self.by_name = {}  # name -> instance, as GET /1.0/instances/<name> answers it
        self.image_list = []  # as GET /1.0/images?recursion=1
        self.aliases = {}  # alias -> fingerprint
        self.profiles = {"default": DEFAULT_PROFILE}
        self.networks = {BRIDGE: {"name": BRIDGE, "config": {"ipv4.address": GATEWAY}}}
        self.files = {}  # instance name -> {path: {"type", "mode", "uid", "gid"[, "content"]}}
        self.execs = []
        self.exec_result = ExecResult(exit_code=0, stdout="", stderr="")
        self.consoles, self.ended = [], []
        self.failing = {}
        self.deleted = []
        self.reads = []

    # -- what the test puts there ---------------------------------------------------------

    def add(self, name, status="Running", config=None, devices=None, volatile_uuid=None, profiles=("default",)):
        devices = dict(devices or {})
        expanded = {}
        for profile in profiles:
            expanded.update(self.profile(profile)["devices"])
        expanded.update(devices)
        self.by_name[name] = {
            "name": name, "type": "container", "status": status, "profiles": list(profiles),
            "config": {"volatile.uuid": volatile_uuid or str(uuid.uuid4()), **(config or {})},
            "devices": devices, "expanded_devices": expanded, "created_at": "2025-01-01T00:00:00Z",
        }
        self.files[name] = {"/": {"type": "directory", "mode": 0o755, "uid": 0, "gid": 0}}
        return self.by_name[name]

    def add_image(self, fingerprint, alias=None):
        self.image_list.append({"fingerprint": fingerprint, "aliases": [{"name": alias}] if alias else [],
                                "properties": {}, "type": "container"})
        if alias:
            self.aliases[alias] = fingerprint

    def _fail(self, method):
        if method in self.failing:
            raise self.failing[method]

    def _get(self, name):
        if name not in self.by_name:
            raise NotFound("Container {name} does not exist", name=name)
        return self.by_name[name]

    # -- instances ------------------------------------------------------------------------

    def instance_config(self, name):
        self.reads.append(("instance_config", name))
        return dict(self._get(name))

    def exists(self, name):
        self.reads.append(("exists", name))
        return name in self.by_name

    def instances(self):
        self.reads.append(("instances", None))
        return [dict(instance) for instance in self.by_name.values()]

    def network(self, name):
        if name not in self.networks:
            raise NotFound("Not found in Incus: {reason}", reason="Network not found")
        return self.networks[name]

    def profile(self, name):
        if name not in self.profiles:
            raise NotFound("Not found in Incus: {reason}", reason="Profile not found")
        return self.profiles[name]

    def leases(self, network):
        """Incus lists every pinned address as a static lease."""
        self.network(network)
        return [{"hostname": name, "address": device["ipv4.address"], "type": "static"}
                for name, instance in self.by_name.items()
                for device in instance["expanded_devices"].values()
                if device.get("network") == network and device.get("ipv4.address")]

    def create(self, name, source, start=True, devices=None, config=None, profiles=None):
        if name in self.by_name:
            raise incus_error(f'Instance "{name}" already exists')
        fingerprint = self.aliases.get(source.get("alias")) or source.get("fingerprint")
        if fingerprint not in [image["fingerprint"] for image in self.image_list]:
            raise incus_error("Image not found")
        self._fail("create")
        self.add(name, status="Running" if start else "Stopped", devices=devices,
                 config={**(config or {}), "volatile.base_image": fingerprint},
                 profiles=tuple(profiles) if profiles is not None else ("default",))

    def change_state(self, name, action, force=False, timeout=30):
        instance = self._get(name)
        self._fail("change_state")
        if action == "stop" and instance["status"] == "Stopped":
            raise incus_error("The instance is already stopped")
        instance["status"] = {"start": "Running", "restart": "Running", "stop": "Stopped",
                              "freeze": "Frozen", "unfreeze": "Running"}[action]

    def delete(self, name):
        instance = self._get(name)
        self._fail("delete")
        if instance["status"] != "Stopped":
            raise incus_error("Instance is running")
        del self.by_name[name]
        del self.files[name]
        self.deleted.append(name)

    def exec(self, name, argv, timeout, stdin=b"", output_limit=None):
        instance = self._get(name)
        self._fail("exec")
        if instance["status"] != "Running":
            raise incus_error("Instance is not running")
        call = Exec(name, list(argv), stdin)
        self.execs.append(call)
        result = self.exec_result(call) if callable(self.exec_result) else self.exec_result
        if isinstance(result, BaseException):
            raise result
        return result

    def open_console(self, name, columns, rows):
        if self._get(name)["status"] != "Running":
            raise incus_error("Instance is not running")
        console = FakeConsole(name, columns, rows)
        self.consoles.append(console)
        return console

    def end_console(self, console):
        self.ended.append(console)
        console.output.put(b"")  # its websockets closed: a read in the relay ends
        return 1

    # -- files ----------------------------------------------------------------------------

    def _parent_exists(self, name, path):
        self._get(name)
        parent = path.rsplit("/", 1)[0] or "/"
        if self.files[name].get(parent, {}).get("type") != "directory":
            raise NotFound("Not found in Incus: {reason}", reason="No such file or directory")

    def push_file(self, name, path, content, mode=0o600, uid=0, gid=0):
        self._parent_exists(name, path)
        self._fail("push_file")
        self.files[name][path] = {"type": "file", "content": bytes(content), "mode": mode, "uid": uid, "gid": gid}

    def make_directory(self, name, path, mode=0o700, uid=0, gid=0):
        self._parent_exists(name, path)
        self._fail("make_directory")
        self.files[name].setdefault(path, {"type": "directory", "mode": mode, "uid": uid, "gid": gid})

    # -- images ---------------------------------------------------------------------------

    def images(self):
        return [dict(image) for image in self.image_list]

    def image_alias(self, alias):
        if alias not in self.aliases:
            raise NotFound("Not found in Incus: {reason}", reason="Image alias not found")
        return {"name": alias, "target": self.aliases[alias]}

    def delete_image(self, fingerprint):
        if fingerprint not in [image["fingerprint"] for image in self.image_list]:
            raise NotFound("Not found in Incus: {reason}", reason="Image not found")
        self._fail("delete_image")
        self.image_list = [image for image in self.image_list if image["fingerprint"] != fingerprint]
        self.aliases = {alias: target for alias, target in self.aliases.items() if target != fingerprint}
