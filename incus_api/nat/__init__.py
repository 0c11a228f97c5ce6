"""The kernel adapter: our DNAT rules and FORWARD accept rules. No Flask, no Incus.

- ``forward``: the value a rule stands for;
- ``legacy``: the rules in the legacy tables (python-iptables), one lock per table;
- ``nft``: the FORWARD accept rules in nf_tables (``iptables-nft``);
- ``iptc_thread``, ``iptc_import``: how python-iptables is loaded and called.
"""
from .forward import Forward, rule_id_from_tag
from .legacy import CHAIN, DEFAULT_TAG_PREFIX, XTABLES_LOCK, NatTable, locked_chain
from .nft import forward_drops, iptables_backend

__all__ = ["CHAIN", "DEFAULT_TAG_PREFIX", "XTABLES_LOCK", "Forward", "NatTable", "forward_drops",
           "iptables_backend", "locked_chain", "rule_id_from_tag"]
