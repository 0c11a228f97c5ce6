"""Browser consoles: a shell on a PTY in a running container, relayed to a WebSocket; the
one-time console links a billing system hands out; the audit of every session.

- **Who may open one**: the admin (the dashboard's session), or whoever holds a one-time link
  (``create_token``). A link's token is stored only as its SHA-256, opens its container's console
  once, and only within ``TOKEN_SECONDS`` of its creation. Opening the link spends the token and
  gives the page a *ticket* (in memory, one use, ``TICKET_SECONDS``) for its WebSocket.
- **What is refused**: a suspended or stopped container (409), more than ``MAX_SESSIONS``
  consoles at once (429: each holds one of the server's threads), more than
  ``CONSOLE_PER_CONTAINER`` (default 2) at once on one container (429: one customer cannot take
  every console place). The per-container count is checked when a link is made, when its page
  opens (the link is not spent then), before the WebSocket's handshake and, holding the place,
  when the session starts.
- **How it ends**: the browser goes away, the shell exits, no keystroke for
  ``CONSOLE_IDLE_TIMEOUT`` seconds, or the service stops. Every process the session started in
  the container is killed then (``Incus.end_console``).
- **Audit**: one entry per session, written when it starts (who, container, client address) and
  completed when it ends (start, end, why); never what was typed or printed.

No Flask here: the blueprint hands ``relay`` a *browser* with ``receive(timeout)`` (bytes: typed
input, str: a JSON control message, None: nothing within the timeout; ``Disconnected`` when the
browser left) and ``send(bytes)``.
"""
import contextlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

from ..exceptions import Conflict, Forbidden, Gone, TooManyRequests
from ..i18n import N_
from .one_time_links import OneTimeLinks, Refusals, new_token, token_hash, utc, well_formed
from .suspensions import instance_uuid

log = logging.getLogger(__name__)

TOKEN_SECONDS = 60  # a one-time link opens nothing after this
TICKET_SECONDS = 60  # between the page of a one-time link and its WebSocket
MAX_SESSIONS = 16  # consoles open at once (the server has 32 threads; the dashboard keeps the rest)
PER_CONTAINER = 2  # consoles open at once on one container (CONSOLE_PER_CONTAINER)
POLL_SECONDS = 1.0  # how often the relay looks at the idle time, the shell and a stop
MAX_INPUT_BYTES = 1024 * 1024  # one message of typed or pasted input


class Disconnected(Exception):
    """The browser closed the WebSocket."""


