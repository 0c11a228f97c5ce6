"""Per-container byte counters in an nftables table of the service's own, ``inet incus_api_traffic``.

Why nftables and not rules in the legacy tables the NAT rules use: a legacy chain is walked rule
by rule, so with one rule per container and direction every forwarded packet pays for every
container on the host. Here each direction is one rule whose named counter is looked up in a map
by the container's address (a hash), so a packet costs the same at 2 containers and at 2,000, and
one ``nft -j list table`` reads every counter at once::

    table inet incus_api_traffic {
        counter tx_web1 {}  counter rx_web1 {}          # one pair per container
        map tx { type ipv4_addr : counter; elements = { 10.88.0.5 : "tx_web1" } }
        map rx { type ipv4_addr : counter; elements = { 10.88.0.5 : "rx_web1" } }
        chain forward {
            type filter hook forward priority filter + 10; policy accept;
            iifname "incusbr0" oifname != "incusbr0" counter name ip saddr map @tx
            oifname "incusbr0" iifname != "incusbr0" counter name ip daddr map @rx
        }
    }

Only forwarded packets that cross the bridge's edge are counted: the internet and the clients of
a forward (DNAT happens before the forward hook, so their packets carry the container's address).
Traffic between containers stays on the bridge (never forwarded), and traffic with the host's
own services (DNS, DHCP) goes through input/output, not forward. The chain runs after the filter
tables (priority filter + 10), so what a firewall drops is not counted; it never drops anything.
A received packet is counted before it reaches the container: the sampler caps what it bills as
received by what the container's veth delivered (``service/traffic/sampler.py``).

``epoch`` names the kernel's copy of the counters (the boot and the table's handle): when it
changes (a reboot, ``nft flush ruleset``, the table deleted), every counter started again at zero.
"""
import json
import re
import subprocess
import threading

TABLE = "incus_api_traffic"
FAMILY = "inet"
# Container names are Incus instance names (letters, digits, hyphens): safe in a quoted nft name.
COUNTER_NAME = re.compile(r"[A-Za-z0-9-]{1,63}")
BOOT_ID = "/proc/sys/kernel/random/boot_id"

_table_lock = threading.Lock()  # one lock per kernel table: a read-and-change runs alone


