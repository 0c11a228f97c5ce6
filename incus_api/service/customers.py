"""The customer's access to one container (issue 19): a one-time link from the billing system signs
a browser in as the customer of that container, and nothing else.

- ``create_link(name)``: a random token (256 bits) for the container's current instance (its Incus
  UUID); only its SHA-256 is stored; it opens once, within ``LINK_SECONDS``.
- ``redeem(token)``: spends the link and opens a session: a random id for the browser's cookie,
  stored as its SHA-256, valid ``CUSTOMER_SESSION_HOURS``. A container deleted and made again under
  the same name opens nothing (410), as for console links.
- ``session(session_id)``: the ``Customer`` a cookie names, or None; ``end_sessions(name)``: the
  ``customer_logout`` route, a delete, the admin's button.

Who a customer is stops here: what they may then do goes through the same services as the admin's
routes (power, lifecycle, credentials, NAT, traffic, console), with the container taken from the
session, never from the request.
"""
import time
from dataclasses import dataclass

from ..exceptions import Gone, NotFound
from ..i18n import N_
from ..store import customer_access as table
from .one_time_links import OneTimeLinks, Refusals, new_token, token_hash, utc, well_formed
from .suspensions import instance_uuid

LINK_SECONDS = 300  # a link opens nothing after this
TOUCH_SECONDS = 60  # a session's "last seen" is written at most this often
ACTOR_PREFIX = "customer:"


@dataclass(frozen=True)
class Customer:
    """A signed-in customer: the container they may act on, and the audit log's name for them."""

    name: str
    instance_uuid: str | None
    session_hash: str

    @property
    def actor(self):
        return f"{ACTOR_PREFIX}{self.name}"


class CustomerAccess:
    def __init__(self, incus, db, config, clock=time.time):
        self.incus = incus
        self.db = db
        self.session_seconds = max(1, int(config.get("CUSTOMER_SESSION_HOURS", 12))) * 3600
        self.clock = clock
        self.links = OneTimeLinks(db, "customer_links", LINK_SECONDS, Refusals(
            invalid=N_("This control panel link is not valid"),
            used=N_("This control panel link has already been used: a link signs in once. "
                    "Ask your provider's billing panel for a new one"),
            expired=N_("This control panel link has expired: it had to be opened within {minutes} minutes. "
                       "Ask your provider's billing panel for a new one")),
            lambda: self.clock())  # the service's clock, as it is when asked

    def create_link(self, name):
        """A new one-time link for ``name``'s customer (404 for an unknown container). Returns
        ``(token, seconds it is valid)``."""
        return self.links.create(name, instance_uuid(self.incus.instance_config(name)))

    def redeem(self, token, client_address=None):
        """Spend a link and open its session: ``(session id, container name, seconds it lasts)``.
        403 for a link that never was; 410 for one used, expired, or made for an instance that is
        no more (the container was deleted, or made again under its name)."""
        link, row = self.links.open(token)
        name = row["container_name"]
        try:
            instance = self.incus.instance_config(name)
        except NotFound:
            instance = None
        if instance is None or (row["instance_uuid"] and instance_uuid(instance) != row["instance_uuid"]):
            raise Gone(N_("The container this link was made for no longer exists"))
        session_id = new_token()
        now = self.clock()
        with self.db.transaction() as conn:  # the link spent and its session opened, or neither
            self.links.spend(link, conn)
            table.open_session(conn, token_hash(session_id), name, row["instance_uuid"], utc(now),
                               utc(now + self.session_seconds), client_address)
        return session_id, name, self.session_seconds

    def session(self, session_id):
        """The ``Customer`` whose session ``session_id`` is (its cookie's value), or None when it
        is unknown, expired or ended."""
        if not well_formed(session_id):
            return None
        now = self.clock()
        row = table.find_session(self.db, token_hash(session_id), utc(now))
        if row is None:
            return None
        if row["last_seen"] <= utc(now - TOUCH_SECONDS):
            table.touch_session(self.db, row["session_hash"], utc(now))
        return Customer(name=row["container_name"], instance_uuid=row["instance_uuid"], session_hash=row["session_hash"])

    def sign_out(self, customer):
        """End this browser's session only."""
        table.end_session(self.db, customer.session_hash)

    def end_sessions(self, name):
        """End every session of ``name``'s customer (and its links not opened yet): how many ended."""
        return table.end_sessions(self.db, name)

    def sessions_of(self, name):
        """``{"count", "last_seen"}`` of the customer's open sessions, for the admin's page."""
        count, last_seen = table.sessions_of(self.db, name, utc(self.clock()))
        return {"count": count, "last_seen": last_seen}
