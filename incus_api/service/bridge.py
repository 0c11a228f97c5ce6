"""The managed bridge's IPv4 addresses: its subnet, the leases, the address Incus assigned to each
container (never one the container reports), and a free address for a new container.

Leases come from Incus (its own, with every pinned address) and, for allocation, from dnsmasq's
file too (it also holds leases whose holder is gone, and those a container's root asked for under
made-up client addresses). A new container's address lies outside the bridge's dynamic DHCP
ranges, where no such lease can be (see ``addresses``).
"""
import contextlib
import logging
import threading
import time

from ..exceptions import BadInput, NotFound
from ..host import leases as dhcp_leases
from ..i18n import N_
from .addresses import BridgeNetwork, allocation_view, assigned_ipv4, bridge_nic, choose_address, ipv4_by_hwaddr

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


class BridgeAddresses:
    def __init__(self, incus, bridge, lease_file=None):
        self.incus = incus
        self.bridge = bridge
        self.lease_file = lease_file  # dnsmasq's own file: it also holds leases whose holder is gone
        self._allocating = threading.Lock()
        self._pending = set()  # addresses chosen for creates that Incus has not recorded yet
        self._recent = {}  # address -> when a create that pinned it ended (see reserved)
        self._network = _Cached(self._read_network, NETWORK_CACHE_SECONDS)
        self._leases = _Cached(self._read_leases, LEASES_CACHE_SECONDS)

    def network(self):
        return self._network.get()

    def _read_network(self):
        network = BridgeNetwork.from_incus(self.incus.network(self.bridge))
        if network is None:
            raise BadInput(N_("The bridge {bridge} has no IPv4 subnet: containers get no address from it"), bridge=self.bridge)
        return network

    def _read_leases(self):
        try:
            return self.incus.leases(self.bridge)
        except NotFound:
            return []

    def leases_by_hwaddr(self, fresh=False):
        return ipv4_by_hwaddr(self._leases.get(fresh=fresh))

    # -- a new container's address ------------------------------------------------------------

    @contextlib.contextmanager
    def reserved(self, prefer=None, own_hwaddr=None):
        """A free address of the bridge, held while the block creates the container that pins it,
        so that two creates never choose the same one (Incus refuses a duplicate
        ``ipv4.address`` only when the first is already recorded: two concurrent creates both pass
        its check). ``prefer``: that address when it is pinnable and free (a restored container's
        own; a dnsmasq lease of ``own_hwaddr``, its MAC, does not count against it)."""
        network = self.network()
        with self._allocating:
            # Incus's leases hold every pinned address ("static", stopped instances' too) and the
            # dynamic leases of existing instances; dnsmasq's file adds those whose holder is gone
            # (and made-up clients'). Which of them count: ``allocation_view``; the instances are
            # read only for a bridge without dynamic ranges, where a lease counts by its MAC.
            # The leases may be up to LEASES_CACHE_SECONDS old: what this service pinned since
            # is in ``_recent`` (kept twice that long), what it is pinning now in ``_pending``.
            now = time.monotonic()
            self._recent = {a: t for a, t in self._recent.items() if now - t <= 2 * LEASES_CACHE_SECONDS}
            file_leases = dhcp_leases.read(self.lease_file) if self.lease_file else []
            instances = None if network.dynamic else self.incus.instances()
            taken, strangers = allocation_view(network, self._leases.get(), file_leases, instances)
            held = self._pending | set(self._recent)
            # Incus's leases are read fresh for it: only the pins under way (not recent ones) count beside them.
            if prefer and self._free_to_keep(network, prefer, own_hwaddr, self._pending, file_leases):
                address, stranger = prefer, None
            else:
                address, stranger = choose_address(network, taken | held, strangers)
            if address is None:
                raise BadInput(N_("The bridge {bridge} has no free IPv4 address left"), bridge=self.bridge)
            if stranger is not None:
                self._release(network, stranger)
            self._pending.add(address)
        try:
            yield address
        finally:
            with self._allocating:
                self._pending.discard(address)
                self._recent[address] = time.monotonic()

    def _free_to_keep(self, network, address, own_hwaddr, held, file_leases):
        """Whether ``address`` may be pinned again for the NIC whose MAC is ``own_hwaddr``: pinnable,
        no instance pins it, nothing here holds it, no other MAC's dnsmasq lease has it."""
        if not network.usable(address) or (network.dynamic and network.in_dynamic_range(address)) or address in held:
            return False
        own = (own_hwaddr or "").lower()
        leases = self.incus.leases(self.bridge)  # fresh: a stale cache could hide a pin made since
        if any(lease.get("address") == address and (lease.get("hwaddr") or "").lower() != own for lease in leases):
            return False
        return not any(lease.address == address and lease.hwaddr != own for lease in file_leases)

    def _release(self, network, lease):
        """Hand back to dnsmasq a lease that counts for nothing (a client that is no instance's
        NIC, on a bridge without dynamic ranges) before its address is pinned: dnsmasq would
        not give the new container its pinned address while another client holds it."""
        try:
            dhcp_leases.release(str(network.gateway), lease)
        except (OSError, ValueError) as exc:
            log.warning("%s: could not release the lease of %s to %s: %s", self.bridge, lease.address, lease.hwaddr, exc)
            return
        log.warning("%s: released the lease of %s to %s (no container's NIC) for a new container; "
                    "give the bridge a dynamic range: incus network set %s ipv4.dhcp.ranges=%s",
                    self.bridge, lease.address, lease.hwaddr, self.bridge, network.suggested_range())

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
        """``{name: (instance, address)}`` for each named container Incus lists, ``address`` None
        when it has none assigned now (a name missing: Incus has no such container). Two requests
        (the instance list and the leases), whatever the number of containers; an error when
        Incus cannot answer (never an empty answer in its place)."""
        network = self.network()
        by_hwaddr = ipv4_by_hwaddr(self._leases.get(fresh=True))
        return {instance["name"]: (instance, assigned_ipv4(instance, network, by_hwaddr))
                for instance in self.incus.instances() if instance["name"] in names}
