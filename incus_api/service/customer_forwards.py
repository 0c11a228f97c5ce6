"""The customer's forwards (issue 19): what the customer of one container may see and change of its
NAT rules, a thin scope over ``NatRuleService`` (its checks, its lock, its kernel writes; no second
copy of any of them).

- The port block (``ports=N``, recorded at the sale: ``port_blocks``) is theirs: any host port of
  it may forward, tcp or udp, to any port of the container, one rule per host port and protocol;
  they may delete such a rule and add it again.
- The SSH rule (the single-port tcp rule to the container's port 22 outside the block, made by
  ``ssh_port``) is shown, never changed here. Other rules of the container (added by the seller)
  are shown too, as the seller's.
- Nothing else exists for them: another container's rule, an orphaned one, an unknown id are all
  the same 404, in the same words.

A container sold before port blocks were recorded has the block that its sale's rules show
(migration 014); one whose rules no longer show it has none: its customer sees its forwards and
changes none.
"""
from ..exceptions import Conflict, Forbidden, NotFound
from ..i18n import N_
from . import public_address
from .nat_rules import same_owner

SSH_PORT = 22
BLOCK, SSH, PROVIDER = "block", "ssh", "provider"  # a rule's ``kind`` for the customer


def ports_text(start, end):
    return str(start) if start == end else f"{start}-{end}"


