"""The value a NAT rule stands for: a host port (range) forwarded to a container address and port."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Forward:
    """One DNAT rule: ``host_port``/``protocol`` on the host -> ``container_ip:container_port``.

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


def rule_id_from_tag(comment, prefix):
    """The rule id in a comment ``<prefix><id>``, or None when the rule is not one of ours."""
    if comment and comment.startswith(prefix):
        suffix = comment[len(prefix):]
        if suffix.isascii() and suffix.isdigit():
            return int(suffix)
    return None
