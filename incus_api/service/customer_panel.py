"""What a signed-in customer may do to their one container (issue 19): look at it, start, stop and
restart it, reset root's password, set root's SSH keys, reinstall it from the images the seller
allows, and take, restore and delete snapshots within the plan's ``snapshots`` (issue 21). Each action calls the admin's own service (power, credentials, lifecycle, info, traffic,
NAT rules) with the session's container, never a name from the request, behind the customer's own
two rules:

- the container must still be the instance the link was made for (its Incus ``volatile.uuid``): a
  container deleted and made again under the name is another customer's (410);
- a suspended container is shown, never changed: every action is refused (409) with a message for
  the customer, stop included (the admin's stop of a suspended container is allowed).

``CUSTOMER_IMAGES`` (aliases, comma-separated) are the images a reinstall may use; empty, the one
the container was made from (its ``volatile.base_image``, by a local alias of it when it has one).
"""
from ..exceptions import BadInput, Conflict, Gone, NotFound
from ..i18n import N_
from ..parse.choices import one_of

POWER_ACTIONS = ("start", "stop", "restart")


def configured_images(value):
    """``CUSTOMER_IMAGES`` as a list: ``"debian12-ssh, alpine"`` -> ``["debian12-ssh", "alpine"]``."""
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


class CustomerPanel:
    def __init__(self, services, allowed_images=""):
        self.services = services
        self.allowed = configured_images(allowed_images)

    # -- what the customer sees ---------------------------------------------------------------

    def info(self, customer, with_state=True):
        """The container's info (live, or the last known while Incus is down); 410 when it is no
        more, or is another instance than the one the link was made for."""
        try:
            info = self.services.info.info(customer.name, with_state=with_state)
        except NotFound:
            raise Gone(N_("The container of this control panel no longer exists")) from None
        uuid = (info.get("config") or {}).get("volatile.uuid")
        if customer.instance_uuid and uuid and uuid != customer.instance_uuid:
            raise Gone(N_("The container of this control panel no longer exists"))
        return info

    def block(self, customer):
        """``{"start", "end", "count"}`` of the container's port block (recorded with its sale,
        the forwards' editor's too), or None."""
        return self.services.nat_rules.block_of(customer.name, customer.instance_uuid)

    def ssh(self, customer):
        """``{"host", "port"}`` of the forward to the container's SSH, or None."""
        return self.services.provisioning.ssh_of(customer.name)

    def usage(self, customer):
        """This period's traffic with its days, or None (no plan)."""
        try:
            return self.services.traffic.usage(customer.name)
        except NotFound:
            return None

    def images(self, customer, info=None):
        """The images a reinstall may use: ``[{"ref", "label"}]``, the default first."""
        local = self.services.images.choices()  # fingerprints cut to 12 digits
        if self.allowed:
            by_alias = {alias: image for image in local for alias in image["aliases"]}
            return [{"ref": ref, "label": _label(ref, by_alias.get(ref))} for ref in self.allowed]
        info = info or self.info(customer, with_state=False)
        base = (info.get("config") or {}).get("volatile.base_image") or ""
        image = next((image for image in local if base and base.startswith(image["fingerprint"])), None)
        if image is None:  # no longer in the host's image store: nothing to reinstall from
            return []
        ref = image["aliases"][0] if image["aliases"] else base
        return [{"ref": ref, "label": _label(ref, image)}]

    # -- what the customer does -----------------------------------------------------------------

    def suspension(self, customer, info):
        """Why the container is suspended: ``"traffic"`` (its quota), ``"billing"`` (the seller),
        or None when it is not."""
        if not info.get("suspended"):
            return None
        summary = self.services.traffic.summary(customer.name)
        return "traffic" if summary is not None and summary.get("enforced") == "suspend" else "billing"

    def refuse_while_suspended(self, customer, info, action):
        """409 when the container is suspended: the customer sees it, and changes nothing."""
        reason = self.suspension(customer, info)
        if reason == "traffic":
            summary = self.services.traffic.summary(customer.name) or {}
            raise Conflict(
                N_("Your container is suspended because it used up this period's traffic: nothing can be changed until "
                   "the next period starts ({period_end}) or your provider lifts the suspension"),
                data={"refused": action}, period_end=(summary.get("period_end") or "")[:10])
        if reason is not None:
            raise Conflict(N_("Your container is suspended by your provider: nothing can be changed until it is "
                              "unsuspended. Contact your provider"), data={"refused": action})

    def _ready(self, customer, action):
        info = self.info(customer, with_state=False)
        self.refuse_while_suspended(customer, info, action)
        return info

    def power(self, customer, action):
        """start / stop / restart through the admin's ``Power``: ``(status, already)``."""
        action = one_of(action, "action", POWER_ACTIONS)
        self._ready(customer, action)
        return getattr(self.services.power, action)(customer.name)

    def reset_password(self, customer, password=None):
        """Root's password: ``password``, or a new random one returned here once."""
        self._ready(customer, "password change")
        return self.services.credentials.reset_password(customer.name, password)

    def set_ssh_keys(self, customer, keys):
        """Root's authorized_keys: ``keys`` (parsed OpenSSH public keys, one a line)."""
        self._ready(customer, "SSH key change")
        self.services.credentials.set_ssh_keys(customer.name, keys)

    def reinstall(self, customer, image, password=None, ssh_key=None):
        """A fresh disk from one of ``images``: ``(info, generated password or None)``."""
        info = self._ready(customer, "reinstall")
        allowed = [choice["ref"] for choice in self.images(customer, info)]
        if image not in allowed:
            raise BadInput(N_("Image '{image}' is not offered for this container (offered: {offered})"),
                           image=image, offered=", ".join(allowed) or "-")
        return self.services.lifecycle.reinstall(customer.name, image, password=password, ssh_key=ssh_key)

    # -- snapshots (issue 21): within the plan's ``snapshots`` ---------------------------------

    def snapshots(self, customer):
        """``(snapshots, plan)`` as ``SnapshotService.list`` answers them."""
        self.info(customer, with_state=False)  # 410 for another instance
        return self.services.snapshots.list(customer.name)

    def take_snapshot(self, customer, snapshot=None):
        """A snapshot by hand, while fewer than the plan's ``snapshots`` are kept (409 otherwise)."""
        self._ready(customer, "snapshot")
        snapshots, plan = self.services.snapshots.list(customer.name)
        taken = len(self.services.snapshots.by_hand(snapshots))
        if plan["snapshots"] == 0:
            raise Conflict(N_("Your plan includes no snapshots: ask your provider for a plan with snapshots"),
                           data={"snapshots": 0})
        if taken >= plan["snapshots"]:
            raise Conflict(N_("Your plan keeps at most {allowed} snapshot(s) and you have {taken}: delete one first"),
                           allowed=plan["snapshots"], taken=taken, data={"snapshots": plan["snapshots"]})
        return self.services.snapshots.create(customer.name, snapshot)

    def restore_snapshot(self, customer, snapshot):
        """The files of ``snapshot`` back (the plan stays): the container's status after it."""
        self._ready(customer, "snapshot restore")
        return self.services.snapshots.restore(customer.name, snapshot)

    def delete_snapshot(self, customer, snapshot):
        self._ready(customer, "snapshot delete")
        self.services.snapshots.delete(customer.name, snapshot)


def _label(ref, image):
    """What the image picker shows: the alias and the image's description."""
    description = (image or {}).get("description") or ""
    shown = ref if len(ref) < 64 else ref[:12]
    return f"{shown} — {description}" if description else shown
