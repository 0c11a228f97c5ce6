"""NAT adapter: our DNAT rules in the kernel's ``nat`` table, through python-iptables. No Flask.

python-iptables talks to libiptc, i.e. the *legacy* iptables tables: ``iptables-legacy -t nat -S``
lists these rules, while Debian 12's default ``iptables`` (nf_tables) does not show them. Both
take effect in the kernel.

libiptc reads the whole table, edits it in memory and writes it back, and python-iptables caches
the table per process. So every use holds one process-wide lock plus the ``xtables.lock`` file
lock (shared with the ``iptables`` commands and our other processes), and refreshes first.
"""
import contextlib
import fcntl
import os
import threading
from dataclasses import dataclass

from .exceptions import NatError
from .i18n import N_

DEFAULT_TAG_PREFIX = "incus-api-web:"
CHAIN = "PREROUTING"
XTABLES_LOCK = "/run/xtables.lock"

_lock = threading.RLock()


@dataclass(frozen=True)
class Forward:
    """One DNAT rule: ``host_port``/``protocol`` on any local address -> ``container_ip:container_port``."""

    rule_id: int
    protocol: str
    host_port: int
    container_ip: str
    container_port: int


def rule_id_from_tag(comment, prefix):
    if comment and comment.startswith(prefix):
        suffix = comment[len(prefix):]
        if suffix.isdigit():
            return int(suffix)
    return None


def _iptc():
    # Imported on first use: loading libiptc needs the iptables libraries, and the app (and its
    # unit tests) must start without them.
    import iptc

    return iptc


class NatTable:
    """Our rules are those whose comment is ``<tag_prefix><rule id>``; every other rule is left alone."""

    def __init__(self, tag_prefix=DEFAULT_TAG_PREFIX):
        self.tag_prefix = tag_prefix

    def tag(self, forward):
        return f"{self.tag_prefix}{forward.rule_id}"

    @contextlib.contextmanager
    def _locked_chain(self):
        iptc = _iptc()
        with _lock:
            fd = os.open(XTABLES_LOCK, os.O_RDONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    table = iptc.Table(iptc.Table.NAT)
                    table.refresh()
                    yield iptc, iptc.Chain(table, CHAIN)
                except iptc.IPTCError as exc:
                    raise NatError(N_("The kernel refused the NAT rule change: {reason}"), reason=str(exc)) from exc
            finally:
                os.close(fd)

    def _build(self, iptc, forward):
        rule = iptc.Rule()
        rule.protocol = forward.protocol
        port_match = rule.create_match(forward.protocol)
        port_match.dport = str(forward.host_port)
        # Only packets addressed to this host: a container talking to some other machine's port
        # must not be redirected.
        local = rule.create_match("addrtype")
        local.dst_type = "LOCAL"
        comment = rule.create_match("comment")
        comment.comment = self.tag(forward)
        target = rule.create_target("DNAT")
        target.to_destination = f"{forward.container_ip}:{forward.container_port}"
        return rule

    def add(self, forward):
        with self._locked_chain() as (iptc, chain):
            chain.append_rule(self._build(iptc, forward))

    def remove(self, forward):
        """Remove our rule for ``forward``; False when the kernel had none (e.g. after a reboot)."""
        with self._locked_chain() as (iptc, chain):
            try:
                chain.delete_rule(self._build(iptc, forward))  # exact match, done in libiptc
                return True
            except iptc.IPTCError:
                pass
            # Not found as recorded (address changed, edited by hand): find it by its tag.
            removed = False
            for rule in chain.rules:
                if self._tag_of(rule) == self.tag(forward):
                    chain.delete_rule(rule)
                    removed = True
            return removed

    def tagged(self):
        """Our rules in the kernel: ``{rule_id: Forward}`` (a rule id twice keeps the last)."""
        found = {}
        with self._locked_chain() as (iptc, chain):
            for rule in chain.rules:
                rule_id = rule_id_from_tag(self._tag_of(rule), self.tag_prefix)
                if rule_id is None:
                    continue
                target = rule.target.to_destination or ""
                container_ip, _, container_port = target.rpartition(":")
                port_match = next((m for m in rule.matches if m.name in ("tcp", "udp")), None)
                found[rule_id] = Forward(
                    rule_id=rule_id,
                    protocol=rule.protocol,
                    host_port=int(port_match.dport) if port_match else 0,
                    container_ip=container_ip,
                    container_port=int(container_port or 0),
                )
        return found

    @staticmethod
    def _tag_of(rule):
        for match in rule.matches:
            if match.name == "comment":
                return match.comment
        return None
