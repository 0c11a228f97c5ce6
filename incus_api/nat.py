"""NAT adapter: our DNAT rules in the kernel's ``nat`` table, through python-iptables. No Flask.

python-iptables talks to libiptc, i.e. the *legacy* iptables tables: ``iptables-legacy -t nat -S``
lists these rules, while Debian 12's default ``iptables`` (nf_tables) does not show them. Both
take effect in the kernel.

libiptc reads the whole table, edits it in memory and writes it back, and python-iptables caches
the table per process. So every use holds one process-wide lock plus the ``xtables.lock`` file
lock (shared with the ``iptables`` commands and our other processes), reads the table afresh,
commits once at the end (nothing when the block raised) and frees its copy of the table.
"""
import concurrent.futures
import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass

from .exceptions import NatError
from .i18n import N_

DEFAULT_TAG_PREFIX = "incus-api-web:"
CHAIN = "PREROUTING"
XTABLES_LOCK = "/run/xtables.lock"

_lock = threading.RLock()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forward:
    """One DNAT rule: ``host_port``/``protocol`` on any local address -> ``container_ip:container_port``.

    A port range forwards ``host_port..host_port_end`` to the same-size range from ``container_port``.
    """

    rule_id: int
    protocol: str
    host_port: int
    container_ip: str
    container_port: int
    host_port_end: int = None

    def __post_init__(self):
        if self.host_port_end is None:
            object.__setattr__(self, "host_port_end", self.host_port)

    @property
    def container_port_end(self):
        return self.container_port + self.host_port_end - self.host_port

    @property
    def dport(self):
        if self.host_port_end == self.host_port:
            return str(self.host_port)
        return f"{self.host_port}:{self.host_port_end}"

    @property
    def to_destination(self):
        if self.host_port_end == self.host_port:
            return f"{self.container_ip}:{self.container_port}"
        return f"{self.container_ip}:{self.container_port}-{self.container_port_end}"


class _IptcThread:
    """One long-lived thread makes every python-iptables call.

    libiptc copies the whole table into malloc'd memory on each use (megabytes with thousands of
    rules). Made from the server's request threads, each of them ends up keeping such a copy in
    its own malloc arena (about 9 MB per thread with 5,000 rules: +140 MB with 16 threads); made
    from one thread, the memory is reused. The calls were serialised by the lock anyway.
    Once the NAT calls have been quiet for a second, glibc is asked to give the freed pages back
    (trimming after every call would cost each call ~2 ms of page faults with 5,000 rules).
    """

    TRIM_AFTER_SECONDS = 1.0

    def __init__(self):
        self._executor = None
        self._ident = None
        self._start_lock = threading.Lock()
        self._last_call = 0.0
        self._trim_timer = None

    def _remember_ident(self):
        self._ident = threading.get_ident()

    def call(self, fn, *args, **kwargs):
        if threading.get_ident() == self._ident:  # already there (e.g. remove -> remove_tagged)
            return fn(*args, **kwargs)
        if self._executor is None:
            with self._start_lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="iptc", initializer=self._remember_ident)
        try:
            return self._executor.submit(fn, *args, **kwargs).result()
        finally:
            self._last_call = time.monotonic()
            self._schedule_trim()

    def _schedule_trim(self, delay=None):
        if _malloc_trim is None:
            return
        with self._start_lock:
            if self._trim_timer is None:
                self._trim_timer = threading.Timer(delay or self.TRIM_AFTER_SECONDS, self._trim)
                self._trim_timer.daemon = True
                self._trim_timer.start()

    def _trim(self):
        with self._start_lock:
            self._trim_timer = None
        quiet_for = time.monotonic() - self._last_call
        if quiet_for < self.TRIM_AFTER_SECONDS:
            self._schedule_trim(self.TRIM_AFTER_SECONDS - quiet_for)
            return
        # glibc keeps the freed table copies in its arenas (its mmap threshold grows after the
        # first big free); give those pages back to the system.
        _malloc_trim(0)


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; elsewhere there is nothing to trim this way
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()
_iptc_thread = _IptcThread()


