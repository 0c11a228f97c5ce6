"""The host's network interfaces: what one has sent (``read``: its ``tx_bytes`` in ``/sys``) and
what one had sent when the kernel deleted it (``Departures``: the RTM_DELLINK notices of rtnetlink,
which carry the interface's last counters). No Flask, no other adapter.

The traffic sampler caps what it bills a container as received by what the host side of the
container's veth pair transmitted into it: the bytes that were delivered, after the NIC's ingress
limit (Incus's tc htb on that interface) dropped what it drops. A veth lives as long as its
container runs: when the container stops or restarts, the kernel deletes it with its counters, and
its notice is the only record of what it delivered since the last pass.

An interface is named by its key, ``<boot id>/<ifindex>``: a restarted container gets a new veth
(a new index, counters from zero) even when the name is the same (a NIC with ``host_name`` set).
"""
import collections
import ctypes
import errno
import logging
import os
import re
import socket
import struct
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

SYS_NET = "/sys/class/net"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)

RTMGRP_LINK = 1
RTM_DELLINK = 17
IFLA_IFNAME, IFLA_STATS, IFLA_STATS64 = 3, 7, 23
SO_ATTACH_FILTER, SO_RCVBUFFORCE = 26, 33
RECEIVE_BUFFER = 16 * 1024 * 1024  # the notices wait here between two passes (~1.5 kB each)
KEPT = 65536  # the most recent departures remembered


def _boot_id():
    try:
        with open(BOOT_ID) as handle:
            return handle.read().strip()
    except OSError:
        return "unknown-boot"


BOOT = _boot_id()


def key_of(ifindex):
    return f"{BOOT}/{int(ifindex)}"


@dataclass(frozen=True)
class Link:
    """An interface as read now: ``key`` (``<boot id>/<ifindex>``) and ``tx_bytes``."""

    key: str
    tx_bytes: int


def read(name, root=SYS_NET):
    """The ``Link`` of the interface ``name``, or None when there is none (or it vanished while
    read)."""
    if not name or not INTERFACE_NAME.fullmatch(name) or name in (".", ".."):
        return None
    base = os.path.join(root, name)
    try:
        with open(os.path.join(base, "ifindex")) as handle:
            ifindex = int(handle.read().strip())
        with open(os.path.join(base, "statistics", "tx_bytes")) as handle:
            tx_bytes = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return Link(key_of(ifindex), tx_bytes)


def parse_departures(data):
    """``[(ifindex, name, tx_bytes)]`` of the RTM_DELLINK messages in one netlink datagram."""
    found, offset = [], 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16 or offset + length > len(data):
            break
        if kind == RTM_DELLINK and length >= 32:
            ifindex = struct.unpack_from("=i", data, offset + 20)[0]
            name, tx_bytes, at = None, None, offset + 32
            while at + 4 <= offset + length:
                size, attribute = struct.unpack_from("=HH", data, at)
                if size < 4 or at + size > offset + length:
                    break
                payload = data[at + 4:at + size]
                attribute &= 0x3FFF  # NLA_F_NESTED / NLA_F_NET_BYTEORDER
                if attribute == IFLA_IFNAME:
                    name = payload.split(b"\0", 1)[0].decode("ascii", "replace")
                elif attribute == IFLA_STATS64 and len(payload) >= 32:
                    tx_bytes = struct.unpack_from("=4Q", payload)[3]
                elif attribute == IFLA_STATS and len(payload) >= 16 and tx_bytes is None:
                    tx_bytes = struct.unpack_from("=4I", payload)[3]
                at += (size + 3) & ~3
            if tx_bytes is not None:
                found.append((ifindex, name, tx_bytes))
        offset += (length + 3) & ~3
    return found


def _only_dellink(sock):
    """A socket filter (classic BPF) that keeps RTM_DELLINK notices only, so that the many
    RTM_NEWLINK ones (every state change of every interface) never fill the buffer."""
    wanted = int.from_bytes(struct.pack("=H", RTM_DELLINK), "big")  # ``ldh`` loads big-endian
    program = b"".join(struct.pack("=HBBI", *instruction) for instruction in (
        (0x28, 0, 0, 4),            # ldh [4]  (nlmsg_type)
        (0x15, 0, 1, wanted),       # jeq #RTM_DELLINK, keep, drop
        (0x06, 0, 0, 0x7FFFFFFF),   # keep: ret #whole
        (0x06, 0, 0, 0),            # drop: ret #0
    ))
    code = ctypes.create_string_buffer(program)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("@HP", 4, ctypes.addressof(code)))


class Departures:
    """The last counters of the interfaces the kernel deleted since this process first asked,
    by key. No thread: the kernel keeps the notices in the socket's buffer and ``drain()`` (each
    sampling pass) reads what came. One per process (``departures()``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = collections.OrderedDict()  # key -> tx_bytes
        self.lost = False  # the buffer overflowed once: some departures were never seen
        self._sock = None
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        except (OSError, AttributeError) as exc:
            log.warning("cannot watch interfaces being deleted (%s): a container's veth that goes between two "
                        "traffic passes counts nothing received since the first of them", exc)
            return
        for option, size in ((SO_RCVBUFFORCE, RECEIVE_BUFFER), (socket.SO_RCVBUF, RECEIVE_BUFFER)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
                break
            except OSError:
                continue
        try:
            _only_dellink(sock)
        except OSError as exc:
            log.info("no socket filter for rtnetlink (%s): every link notice is read", exc)
        try:
            sock.bind((0, RTMGRP_LINK))
        except OSError as exc:
            log.warning("cannot watch interfaces being deleted (%s)", exc)
            sock.close()
            return
        self._sock = sock

    def drain(self):
        """Read every notice that came since the last call."""
        if self._sock is None:
            return
        with self._lock:
            while True:
                try:
                    data = self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:  # notices were dropped; the later ones still come
                        if not self.lost:
                            log.warning("interface deletions came faster than they were read: some containers' "
                                        "last received bytes count nothing")
                        self.lost = True
                        continue
                    log.warning("reading interface deletions failed: %s", exc)
                    return
                for ifindex, _name, tx_bytes in parse_departures(data):
                    self._seen[key_of(ifindex)] = tx_bytes
                    self._seen.move_to_end(key_of(ifindex))
                    while len(self._seen) > KEPT:
                        self._seen.popitem(last=False)

    def tx_bytes(self, key):
        """What the interface ``key`` had sent when it was deleted, or None when unknown."""
        with self._lock:
            return self._seen.get(key)


_departures = None
_departures_lock = threading.Lock()


def departures():
    """The process's one ``Departures`` (opened on first use)."""
    global _departures
    with _departures_lock:
        if _departures is None:
            _departures = Departures()
        return _departures


class HostLinks:
    """What the sampler asks the host: ``read(name)``, ``drain()``, ``departed(key)``."""

    def __init__(self):
        self.departures = departures()

    def read(self, name):
        return read(name)

    def drain(self):
        self.departures.drain()

    def departed(self, key):
        return self.departures.tx_bytes(key)
