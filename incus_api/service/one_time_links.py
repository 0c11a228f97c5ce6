"""One-time links, the console's and the customer panel's: a random token shown once, only its
SHA-256 stored with the container's name and Incus UUID; opening it spends it. The same token form
serves the console's tickets and the customer's session ids."""
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from ..exceptions import Forbidden, Gone
from ..store import one_time_links as table

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,128}")
PRUNE_AFTER_SECONDS = 24 * 3600  # spent or expired links are deleted after a day
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def new_token():
    return secrets.token_urlsafe(32)


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def well_formed(token):
    return isinstance(token, str) and TOKEN_PATTERN.fullmatch(token) is not None


def utc(seconds):
    return time.strftime(TIME_FORMAT, time.gmtime(seconds))


@dataclass(frozen=True)
class Refusals:
    """What the opener of a link is told (``N_``-marked where they are written): a link that never
    was (403), one already used, one expired (410; it may name ``{seconds}`` or ``{minutes}``)."""

    invalid: str
    used: str
    expired: str


class OneTimeLinks:
    """The links of one table, valid ``seconds`` after they are made."""

    def __init__(self, db, table_name, seconds, refusals, clock=time.time):
        self.db, self.table, self.seconds, self.refusals, self.clock = db, table_name, seconds, refusals, clock

    def create(self, name, instance_uuid):
        """A new link for the instance ``instance_uuid`` of ``name``: ``(token, seconds it is valid)``."""
        token = new_token()
        now = self.clock()
        table.add(self.db, self.table, token_hash(token), name, instance_uuid, utc(now), utc(now + self.seconds),
                  prune_before=utc(now - PRUNE_AFTER_SECONDS))
        return token, self.seconds

    def open(self, token):
        """``(digest, row)`` of a link that may be spent now (not yet spent: see ``spend``); 403
        for a token that never was, 410 for one used or expired."""
        if not well_formed(token):
            raise Forbidden(self.refusals.invalid)
        digest = token_hash(token)
        row = table.find(self.db, self.table, digest)
        if row is None:
            raise Forbidden(self.refusals.invalid)
        if row["used_at"]:
            self.refuse_used()
        if row["expires_at"] <= utc(self.clock()):
            raise Gone(self.refusals.expired, seconds=self.seconds, minutes=self.seconds // 60)
        return digest, row

    def spend(self, digest, db=None):
        """Spend an opened link (``db``: a connection inside the caller's transaction); 410 when
        another open of it was faster."""
        if not table.spend(db or self.db, self.table, digest, utc(self.clock())):
            self.refuse_used()

    def refuse_used(self):
        raise Gone(self.refusals.used)
