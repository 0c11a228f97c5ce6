"""A sale in one call: the container, its root credentials, its plan and its forwards, all or nothing.

``Provisioner.create`` runs the steps in order and remembers how to undo each one; when a step
fails, every step before it is undone in reverse (the forwards' kernel rules and rows removed,
the container deleted, and its pinned address with it) and the error names the step that failed.
Root's credentials are set (an exec in the new container, the slowest step after the create)
while the forwards and the traffic plan are written; the sale waits for both before it answers
or undoes anything.
Ports come from ``PORT_POOL`` inside the transaction that writes their rules (``NatRuleService
.add_many``), so two concurrent sales never get the same port. The ``ports=N`` block is recorded
in that transaction too (``port_blocks``): its ports stay the container's when its customer
deletes or repoints a rule, and the pool never sells them again while the container lives.

Also what a billing system polls: the host-wide container list, every NAT rule, the free ports,
and a container's SSH endpoint.
"""
import logging
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..exceptions import AppError, BadInput, Conflict, NotFound
from ..i18n import N_
from ..parse.ports import MAX_BLOCK
from . import public_address
from .plans import LIMIT_FIELDS
from .ports import PortRequest
from .suspensions import instance_uuid
from .traffic import TrafficPlan

log = logging.getLogger(__name__)

SSH_PORT = 22
# What the error says when a step fails: one template per step, so that each translates whole.
STEP_MESSAGES = {
    "ports": N_("{reason} (container {name} was not created: the host ports were checked first)"),
    "create": N_("{reason} (at the step that creates container {name}; nothing was left behind)"),
    "credentials": N_("{reason} (at the step that sets root's credentials in {name}; its port forwards were removed "
                      "and the container deleted again)"),
    "forwards": N_("{reason} (at the step that writes the port forwards of {name}; the container was deleted again)"),
    "traffic": N_("{reason} (at the step that records the traffic plan of {name}; its port forwards were removed "
                  "and the container deleted again)"),
}


@dataclass
class Sale:
    info: dict
    password: str = None  # generated, answered this once
    ssh: dict = None  # {"host", "port"} when ssh_port was asked for
    ports: dict = None  # {"start", "end"} when ports was asked for
    traffic: dict = None  # the traffic plan and its first period
    nat_rules: list = field(default_factory=list)


class StepFailed(AppError):
    """A step of a sale failed and the earlier steps were undone; the status is the cause's."""

    def __init__(self, step, name, cause):
        self.cause = cause
        self.http_status = getattr(cause, "http_status", 500)
        self.json_status = getattr(cause, "json_status", "error")
        reason = cause.message if isinstance(cause, AppError) else str(cause) or type(cause).__name__
        super().__init__(STEP_MESSAGES[step], data={"step": step}, name=name, reason=reason)

    def to_dict(self, translate=str):
        answer = super().to_dict(translate)
        if isinstance(self.cause, AppError):  # the cause in the answer's language too
            reason = translate(self.cause.template).format(**self.cause.params)
            answer["message"] = translate(self.template).format(**{**self.params, "reason": reason})
        return answer


def undo_steps(name, undo):
    """Undo the steps done for ``name`` (``[(what, function)]``), the last first; one that fails is
    logged and the others still run (the step's error is the one to report). A sale and a restore
    are all or nothing this way."""
    for what, action in reversed(undo):
        try:
            action()
        except Exception:  # noqa: BLE001  (go on undoing)
            log.exception("undoing the %s of %s failed", what, name)


