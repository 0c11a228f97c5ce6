"""Sockets of the host's own processes, read from /proc (the network namespace of this service).

Used to refuse a forward on a host port that a host program already serves: the DNAT rule would
take that port's traffic away from it. No Flask, no Incus.
"""
import os
from dataclasses import dataclass

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"  # a bound UDP socket waiting for datagrams from anyone
TABLES = {"tcp": (("/proc/net/tcp", "/proc/net/tcp6"), TCP_LISTEN),
          "udp": (("/proc/net/udp", "/proc/net/udp6"), UDP_UNCONNECTED)}


@dataclass(frozen=True)
class Listener:
    protocol: str
    port: int
    inode: int


def listeners(protocol, proc_root="/proc"):
    """``{port: Listener}`` of every socket listening for ``protocol`` on any address of the host."""
    paths, state = TABLES[protocol]
    found = {}
    for path in paths:
        try:
            with open(proc_root + path[len("/proc"):], encoding="ascii") as handle:
                next(handle, None)  # header
                for line in handle:
                    fields = line.split()
                    if len(fields) < 10 or fields[3] != state:
                        continue
                    port = int(fields[1].rpartition(":")[2], 16)
                    found.setdefault(port, Listener(protocol, port, int(fields[9])))
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
    return found


def program_of(inode, proc_root="/proc"):
    """``"name (pid N)"`` of a process holding the socket ``inode``, or None (it may have gone)."""
    target = f"socket:[{inode}]"
    for pid in os.listdir(proc_root):
        if not pid.isdigit():
            continue
        fd_dir = f"{proc_root}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # the process ended, or is not ours to read
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") != target:
                    continue
                with open(f"{proc_root}/{pid}/comm", encoding="utf-8", errors="replace") as handle:
                    return f"{handle.read().strip()} (pid {pid})"
            except OSError:  # that descriptor was closed meanwhile (a busy process): look at the next
                continue
    return None
