"""Our DNAT rules in the kernel's legacy ``nat`` table, through python-iptables. No Flask, no Incus.

python-iptables talks to libiptc, i.e. the *legacy* iptables tables: ``iptables-legacy -t nat -S``
lists these rules, while Debian 12's default ``iptables`` (nf_tables) does not show them. Both
take effect in the kernel.

libiptc reads the whole table, edits it in memory and writes it back, and python-iptables caches
the table per process. So every use holds the lock of its table plus the ``xtables.lock`` file
lock (shared with the ``iptables`` commands and our other processes), reads the table afresh,
commits once at the end (nothing when the block raised) and frees its copy of the table.
"""
import contextlib
import fcntl
import os
import threading

from ..exceptions import NatError
from ..i18n import N_
from . import nft
from .forward import Forward, rule_id_from_tag
from .iptc_import import load_iptc
from .iptc_thread import on_iptc_thread

DEFAULT_TAG_PREFIX = "incus-api-web:"
CHAIN = "PREROUTING"
XTABLES_LOCK = "/run/xtables.lock"

# One lock per kernel table: a NAT change and a FORWARD repair may not interleave in one table.
_table_locks = {"nat": threading.RLock(), "filter": threading.RLock()}


@contextlib.contextmanager
def locked_chain(table_name, chain_name):
    """``(iptc, chain)`` of a freshly read table, committed once when the block ends without error."""
    iptc = load_iptc()
    with _table_locks[table_name]:
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


def _tag_of(rule):
    for match in rule.matches:
        if match.name == "comment":
            return match.comment
    return None


class NatTable:
    """Our rules are those whose comment is ``<tag_prefix><rule id>``; every other rule is left alone.

    A rule matches packets addressed to this host (``--dst-type LOCAL``) that did not come in from
    the containers' bridge (``! -i <bridge>``): a container's DNS and DHCP to the host, or its
    connection to any host port, are never captured by another container's forward.
    """

    def __init__(self, tag_prefix=DEFAULT_TAG_PREFIX, bridge="incusbr0"):
        self.tag_prefix = tag_prefix
        self.bridge = bridge

    @property
    def forward_tag(self):
        return f"{self.tag_prefix}forward"

    def tag(self, forward):
        return f"{self.tag_prefix}{forward.rule_id}"

    def rule_for(self, forward):
        """The python-iptables rule we write for ``forward`` (public for bench/ and exact deletes)."""
        iptc = load_iptc()
        rule = iptc.Rule()
        rule.protocol = forward.protocol
        rule.in_interface = f"!{self.bridge}"
        port_match = rule.create_match(forward.protocol)
        port_match.dport = forward.dport
        # Only packets addressed to this host: a packet passing through to another machine's port
        # must not be redirected.
        rule.create_match("addrtype").dst_type = "LOCAL"
        rule.create_match("comment").comment = self.tag(forward)
        rule.create_target("DNAT").to_destination = forward.to_destination
        return rule

    @on_iptc_thread
    def add(self, forward):
        self.add_many([forward])

    @on_iptc_thread
    def add_many(self, forwards):
        """Append rules in one write of the table."""
        with locked_chain("nat", CHAIN) as (_, chain):
            for forward in forwards:
                chain.append_rule(self.rule_for(forward))

    @on_iptc_thread
    def remove(self, forward):
        """Remove our rule for ``forward``; False when the kernel had none (e.g. after a reboot)."""
        with locked_chain("nat", CHAIN) as (iptc, chain):
            try:
                chain.delete_rule(self.rule_for(forward))  # exact match, done in libiptc
                return True
            except iptc.IPTCError:
                pass
        # Not as recorded (address changed, edited by hand, an older shape): find it by its tag.
        return self.remove_tagged(forward.rule_id) > 0

    @on_iptc_thread
    def remove_tagged(self, rule_id):
        """Remove every rule tagged with ``rule_id``; returns how many there were."""
        tag = f"{self.tag_prefix}{rule_id}"
        with locked_chain("nat", CHAIN) as (_, chain):
            doomed = [rule for rule in chain.rules if _tag_of(rule) == tag]
            for rule in doomed:
                chain.delete_rule(rule)
        return len(doomed)

    @on_iptc_thread
    def tagged(self):
        """Our rules in the kernel: ``[(rule_id, Forward or None)]`` (an id may appear more than
        once). A rule of ours in a shape we no longer write (e.g. without ``! -i <bridge>``, as
        before) comes back as None, so that a sync replaces it."""
        found = []
        with locked_chain("nat", CHAIN) as (_, chain):
            for rule in chain.rules:
                rule_id = rule_id_from_tag(_tag_of(rule), self.tag_prefix)
                if rule_id is not None:
                    current = rule.in_interface == f"!{self.bridge}"
                    found.append((rule_id, self._parse(rule_id, rule) if current else None))
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

    # -- FORWARD ----------------------------------------------------------------------------

    def ensure_forward_accept(self):
        """Let DNATed traffic through wherever a FORWARD policy or rule drops it (Docker hosts).

        The accept rules stand in both backends (legacy ``filter`` through python-iptables,
        nf_tables through ``iptables-nft``) before anything drops, so that a DROP set later leaves
        forwards working at once. Returns the backends changed.
        """
        changed = []
        if self._ensure_legacy_forward_accept():
            changed.append("legacy")
        if nft.ensure_forward_accept(self.bridge, self.forward_tag):
            changed.append("nft")
        return changed

    def remove_forward_accept(self):
        """Take our FORWARD accept rules out of both backends; how many there were."""
        return self._remove_legacy_forward_accept() + nft.remove_forward_accept(self.bridge, self.forward_tag)

    @on_iptc_thread
    def _remove_legacy_forward_accept(self):
        with locked_chain("filter", "FORWARD") as (_, chain):
            ours = [rule for rule in chain.rules if _tag_of(rule) == self.forward_tag]
            for rule in ours:
                chain.delete_rule(rule)
        return len(ours)

    @on_iptc_thread
    def _ensure_legacy_forward_accept(self):
        tag = self.forward_tag
        with locked_chain("filter", "FORWARD") as (iptc, chain):
            ours = [rule for rule in chain.rules if _tag_of(rule) == tag]
            present = {(rule.out_interface or None, rule.in_interface or None) for rule in ours}
            wanted = {(self.bridge, None), (None, self.bridge)}
            if present == wanted and len(ours) == 2:
                return False
            for rule in ours:
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
