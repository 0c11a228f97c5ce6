"""Our FORWARD accept rules in the nf_tables ``ip filter`` table, through the ``iptables-nft`` command.

python-iptables writes only the legacy tables. A packet must pass every base chain on the forward
hook, so when something (Docker, a firewall script) sets the nf_tables ``FORWARD`` policy to DROP,
a legacy accept does not help: the accept rule must stand in nf_tables too, before the DROP does.
"""
import shutil
import subprocess


def accept_specs(bridge, tag):
    """iptables arguments of our two FORWARD accept rules: DNATed connections into and out of the
    bridge. Narrow on purpose: nothing else that a DROP policy blocks gets through."""
    return [
        [direction, bridge, "-m", "conntrack", "--ctstate", "DNAT", "-m", "comment", "--comment", tag, "-j", "ACCEPT"]
        for direction in ("-o", "-i")
    ]


def ensure_forward_accept(bridge, tag):
    """Put the accept rules at the top of nf_tables' ``ip filter FORWARD`` where they are missing
    (the table and chain are made, policy ACCEPT, where there were none). True when it changed."""
    iptables_nft = shutil.which("iptables-nft")
    if not iptables_nft:
        return False
    changed = False
    for spec in accept_specs(bridge, tag):
        check = subprocess.run([iptables_nft, "-w", "-C", "FORWARD", *spec], capture_output=True)
        if check.returncode != 0:
            subprocess.run([iptables_nft, "-w", "-I", "FORWARD", "1", *spec], check=True, capture_output=True)
            changed = True
    return changed


def remove_forward_accept(bridge, tag):
    """Take our accept rules out again (an uninstall, a test's clean-up); how many there were."""
    iptables_nft = shutil.which("iptables-nft")
    removed = 0
    for spec in accept_specs(bridge, tag) if iptables_nft else []:
        while subprocess.run([iptables_nft, "-w", "-D", "FORWARD", *spec], capture_output=True).returncode == 0:
            removed += 1
    return removed


def iptables_backend():
    """``nf_tables`` or ``legacy``: what the plain ``iptables`` command uses (None without it)."""
    if not shutil.which("iptables"):
        return None
    version = subprocess.run(["iptables", "-V"], capture_output=True, text=True).stdout
    return "nf_tables" if "nf_tables" in version else "legacy"


def forward_drops(iptables_nft="iptables-nft"):
    """Whether the nf_tables ``filter FORWARD`` chain drops or rejects anything (False without
    ``iptables-nft``)."""
    if not shutil.which(iptables_nft):
        return False
    listing = subprocess.run([iptables_nft, "-w", "-S", "FORWARD"], capture_output=True, text=True)
    if listing.returncode != 0:
        return False
    return any(
        line in ("-P FORWARD DROP",) or line.endswith(("-j DROP", "-j REJECT")) or " -j REJECT " in line
        for line in listing.stdout.splitlines()
    )