class CustomerForwards:
    def __init__(self, nat_rules, suspensions, config):
        self.nat_rules = nat_rules
        self.suspensions = suspensions
        self.config = config

    # -- reading ----------------------------------------------------------------------------

    def forwards(self, customer):
        """``{"public_host", "port_block", "forwards"}``: the container's rules, each with its
        ``kind`` (block, ssh, provider), ``editable`` and ``public`` (``host:port`` as typed,
        None when the public address is unknown); the block as ``{"start", "end", "count"}`` with
        ``free`` (``{protocol: host ports no rule of that protocol forwards}``), or None."""
        block, rules, ssh = self._scope(customer)
        host = public_address.public_host(self.config)
        forwards = [self._shown(rule, self._kind(rule, block, ssh), host) for rule in rules]
        if block is not None:
            block = {**block, "free": {protocol: self._free_ports(block, rules, protocol) for protocol in ("tcp", "udp")}}
        return {"public_host": host, "port_block": block, "forwards": forwards}

    def _scope(self, customer):
        block = self.nat_rules.block_of(customer.name, customer.instance_uuid)
        rules = self.nat_rules.list_for(customer.name, customer.instance_uuid)
        ssh = next((rule for rule in rules if is_ssh_rule(rule, block)), None)
        return block, rules, ssh

    @staticmethod
    def _kind(rule, block, ssh):
        if ssh is not None and rule["id"] == ssh["id"]:
            return SSH
        if in_block(rule["host_port"], rule["host_port_end"], block):
            return BLOCK
        return PROVIDER

    @staticmethod
    def _shown(rule, kind, host):
        ports = ports_text(rule["host_port"], rule["host_port_end"])
        return {
            "id": rule["id"], "kind": kind, "editable": kind == BLOCK, "protocol": rule["protocol"],
            "host_port": rule["host_port"], "host_port_end": rule["host_port_end"],
            "container_port": rule["container_port"], "container_port_end": rule["container_port_end"],
            "public": public_address.host_port(host, ports), "created_at": rule["created_at"],
        }

    @staticmethod
    def _free_ports(block, rules, protocol):
        taken = {port for rule in rules if rule["protocol"] == protocol
                 for port in range(rule["host_port"], rule["host_port_end"] + 1)}
        return [port for port in range(block["start"], block["end"] + 1) if port not in taken]

    # -- changing ---------------------------------------------------------------------------

    def add(self, customer, host_port, container_port, protocol):
        """Forward ``host_port/protocol`` of the customer's block to ``container_port``: the new
        rule as ``forwards`` shows it. 403 for a port that is not theirs to point (outside the
        block, the SSH port, no block at all), 409 when the block's ports of that protocol all
        forward already or this one does; nothing changes then."""
        self._refuse_while_suspended(customer)
        block, rules, ssh = self._scope(customer)
        if ssh is not None and ssh["host_port"] <= host_port <= ssh["host_port_end"]:
            raise Forbidden(N_("Host port {port} is your SSH port: it stays forwarded to port 22 and cannot be "
                               "changed here"), port=host_port)
        if block is None:
            raise Forbidden(N_("Your container has no port block: its forwards are set by your provider"))
        if not in_block(host_port, host_port, block):
            raise Forbidden(N_("Host port {port} is not in your port block ({start}-{end}): choose a port of your "
                               "block"), port=host_port, start=block["start"], end=block["end"])
        holder = next((rule for rule in rules if rule["protocol"] == protocol
                       and rule["host_port"] <= host_port <= rule["host_port_end"]), None)
        if holder is not None:
            details = {"port": host_port, "protocol": protocol, "rule_id": holder["id"],
                       "container_port": holder["container_port"] + host_port - holder["host_port"]}
            if not self._free_ports(block, rules, protocol):  # as many forwards of the protocol as ports
                raise Conflict(N_("All {count} ports of your block already forward {protocol} (host port {port} to "
                                  "port {container_port} of your container, by rule {rule_id}): delete a forward of "
                                  "your block first"), count=block["count"], **details)
            raise Conflict(N_("Host port {port}/{protocol} already forwards to port {container_port} of your "
                              "container (rule {rule_id}): delete that rule first"), **details)
        try:
            rule, _created = self.nat_rules.add(customer.name, host_port, container_port, protocol,
                                                for_instance=customer.instance_uuid)
        except Conflict as exc:
            if "program" in exc.params:  # what runs on the host is the seller's business
                raise Conflict(N_("Host port {port}/{protocol} is in use on the host: a forward would take its traffic"),
                               port=exc.params["port"], protocol=exc.params["protocol"]) from None
            raise
        return self._shown(rule, BLOCK, public_address.public_host(self.config))

    def delete(self, customer, rule_id):
        """Delete a rule of the customer's block: the rule as ``forwards`` showed it. 404 for any
        id that is not a rule of this container (another's, an orphaned one, none), 403 for the
        SSH rule and the seller's rules."""
        self._refuse_while_suspended(customer)
        block, _rules, ssh = self._scope(customer)
        host = public_address.public_host(self.config)

        def allowed(row):  # under the NAT lock, on the row as it is now
            if not same_owner(row, customer.name, customer.instance_uuid) or row["orphaned_at"] is not None:
                raise NotFound(N_("NAT rule {rule_id} does not exist"), rule_id=rule_id)
            if ssh is not None and row["id"] == ssh["id"]:
                raise Forbidden(N_("Rule {rule_id} is your SSH port's: it cannot be deleted here"), rule_id=rule_id)
            if not in_block(row["host_port"], row["host_port_end"], block):
                raise Forbidden(N_("Rule {rule_id} was set by your provider: only the rules of your port block can be "
                                   "deleted here"), rule_id=rule_id)

        rule, _kernel_had_it = self.nat_rules.delete(rule_id, allowed=allowed)
        return self._shown(rule, BLOCK, host)

    def _refuse_while_suspended(self, customer):
        if self.suspensions.is_suspended(customer.name):
            raise Conflict(N_("Your container is suspended: its forwards cannot be changed until your provider "
                              "unsuspends it"))


def in_block(first, last, block):
    return block is not None and block["start"] <= first and last <= block["end"]


def is_ssh_rule(rule, block):
    """The rule ``ssh_port`` made: one host port, tcp, to the container's 22, outside the block (a
    block port the customer pointed at 22 is theirs, not this one)."""
    return (rule["protocol"] == "tcp" and rule["host_port"] == rule["host_port_end"]
            and rule["container_port"] == SSH_PORT and not in_block(rule["host_port"], rule["host_port"], block))