class Provisioner:
    def __init__(self, incus, containers, info, credentials, limits, nat_rules, pool, config, traffic, suspensions):
        self.incus = incus
        self.containers = containers
        self.info = info
        self.credentials = credentials
        self.limits = limits
        self.nat_rules = nat_rules
        self.pool = pool
        self.config = config
        self.traffic = traffic
        self.suspensions = suspensions
        self._credentials = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sale-credentials")

    # -- the sale ---------------------------------------------------------------------------

    def create(self, name, image, password=None, ssh_key=None, ssh_port=None, ports=None, plan=None,
               traffic_plan=None):
        """Create ``name`` with its credentials, plan and forwards: a ``Sale``.

        ``ssh_port``: ``"auto"`` (a free pool port) or a host port, forwarded to 22/tcp.
        ``ports``: a count N of consecutive free pool ports, each forwarded tcp and udp to the
        same port numbers in the container. ``traffic_plan``: its monthly quota
        (``service.traffic.TrafficPlan``); its traffic is counted from the first packet.
        """
        requests = self._port_requests(ssh_port, ports)
        undo = []  # (what, function) of the steps done, undone in reverse when a later one fails
        step = "ports"
        try:
            self._check_ports(requests)
            self.traffic.check(traffic_plan or TrafficPlan())

            step = "create"
            try:
                self.containers.create_instance(name, image, plan)
            except Conflict:
                raise  # e.g. the name is taken: that container is not ours to delete
            except BaseException:
                self._delete_if_made(name)  # a start that failed can leave the instance behind
                raise
            undo.append(("container", lambda: self.containers.delete(name)))

            credentials = self._credentials.submit(self.credentials.set_credentials, name, password=password,
                                                   ssh_key=ssh_key)
            try:
                # One read of the new instance serves the answer and the forwards (its pinned address).
                instance = self.incus.instance_config(name)
                info = self.info.info_of(name, instance)
                step = "forwards"
                rules = self.nat_rules.add_many(name, requests, pool=self.pool,
                                                assigned=(instance, info["ip"]) if info["ip"] else None) \
                    if requests else []
                undo.append(("forwards", lambda: self._remove_rules(rules, name, instance_uuid(instance))))

                step = "traffic"
                self.traffic.create_plan(name, traffic_plan or TrafficPlan())
                undo.append(("traffic plan", lambda: self.traffic.forget(name)))
                self.traffic.track(name, info.get("ip"))
            finally:
                futures.wait([credentials])  # nothing is undone while the exec still runs in the container
            step = "credentials"
            generated = credentials.result()
        except BaseException as exc:
            undo_steps(name, undo)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise StepFailed(step, name, exc) from exc
        sale = self._sale(info, generated, requests, rules)
        sale.traffic = self.traffic.usage(name, with_days=False)
        return sale

    @staticmethod
    def _port_requests(ssh_port, ports):
        requests = []
        if ssh_port is not None:
            requests.append(PortRequest(host_port=None if ssh_port == "auto" else ssh_port,
                                        container_port=SSH_PORT, protocols=("tcp",)))
        if ports:
            requests.append(PortRequest(host_port=None, count=ports, protocols=("tcp", "udp"), block=True))
        return requests

    def _check_ports(self, requests):
        """Refuse at once (nothing changed yet) what the forwards step would refuse; that step
        checks again, inside its transaction."""
        fixed = sum((list(range(r.host_port, r.host_port + r.count)) for r in requests if r.host_port), [])
        pooled = sum(r.count for r in requests if r.host_port is None)
        for port in fixed:
            self.nat_rules.port_policy.check(port, port, "tcp")
            if self.nat_rules.forwarded(port, "tcp") is not None:
                raise Conflict(N_("Host port {host_port}/{protocol} is already forwarded"), host_port=port, protocol="tcp")
            self.nat_rules.check_blocks(None, port, port)  # nobody's yet: any block holding it is another's
        if pooled:
            self.nat_rules.free_ports(self.pool, pooled)

    def _remove_rules(self, rules, name, uuid):
        for rule in reversed(rules):
            try:
                self.nat_rules.delete(rule["id"])
            except NotFound:
                continue
        self.nat_rules.drop_blocks(name, uuid)

    def _delete_if_made(self, name):
        try:
            if self.incus.exists(name):
                log.warning("create of %s failed after Incus made the instance: deleting it", name)
                self.containers.delete(name)
        except Exception:  # noqa: BLE001  (the create's error is the one to report)
            log.exception("could not delete the half-made container %s", name)

    def _sale(self, info, generated, requests, rules):
        sale = Sale(info=info, password=generated, nat_rules=rules)
        for request, rule in self._rules_of_requests(requests, rules):
            if request.container_port == SSH_PORT and request.protocols == ("tcp",):
                sale.ssh = {"host": self.public_host(), "port": rule["host_port"]}
            else:
                sale.ports = {"start": rule["host_port"], "end": rule["host_port_end"]}
        return sale

    @staticmethod
    def _rules_of_requests(requests, rules):
        """Pair each request with its (first) rule: the SSH rule forwards to 22/tcp, the block's
        rules to their own numbers."""
        for request in requests:
            if request.container_port == SSH_PORT and request.protocols == ("tcp",):
                rule = next(r for r in rules if r["protocol"] == "tcp" and r["container_port"] == SSH_PORT
                            and r["host_port"] == r["host_port_end"])
            else:
                rule = next(r for r in rules if r["container_port"] == r["host_port"]
                            and r["host_port_end"] - r["host_port"] + 1 == request.count)
            yield request, rule

    # -- a plan changed live -----------------------------------------------------------------

    def change_plan(self, name, plan, traffic_plan):
        """``/container/<name>/limits``: the limits and the traffic plan fields given, checked
        before anything changes; ``(limits as Incus holds them, traffic usage or None)``. A
        throttled container's NIC keeps the throttle's rates: ``ingress``/``egress`` given then
        are the rates its end puts back (a plan change never lifts a throttle)."""
        if not plan.given(LIMIT_FIELDS) and not traffic_plan.given():
            raise BadInput(N_("Give at least one limit to change: {fields}"),
                           fields=", ".join([*LIMIT_FIELDS, "traffic_quota", "traffic_reset_day",
                                             "traffic_direction", "traffic_action"]))
        if traffic_plan.given():
            self.traffic.check_change(name, traffic_plan)  # 404 or 409 before anything changes
        if plan.given(LIMIT_FIELDS):
            self.limits.check_traffic_control(plan)  # 409 before the rates are kept
            plan = self.traffic.hold_rates(name, plan)  # a throttle keeps the NIC; its end puts the rates on
        if plan.given(LIMIT_FIELDS):
            limits = self.limits.apply(name, plan)
        else:
            limits = self.limits.limits_of(self.incus.instance_config(name))
        usage = self.traffic.change_plan(name, traffic_plan) if traffic_plan.given() else None
        if usage is not None:
            usage.pop("days", None)
        return limits, usage

    # -- what a billing system polls ---------------------------------------------------------

    def public_host(self):
        return public_address.public_host(self.config)

    def free_ports(self, count):
        """``(start, end)`` of the next ``count`` consecutive free pool ports (nothing is held)."""
        if not 1 <= count <= MAX_BLOCK:
            raise ValueError(count)
        return self.nat_rules.free_ports(self.pool, count)

    def port_block_of(self, name, uuid=None):
        """``{"start", "end", "count"}`` of the container's port block (``ports=N``; of its
        instance ``uuid`` when given), or None."""
        return self.nat_rules.block_of(name, uuid)

    def ssh_of(self, name):
        """``{"host", "port"}`` of the forward to the container's 22/tcp, or None."""
        for rule in self.nat_rules.list_for(name):
            if rule["protocol"] == "tcp" and rule["container_port"] <= SSH_PORT <= rule["container_port_end"]:
                return {"host": self.public_host(), "port": rule["host_port"] + SSH_PORT - rule["container_port"]}
        return None

    STATUSES = ("Running", "Stopped", "Frozen", "Error")

    def list_containers(self, status=None, q=None):
        """Every container, by name: ``(rows, live)``; ``status`` keeps those in that state,
        ``q`` those whose name holds it (case-insensitive). ``live`` is False when Incus is
        unreachable and the rows are the last known state."""
        rows, live = self.info.list_all()
        suspended = self.suspensions.names()
        traffic = self.traffic.summaries()
        listed = []
        for row in sorted(rows, key=lambda r: r["name"]):
            if status is not None and (row.get("status") or "").lower() != status.lower():
                continue
            if q is not None and q.lower() not in row["name"].lower():
                continue
            item = {"name": row["name"], "status": row.get("status"), "ipv4": row.get("ip"),
                    "image": row.get("image"), "nat_rules": row.get("nat_rules", 0),
                    "created_at": row.get("created_at")}
            item["suspended"] = row["name"] in suspended
            if "limits" in row:
                item["limits"] = row["limits"]
            item["traffic"] = traffic.get(row["name"])
            listed.append(item)
        return listed, live

    def all_rules(self):
        return self.nat_rules.list_all()