class NftError(Exception):
    """``nft`` failed (missing, or the kernel refused): ``reason`` is what it said."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Snapshot:
    """What one read of the table found: ``epoch``, ``counters`` ``{name: (rx, tx)}`` and
    ``addresses`` ``{name: address}`` (the tx map's elements); ``intact`` is False when the
    table is missing or not as this module writes it."""

    def __init__(self, epoch=None, counters=None, addresses=None, intact=False):
        self.epoch = epoch
        self.counters = counters or {}
        self.addresses = addresses or {}
        self.intact = intact


def _run(args, script=None):
    try:
        done = subprocess.run(["nft", *args], input=script, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise NftError("the nft command is missing (Debian package nftables)") from None
    except subprocess.TimeoutExpired:
        raise NftError("nft did not answer within 30 s") from None
    if done.returncode != 0:
        raise NftError(done.stderr.strip() or f"nft exited with {done.returncode}")
    return done.stdout


def _boot_id():
    try:
        with open(BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return "unknown-boot"


class NftCounters:
    def __init__(self, bridge="incusbr0"):
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", bridge):
            raise ValueError(f"not a bridge name: {bridge!r}")
        self.bridge = bridge

    # -- reading ----------------------------------------------------------------------------

    def read(self):
        """One ``nft -j list table``: a ``Snapshot`` (not intact when the table is missing)."""
        with _table_lock:
            return self._read()

    def _read(self):
        try:
            listing = json.loads(_run(["-j", "list", "table", FAMILY, TABLE]))["nftables"]
        except NftError:
            return Snapshot()
        handle, rx, tx, addresses, maps, rules = None, {}, {}, {}, set(), 0
        for item in listing:
            if "table" in item:
                handle = item["table"].get("handle")
            elif "counter" in item:
                name = item["counter"]["name"]
                direction, _, container = name.partition("_")
                (rx if direction == "rx" else tx)[container] = item["counter"].get("bytes", 0)
            elif "map" in item:
                maps.add(item["map"]["name"])
                if item["map"]["name"] == "tx":
                    for address, counter in item["map"].get("elem") or []:
                        addresses[counter.partition("_")[2]] = address
            elif "rule" in item and item["rule"].get("chain") == "forward":
                rules += 1
        counters = {name: (rx.get(name, 0), tx.get(name, 0)) for name in set(rx) | set(tx)}
        intact = handle is not None and maps == {"rx", "tx"} and rules == 2
        return Snapshot(f"{_boot_id()}/{handle}", counters, addresses, intact)

    # -- changing ---------------------------------------------------------------------------

    def ensure(self, snapshot):
        """Create the table when ``snapshot`` found it missing or broken (a broken one is replaced,
        its counters with it): the fresh ``Snapshot``, or ``snapshot`` when it was intact."""
        if snapshot.intact:
            return snapshot
        with _table_lock:
            script = f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n" + self._table_script()
            _run(["-f", "-"], script)
            return self._read()

    def _table_script(self):
        bridge = self.bridge
        return (
            f"table {FAMILY} {TABLE} {{\n"
            "  map tx { type ipv4_addr : counter; }\n"
            "  map rx { type ipv4_addr : counter; }\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter + 10; policy accept;\n"
            f'    iifname "{bridge}" oifname != "{bridge}" counter name ip saddr map @tx\n'
            f'    oifname "{bridge}" iifname != "{bridge}" counter name ip daddr map @rx\n'
            "  }\n"
            "}\n"
        )

    def apply(self, snapshot, wanted):
        """Make the table count ``wanted`` ``{name: address or None}``: a counter pair for each
        name (kept, with its value, while the name is wanted), a map element for each address.
        Names no longer wanted lose their counters. One ``nft -f`` transaction; nothing when the
        table already matches."""
        for name, address in wanted.items():
            if not COUNTER_NAME.fullmatch(name) or (address is not None and not _is_ipv4(address)):
                raise ValueError(f"cannot count {name!r} at {address!r}")
        removals, additions = [], []  # every element out before any goes in: an address may change hands
        for name in sorted(set(snapshot.counters) - set(wanted)):
            removals += self._unmap(name, snapshot.addresses.get(name))
            removals += [f'delete counter {FAMILY} {TABLE} rx_{name}', f'delete counter {FAMILY} {TABLE} tx_{name}']
        for name, address in sorted(wanted.items()):
            if name not in snapshot.counters:
                additions += [f"add counter {FAMILY} {TABLE} rx_{name}", f"add counter {FAMILY} {TABLE} tx_{name}"]
            old = snapshot.addresses.get(name)
            if old != address:
                removals[:0] = self._unmap(name, old)
                if address is not None:
                    additions += [f'add element {FAMILY} {TABLE} {d} {{ {address} : "{d}_{name}" }}' for d in ("tx", "rx")]
        lines = removals + additions
        if lines:
            with _table_lock:
                _run(["-f", "-"], "\n".join(lines) + "\n")
        return len(lines)

    def add(self, name, address):
        """Count a new container at once: its counter pair (kept when it exists) and its
        address in the maps, in one ``nft`` call that needs no read. Fails (``NftError``) when
        the table is missing or the address is mapped already; ``apply`` then sets it right."""
        if not COUNTER_NAME.fullmatch(name) or not _is_ipv4(address):
            raise ValueError(f"cannot count {name!r} at {address!r}")
        lines = [f"add counter {FAMILY} {TABLE} {d}_{name}" for d in ("rx", "tx")]
        lines += [f'add element {FAMILY} {TABLE} {d} {{ {address} : "{d}_{name}" }}' for d in ("tx", "rx")]
        with _table_lock:
            _run(["-f", "-"], "\n".join(lines) + "\n")

    @staticmethod
    def _unmap(name, address):
        if address is None:
            return []
        return [f"delete element {FAMILY} {TABLE} {d} {{ {address} }}" for d in ("tx", "rx")]

    def remove(self):
        """Delete the table (``python3 -m incus_api traffic remove``; tests)."""
        with _table_lock:
            _run(["-f", "-"], f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")


def _is_ipv4(text):
    parts = str(text).split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)