def _on_iptc_thread(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return _iptc_thread.call(method, *args, **kwargs)

    return wrapper


def rule_id_from_tag(comment, prefix):
    if comment and comment.startswith(prefix):
        suffix = comment[len(prefix):]
        if suffix.isdigit():
            return int(suffix)
    return None


def _iptc():
    # Imported on first use: loading libiptc needs the iptables libraries, and the app (and its
    # unit tests) must start without them.
    if "iptc" not in sys.modules:
        # python-iptables imports distutils.sysconfig (for get_python_lib only). In a virtualenv,
        # setuptools' distutils shim answers that import by loading setuptools and pkg_resources:
        # +16 MB resident and ~100 ms at start-up, for nothing. Import it with the shim aside
        # (the standard library's distutils, or iptc's own fallback where there is none).
        shims = [f for f in sys.meta_path if type(f).__module__ == "_distutils_hack"]
        for finder in shims:
            sys.meta_path.remove(finder)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import iptc  # noqa: F401
        finally:
            sys.meta_path[0:0] = shims
    import iptc

    return iptc


class NatTable:
    """Our rules are those whose comment is ``<tag_prefix><rule id>``; every other rule is left alone."""

    def __init__(self, tag_prefix=DEFAULT_TAG_PREFIX):
        self.tag_prefix = tag_prefix

    def tag(self, forward):
        return f"{self.tag_prefix}{forward.rule_id}"

    @contextlib.contextmanager
    def _locked_chain(self, table_name="nat", chain_name=CHAIN):
        iptc = _iptc()
        with _lock:
            fd = os.open(XTABLES_LOCK, os.O_RDONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # One read of the table and at most one write per use. With python-iptables'
                # autocommit, every change re-reads the whole table after writing it, and the handle
                # (a copy of the table, megabytes with thousands of rules) stays allocated in
                # whichever thread used it last; so: no autocommit, commit once, free the handle.
                table = None
                try:
                    table = iptc.Table(table_name)
                    table.autocommit = False
                    table.refresh()
                    yield iptc, iptc.Chain(table, chain_name)
                    table.commit()  # libiptc writes nothing when nothing changed
                except iptc.IPTCError as exc:
                    raise NatError(N_("The kernel refused the NAT rule change: {reason}"), reason=str(exc)) from exc
                finally:
                    if table is not None:
                        if table._handle:
                            table.close()  # frees without committing: a failed block changes nothing
                        table.autocommit = True
            finally:
                os.close(fd)

    def _build(self, iptc, forward):
        rule = iptc.Rule()
        rule.protocol = forward.protocol
        port_match = rule.create_match(forward.protocol)
        port_match.dport = forward.dport
        # Only packets addressed to this host: a container talking to some other machine's port
        # must not be redirected.
        local = rule.create_match("addrtype")
        local.dst_type = "LOCAL"
        comment = rule.create_match("comment")
        comment.comment = self.tag(forward)
        target = rule.create_target("DNAT")
        target.to_destination = forward.to_destination
        return rule

    @_on_iptc_thread
    def add(self, forward):
        with self._locked_chain() as (iptc, chain):
            chain.append_rule(self._build(iptc, forward))

    @_on_iptc_thread
    def remove(self, forward):
        """Remove our rule for ``forward``; False when the kernel had none (e.g. after a reboot)."""
        with self._locked_chain() as (iptc, chain):
            try:
                chain.delete_rule(self._build(iptc, forward))  # exact match, done in libiptc
                return True
            except iptc.IPTCError:
                pass
        # Not as recorded (address changed, edited by hand): find it by its tag.
        return self.remove_tagged(forward.rule_id) > 0

    @_on_iptc_thread
    def remove_tagged(self, rule_id):
        """Remove every rule tagged with ``rule_id``; returns how many there were."""
        tag = f"{self.tag_prefix}{rule_id}"
        with self._locked_chain() as (iptc, chain):
            doomed = [rule for rule in chain.rules if self._tag_of(rule) == tag]
            for rule in doomed:
                chain.delete_rule(rule)
        return len(doomed)

    @_on_iptc_thread
    def tagged(self):
        """Our rules in the kernel, as ``Forward`` objects (a rule id may appear more than once)."""
        found = []
        with self._locked_chain() as (iptc, chain):
            for rule in chain.rules:
                rule_id = rule_id_from_tag(self._tag_of(rule), self.tag_prefix)
                if rule_id is not None:
                    found.append(self._parse(rule_id, rule))
        return found

    @staticmethod
    def _parse(rule_id, rule):
        target = rule.target.to_destination or ""
        container_ip, _, container_ports = target.rpartition(":")
        port_match = next((m for m in rule.matches if m.name in ("tcp", "udp")), None)
        dport = (port_match.dport if port_match else None) or "0"
        host_port, _, host_port_end = dport.partition(":")
        return Forward(
            rule_id=rule_id,
            protocol=rule.protocol,
            host_port=int(host_port),
            host_port_end=int(host_port_end or host_port),
            container_ip=container_ip,
            container_port=int(container_ports.partition("-")[0] or 0),
        )

    @staticmethod
    def _tag_of(rule):
        for match in rule.matches:
            if match.name == "comment":
                return match.comment
        return None

    # -- FORWARD ----------------------------------------------------------------------------

    def forward_accept_specs(self, bridge):
        """iptables arguments of our two FORWARD accept rules: DNATed connections into and out of
        the bridge. Narrow on purpose: nothing else that a DROP policy blocks gets through."""
        tag = f"{self.tag_prefix}forward"
        return [
            [direction, bridge, "-m", "conntrack", "--ctstate", "DNAT", "-m", "comment", "--comment", tag, "-j", "ACCEPT"]
            for direction in ("-o", "-i")
        ]

    def ensure_forward_accept(self, bridge):
        """Let DNATed traffic through where a FORWARD policy or rule drops it (Docker hosts).

        A packet must pass every base chain on the forward hook, so the accept rule must sit where
        the DROP is: in the legacy ``filter`` table (python-iptables) and, when the nf_tables
        ``ip filter FORWARD`` chain drops, there too, through the ``iptables-nft`` command
        (python-iptables cannot write nf_tables). Returns the backends changed.
        """
        changed = []
        if self._ensure_legacy_forward_accept(bridge):
            changed.append("legacy")
        if self._ensure_nft_forward_accept(bridge):
            changed.append("nft")
        return changed

    @_on_iptc_thread
    def _ensure_legacy_forward_accept(self, bridge):
        tag = f"{self.tag_prefix}forward"
        with self._locked_chain("filter", "FORWARD") as (iptc, chain):
            present = {(rule.out_interface, rule.in_interface) for rule in chain.rules if self._tag_of(rule) == tag}
            wanted = {(bridge, None), (None, bridge)}
            if {(o or None, i or None) for o, i in present} == wanted:
                return False
            for rule in [r for r in chain.rules if self._tag_of(r) == tag]:
                chain.delete_rule(rule)
            for out_interface, in_interface in wanted:
                rule = iptc.Rule()
                if out_interface:
                    rule.out_interface = out_interface
                if in_interface:
                    rule.in_interface = in_interface
                rule.create_match("conntrack").ctstate = "DNAT"
                rule.create_match("comment").comment = tag
                rule.create_target("ACCEPT")
                chain.insert_rule(rule)
            return True

    def _ensure_nft_forward_accept(self, bridge):
        iptables_nft = shutil.which("iptables-nft")
        if not iptables_nft or not nft_forward_drops(iptables_nft):
            return False
        changed = False
        for spec in self.forward_accept_specs(bridge):
            check = subprocess.run([iptables_nft, "-w", "-C", "FORWARD", *spec], capture_output=True)
            if check.returncode != 0:
                subprocess.run([iptables_nft, "-w", "-I", "FORWARD", "1", *spec], check=True, capture_output=True)
                changed = True
        return changed


def nft_forward_drops(iptables_nft="iptables-nft"):
    """Whether the nf_tables ``filter FORWARD`` chain drops or rejects anything."""
    listing = subprocess.run([iptables_nft, "-w", "-S", "FORWARD"], capture_output=True, text=True)
    if listing.returncode != 0:
        return False
    return any(
        line in ("-P FORWARD DROP",) or line.endswith(("-j DROP", "-j REJECT")) or " -j REJECT " in line
        for line in listing.stdout.splitlines()
    )
