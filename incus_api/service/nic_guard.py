"""Each container's NIC on the bridge: its address pinned by Incus, and the filters that keep a
container that is root inside from claiming what is not its own.

- ``ipv4.address``: the address the host gave it, fixed, so DHCP cannot move it and the forwards
  follow no claim of the container's;
- ``security.mac_filtering`` / ``security.ipv4_filtering``: frames and ARP answers with another
  MAC or IPv4 source than the NIC's are dropped on the bridge (no spoofing a neighbour);
- ``security.port_isolation`` (``ISOLATE_CONTAINERS``): containers cannot reach each other over
  the bridge; the host (DNS, DHCP) and the outside stay reachable.

Incus applies the address and the filters to a running container at once. Port isolation it
applies by plugging the NIC anew, which leaves a running container without its address until it
asks DHCP again; so it is set at create, and on a container that was guarded while running, the
next time the service starts it.
"""
import contextlib
import logging
import time

from .addresses import bridge_nic

log = logging.getLogger(__name__)

# A profile's NIC name changes only when an admin edits the profile.
PROFILE_CACHE_SECONDS = 30


class NicGuard:
    def __init__(self, incus, addresses, isolate=True):
        self.incus = incus
        self.addresses = addresses  # bridge.BridgeAddresses: a new container's address
        self.bridge = addresses.bridge
        self.isolate = isolate
        self._nic_names = {}  # profiles -> (read at, NIC device name)

    FILTERS = {"security.mac_filtering": "true", "security.ipv4_filtering": "true"}
    ISOLATION = {"security.port_isolation": "true"}

    @property
    def security(self):
        """The NIC keys every guarded container carries."""
        return {**self.FILTERS, **(self.ISOLATION if self.isolate else {})}

    def is_guarded(self, device):
        return bool(device.get("ipv4.address")) and all(device.get(key) == value for key, value in self.security.items())

    # -- create -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def new_nic(self, profiles=None):
        """``{device name: NIC device}`` for a new container (made with ``profiles``, by default
        Incus's ``default``): a free address of the bridge pinned (held while the block creates
        the container), the filters on."""
        with self.addresses.reserved() as address:
            device_name = self._profile_nic_name(tuple(profiles or ["default"]))
            yield {device_name: {"type": "nic", "network": self.bridge, "name": device_name,
                                 "ipv4.address": address, **self.security}}

    def _profile_nic_name(self, profiles):
        """The name the profiles give their NIC on the bridge (the last profile wins, as in
        Incus), so that ours replaces it rather than adding a second one. Cached like the
        network: a profile's answer lists every instance using it (24 ms with 200)."""
        cached = self._nic_names.get(profiles)
        if cached is None or time.monotonic() - cached[0] > PROFILE_CACHE_SECONDS:
            cached = self._nic_names[profiles] = (time.monotonic(), self._read_profile_nic_name(profiles))
        return cached[1]

    def _read_profile_nic_name(self, profiles):
        for profile_name in reversed(profiles):
            devices = self.incus.profile(profile_name).get("devices") or {}
            for device_name, device in sorted(devices.items()):
                if device.get("type") == "nic" and device.get("network") == self.bridge:
                    return device_name
        return "eth0"

    # -- existing containers ----------------------------------------------------------------

    def guard(self, name, instance, address=None):
        """Pin ``address`` on the container's NIC and put the filters on, in one change that a
        running container does not notice; port isolation too when it is not running. False when
        there was nothing to change."""
        device_name, device = bridge_nic(instance, self.bridge)
        if device is None:
            return False
        wanted = {**device, **self.FILTERS}
        if address:
            wanted["ipv4.address"] = address
        if self.isolate and instance.get("status") != "Running":
            wanted.update(self.ISOLATION)
        if wanted == device:
            return False
        devices = dict(instance.get("devices") or {})
        devices[device_name] = wanted
        self.incus.update_devices(name, devices)
        log.info("%s: NIC %s guarded: %s", name, device_name,
                 {key: value for key, value in wanted.items() if device.get(key) != value})
        return True

    def isolate_before_start(self, name):
        """A stopped container that we guarded while it ran gets its port isolation now."""
        if not self.isolate:
            return False
        instance = self.incus.instance_config(name)
        _, device = bridge_nic(instance, self.bridge)
        if device is None or instance.get("status") == "Running":
            return False
        if all(device.get(key) == value for key, value in self.FILTERS.items()):
            return self.guard(name, instance)
        return False

    def unguarded(self):
        """Names of containers on the bridge whose NIC lacks the pinned address or a filter."""
        names = []
        for instance in self.incus.instances():
            _, device = bridge_nic(instance, self.bridge)
            if device is not None and not self.is_guarded(device):
                names.append(instance["name"])
        return sorted(names)
