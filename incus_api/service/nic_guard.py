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
import threading
import time

from ..exceptions import BadInput, NotFound
from ..host import leases as dhcp_leases
from ..i18n import N_
from .addresses import (
    BridgeNetwork,
    assigned_ipv4,
    bridge_nic,
    ipv4_by_hwaddr,
    used_ipv4,
)

log = logging.getLogger(__name__)

LEASE_WAIT_SECONDS = 5
# The bridge's subnet changes only when an admin reconfigures it; leases when a container starts.
NETWORK_CACHE_SECONDS = 30
LEASES_CACHE_SECONDS = 2


class _Cached:
    """One value read through ``load`` at most every ``seconds`` (shared by the server's threads)."""

    def __init__(self, load, seconds):
        self.load = load
        self.seconds = seconds
        self._value = None
        self._read_at = None
        self._lock = threading.Lock()

    def get(self, fresh=False):
        with self._lock:
            if fresh or self._read_at is None or time.monotonic() - self._read_at > self.seconds:
                self._value = self.load()
                self._read_at = time.monotonic()
            return self._value


class NicGuard:
    def __init__(self, incus, bridge, isolate=True, lease_file=None):
        self.incus = incus
        self.bridge = bridge
        self.isolate = isolate
        self.lease_file = lease_file  # dnsmasq's own file: it also holds leases whose holder is gone
        self._allocating = threading.Lock()
        self._pending = set()  # addresses chosen for creates that Incus has not recorded yet
        self._network = _Cached(self._read_network, NETWORK_CACHE_SECONDS)
        self._leases = _Cached(self._read_leases, LEASES_CACHE_SECONDS)
        self._nic_names = {}  # profiles -> (read at, NIC device name)
        self._recent = {}  # address -> when a create that pinned it ended (see new_nic)

    FILTERS = {"security.mac_filtering": "true", "security.ipv4_filtering": "true"}
    ISOLATION = {"security.port_isolation": "true"}

    @property
    def security(self):
        """The NIC keys every guarded container carries."""
        return {**self.FILTERS, **(self.ISOLATION if self.isolate else {})}

    def network(self):
        return self._network.get()

    def _read_network(self):
        network = BridgeNetwork.from_incus(self.incus.network(self.bridge))
        if network is None:
            raise BadInput(N_("The bridge {bridge} has no IPv4 subnet: containers get no address from it"), bridge=self.bridge)
        return network

    def is_guarded(self, device):
        return bool(device.get("ipv4.address")) and all(device.get(key) == value for key, value in self.security.items())

    # -- create -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def new_nic(self, profiles=None):
        """``{device name: NIC device}`` for a new container (made with ``profiles``, by default
        Incus's ``default``): a free address of the bridge pinned,
        the filters on. The address stays reserved while the block creates the container, so
        that two creates never choose the same one (Incus refuses a duplicate ``ipv4.address``
        only when the first is already recorded: two concurrent creates both pass its check)."""
        network = self.network()
        with self._allocating:
            # Incus's leases hold every pinned address ("static", stopped instances' too) and the
            # dynamic leases of existing instances; dnsmasq's file adds those whose holder is gone.
            # The leases may be up to LEASES_CACHE_SECONDS old: what this service pinned since
            # is in ``_recent`` (kept twice that long), what it is pinning now in ``_pending``.
            now = time.monotonic()
            self._recent = {a: t for a, t in self._recent.items() if now - t <= 2 * LEASES_CACHE_SECONDS}
            used = used_ipv4(network, self._leases.get()) | self._pending | set(self._recent)
            if self.lease_file:
                used |= dhcp_leases.leased_addresses(self.lease_file)
            address = network.first_free(used)
            if address is None:
                raise BadInput(N_("The bridge {bridge} has no free IPv4 address left"), bridge=self.bridge)
            self._pending.add(address)
        try:
            device_name = self._profile_nic_name(tuple(profiles or ["default"]))
            yield {device_name: {"type": "nic", "network": self.bridge, "name": device_name,
                                 "ipv4.address": address, **self.security}}
        finally:
            with self._allocating:
                self._pending.discard(address)
                self._recent[address] = time.monotonic()

    def _profile_nic_name(self, profiles):
        """The name the profiles give their NIC on the bridge (the last profile wins, as in
        Incus), so that ours replaces it rather than adding a second one. Cached like the
        network: a profile's answer lists every instance using it (24 ms with 200)."""
        cached = self._nic_names.get(profiles)
        if cached is None or time.monotonic() - cached[0] > NETWORK_CACHE_SECONDS:
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

    def address_of(self, name, wait=True):
        """``(instance, address)``: the address Incus assigned to the container's NIC on the bridge.

        Waits a few seconds for a lease right after a start when the address is not pinned.
        """
        network = self.network()
        deadline = time.monotonic() + (LEASE_WAIT_SECONDS if wait else 0)
        retry = False
        while True:
            instance = self.incus.instance_config(name)
            if bridge_nic(instance, self.bridge)[1] is None:
                raise BadInput(N_("Container {name} has no NIC on the managed bridge {bridge}"), name=name, bridge=self.bridge)
            address = self.assigned(instance, network, fresh=retry)
            if address or instance.get("status") != "Running" or time.monotonic() > deadline:
                return instance, address
            retry = True
            time.sleep(0.2)

    def assigned(self, instance, network=None, fresh=False):
        """The address Incus assigned to this instance's NIC on the bridge, or None; the leases
        are read only for a NIC without a pinned address (``fresh``: not from the cache)."""
        network = network or self.network()
        _, device = bridge_nic(instance, self.bridge)
        if device is None:
            return None
        by_hwaddr = {} if device.get("ipv4.address") else ipv4_by_hwaddr(self._leases.get(fresh=fresh))
        return assigned_ipv4(instance, network, by_hwaddr)

    def addresses_of(self, names):
        """``{name: (instance, address)}`` for the named containers that have an assigned address
        now: two requests (the instance list and the leases), whatever the number of containers."""
        network = self.network()
        by_hwaddr = ipv4_by_hwaddr(self._leases.get(fresh=True))
        found = {}
        for instance in self.incus.instances():
            if instance["name"] in names:
                address = assigned_ipv4(instance, network, by_hwaddr)
                if address:
                    found[instance["name"]] = (instance, address)
        return found

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

    def leases_by_hwaddr(self, fresh=False):
        return ipv4_by_hwaddr(self._leases.get(fresh=fresh))

    def _read_leases(self):
        try:
            return self.incus.leases(self.bridge)
        except NotFound:
            return []