def parse_control(text):
    """A JSON control message from the page: ``("resize", columns, rows)`` or ``("input", bytes)``;
    None for anything else (ignored)."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("type") == "resize":
        columns, rows = message.get("cols"), message.get("rows")
        if all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 100_000 for v in (columns, rows)):
            return ("resize", columns, rows)
        return None
    if message.get("type") == "input" and isinstance(message.get("data"), str):
        return ("input", message["data"].encode("utf-8", errors="replace"))
    return None


@dataclass
class Session:
    """One open console."""

    id: str
    name: str
    actor: str
    console: object  # incus_console.Console
    started: float
    audit_id: int = None
    last_input: float = 0.0
    output_ended: threading.Event = field(default_factory=threading.Event)
    ended: str = None  # why, once it has ended


class ConsoleService:
    def __init__(self, incus, db, suspensions, audit_log, config, clock=time.time, max_sessions=MAX_SESSIONS):
        self.incus = incus
        self.db = db
        self.suspensions = suspensions
        self.audit_log = audit_log
        self.idle_timeout = int(config.get("CONSOLE_IDLE_TIMEOUT", 900))
        self.clock = clock
        self.links = OneTimeLinks(db, "console_tokens", TOKEN_SECONDS, Refusals(
            invalid=N_("This console link is not valid"),
            used=N_("This console link has already been used: a link opens the console once. Ask for a new one"),
            expired=N_("This console link has expired: it had to be opened within {seconds} seconds. Ask for a new one")),
            lambda: self.clock())  # the service's clock, as it is when asked
        self.max_sessions = max_sessions
        self.per_container = max(1, int(config.get("CONSOLE_PER_CONTAINER", PER_CONTAINER)))
        self.sessions = {}  # id -> Session (None while its shell starts)
        self.open_on = {}  # container -> its sessions, those starting included
        self.tickets = {}  # hash of a ticket -> (container, actor, expires)
        self.lock = threading.Lock()
        self.stopping = False

    # -- what may open ---------------------------------------------------------------------------

    def check_open(self, name, room=True):
        """404 for an unknown container, 409 when it is suspended or not running; 429 when it has
        ``CONSOLE_PER_CONTAINER`` consoles open already (unless ``room`` is False)."""
        instance = self.incus.instance_config(name)
        if self.suspensions.is_suspended(name, instance):
            raise Conflict(N_("Container {name} is suspended: its console opens again once it is unsuspended"), name=name)
        status = instance.get("status") or "?"
        if status != "Running":
            raise Conflict(N_("Container {name} is {status}: its console opens only while it is running"),
                           name=name, status=status)
        if room:
            self.check_room(name)
        return instance

    def check_room(self, name):
        """429 when ``name`` has ``CONSOLE_PER_CONTAINER`` consoles open (or opening) already."""
        with self.lock:
            self._refuse_full(name)

    def _refuse_full(self, name):
        """``check_room`` with the lock held."""
        count = self.open_on.get(name, 0)
        if count >= self.per_container:
            raise TooManyRequests(N_("{count} consoles are open on container {name} already, its limit: close one first"),
                                  count=count, name=name)

    # -- one-time links --------------------------------------------------------------------------

    def create_token(self, name):
        """A new one-time token for ``name``'s console (checked as ``check_open``); only its hash
        is stored. Returns ``(token, seconds it is valid)``."""
        return self.links.create(name, instance_uuid(self.check_open(name)))

    def redeem(self, token):
        """Spend a one-time token: ``(container, ticket for its WebSocket, token id)``. 403 for a
        token that never was, 410 for one used or expired, 404/409 as ``check_open`` (the token
        is not spent then: it can be opened again once the container runs, within its time)."""
        digest, row = self.links.open(token)
        name = row["container_name"]
        self._same_instance(self.check_open(name), row["instance_uuid"])
        self.links.spend(digest)
        return name, self._ticket(name, f"token:{digest[:12]}", row["instance_uuid"]), digest[:12]

    @staticmethod
    def _same_instance(instance, uuid):
        """410 when the link was made for another instance of this name (that container was
        deleted and one made again under its name): a link opens only what it was made for."""
        if uuid is not None and instance_uuid(instance) != uuid:
            raise Gone(N_("This console link was made for a container that has since been deleted: ask for a new one"))

    def _ticket(self, name, actor, uuid=None):
        ticket = new_token()
        now = self.clock()
        with self.lock:
            self.tickets = {key: value for key, value in self.tickets.items() if value[2] > now}
            self.tickets[token_hash(ticket)] = (name, actor, now + TICKET_SECONDS, uuid)
        return ticket

    def take_ticket(self, ticket):
        """The ``(container, actor, instance UUID)`` a ticket was given for; it works once. 403
        otherwise; 429 while its container has no console place left (the ticket is kept then)."""
        if not well_formed(ticket):
            raise Forbidden(N_("This console link is not valid"))
        with self.lock:
            entry = self.tickets.get(token_hash(ticket))
            if entry is not None and entry[2] > self.clock():
                self._refuse_full(entry[0])
            entry = self.tickets.pop(token_hash(ticket), None)
        if entry is None or entry[2] <= self.clock():
            raise Forbidden(N_("This console link is not valid"))
        return entry[0], entry[1], entry[3]

    # -- sessions ---------------------------------------------------------------------------------

    def start(self, name, actor, columns, rows, client_address=None, uuid=None):
        """Open a console on ``name`` for ``actor`` (``admin:<user>`` or ``token:<id>``); ``uuid``:
        only on the instance with this Incus UUID (what a link was made for)."""
        if self.stopping:
            raise Conflict(N_("The service is stopping: open the console again in a moment"))
        with self.lock:
            if len(self.sessions) >= self.max_sessions:
                raise TooManyRequests(N_("{count} consoles are open already: close one first"), count=len(self.sessions))
            self._refuse_full(name)
            session_id = secrets.token_hex(8)
            self.sessions[session_id] = None  # the place is held while the shell starts
            self.open_on[name] = self.open_on.get(name, 0) + 1
        try:
            self._same_instance(self.check_open(name, room=False), uuid)
            console = self.incus.open_console(name, columns, rows)
        except BaseException:
            self._release(session_id, name)
            raise
        now = self.clock()
        session = Session(id=session_id, name=name, actor=actor, console=console, started=now, last_input=now)
        with self.lock:
            self.sessions[session_id] = session
        try:
            session.audit_id = self.audit_log.write(
                "token" if actor.startswith("token:") else actor, "console.session", target=name,
                details=self._details(session), result="open", method="WS", client_address=client_address,
                status_code=101)
        except Exception:  # noqa: BLE001 - the audit must not keep a shell running unseen
            self.end(session, "error")
            raise
        log.info("console %s opened on %s by %s", session_id, name, actor)
        return session

    def _details(self, session, reason=None):
        details = {"started": utc(session.started)}
        if session.actor.startswith("token:"):
            details["token"] = session.actor.split(":", 1)[1]  # the first hex digits of its hash
        if reason is not None:
            details.update(ended=utc(self.clock()), end=reason)
        return details

    def relay(self, session, browser):
        """Copy the browser's input to the shell and the shell's output to the browser until the
        session ends; then end it. Returns why it ended: ``closed`` (the browser left),
        ``exited`` (the shell ended), ``idle``, ``stopping`` or ``error``."""
        pump = threading.Thread(target=self._pump, args=(session, browser), name=f"console-{session.id}", daemon=True)
        pump.start()
        reason = "error"
        try:
            reason = self._read_browser(session, browser)
        except Disconnected:
            reason = "closed"
        finally:
            self.end(session, reason)
            pump.join(timeout=5)
        return reason

    def _read_browser(self, session, browser):
        while True:
            if self.stopping:
                return "stopping"
            if session.output_ended.is_set():
                return "exited"
            left = session.last_input + self.idle_timeout - self.clock()
            if left <= 0:
                return "idle"
            message = browser.receive(timeout=min(POLL_SECONDS, left))
            if message is None:
                continue
            session.last_input = self.clock()
            if isinstance(message, (bytes, bytearray)):
                command = ("input", bytes(message))
            else:
                command = parse_control(message)
            if command is None:
                continue
            if command[0] == "resize":
                session.console.resize(command[1], command[2])
            elif command[1]:
                session.console.write(command[1][:MAX_INPUT_BYTES])

    @staticmethod
    def _pump(session, browser):
        try:
            while True:
                data = session.console.read()
                if not data:
                    break
                browser.send(data)
        except Disconnected:
            pass
        except Exception:  # noqa: BLE001 - the relay ends the session either way
            log.exception("console %s: output relay failed", session.id)
        finally:
            session.output_ended.set()

    def end(self, session, reason):
        """Kill the session's processes, close its streams, complete its audit entry (once)."""
        with self.lock:
            if session.ended is not None:
                return
            session.ended = reason
        try:
            killed = self.incus.end_console(session.console)
            log.info("console %s on %s ended (%s), %d process(es) killed", session.id, session.name, reason, killed)
        except Exception as exc:  # noqa: BLE001
            log.warning("console %s on %s: ending it failed: %s", session.id, session.name, exc)
        finally:
            self._release(session.id, session.name)
            if session.audit_id is not None:
                with contextlib.suppress(Exception):
                    self.audit_log.complete(session.audit_id, self._details(session, reason), "closed")

    def _release(self, session_id, name):
        """The session's places, the one of all consoles and the one of its container."""
        with self.lock:
            if self.sessions.pop(session_id, False) is not False:
                left = self.open_on.pop(name, 1) - 1
                if left > 0:
                    self.open_on[name] = left

    def stop(self):
        """The service is stopping: every relay ends its session within ``POLL_SECONDS``."""
        self.stopping = True

    def end_all(self, reason="stopping"):
        """End every open session now (the last thing a stopping worker does)."""
        self.stopping = True
        with self.lock:
            sessions = [s for s in self.sessions.values() if s is not None]
        for session in sessions:
            self.end(session, reason)
