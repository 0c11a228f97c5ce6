"""A container made and deleted: the instance created and started with its pinned, filtered NIC
and its plan (a sale's first step), and deleted with everything the service keeps of it."""
import logging

from ..exceptions import Conflict, IncusError, NotFound
from ..i18n import N_
from .suspensions import instance_uuid

log = logging.getLogger(__name__)


class ContainerService:
    def __init__(self, incus, nic_guard, limits, images, nat_rules, info, suspensions, customers=None):
        self.incus = incus
        self.nic_guard = nic_guard
        self.limits = limits
        self.images = images
        self.nat_rules = nat_rules
        self.info = info
        self.suspensions = suspensions
        self.customers = customers  # service.customers.CustomerAccess: a deleted container's customer is signed out
        self.traffic = None  # service.traffic.TrafficService, set by build_services: forgets the deleted

    def create_instance(self, name, image, plan=None):
        """Create and start ``name`` from ``image``, its address pinned and its NIC filtered from
        the first start, with ``plan`` (``service.plans.Plan``) applied in the create request
        itself: its limits in the config, the rate limits on the pinned NIC, the root disk's size
        and pool, the profile. The plan is checked against the host first (pool driver, kernel
        modules, profile and pool exist), so that a refusal leaves nothing. Root's credentials
        are the caller's to set (a sale sets them while it writes the forwards)."""
        if self.incus.exists(name):
            raise Conflict(N_("Container {name} already exists"), name=name)
        source = self.images.checked_source(image)
        settings = self.limits.for_create(plan) if plan is not None and not plan.is_empty() else None
        try:
            # Its address pinned and its NIC filtered from the first start: no window in which
            # the container could take another address or answer for a neighbour's.
            with self.nic_guard.new_nic(settings.profiles if settings else None) as devices:
                if settings is None:
                    self.incus.create(name, source, start=True, devices=devices)
                else:
                    self.incus.create(name, source, start=True, devices=settings.devices(devices),
                                      config=settings.config, profiles=settings.profiles)
        except IncusError as exc:
            reason = exc.reason
            # Incus's words when another request is creating or has created the same name.
            if any(words in reason for words in ("already exists", "UNIQUE constraint failed", "Instance is busy running")):
                raise Conflict(N_("Container {name} already exists"), name=name) from exc
            raise IncusError(N_("Creating container {name} failed: {reason}"), name=name, reason=reason) from exc

    def delete(self, name):
        """Delete the container, then its NAT rules, its last known state, its suspended mark, its
        traffic plan and its customer's sessions. Its kernel rules are out while Incus deletes it and back when that
        fails. No write transaction or lock is held across the Incus calls. The number of NAT
        rules deleted (the orphaned rules of an earlier container of its name stay: see
        ``nat_sync``)."""
        try:
            instance = self.incus.instance_config(name)
        except NotFound:
            raise NotFound(N_("Container {name} does not exist"), name=name) from None
        with self.nat_rules.withdrawn(name):
            try:
                self.incus.change_state(name, "stop", force=True)
            except IncusError as exc:
                if "already stopped" not in exc.reason:
                    raise
            self.incus.delete(name)
        removed = self.nat_rules.delete_all_for(name, instance_uuid(instance))
        self.info.forget(name)
        self.suspensions.clear(name)
        if self.traffic is not None:
            self.traffic.forget(name)
        if self.customers is not None:
            self.customers.end_sessions(name)
        return len(removed)
