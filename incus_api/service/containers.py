"""Container use cases: create, start/stop/restart/delete, exec, info."""
import contextlib
import json
import logging
import re
import secrets
import threading

from ..config import parse_remotes
from ..exceptions import BadInput, Conflict, IncusError, IncusUnavailable, NotFound, OperationTimeout, TooManyRequests
from ..i18n import N_
from .addresses import assigned_ipv4
from .limits import LimitsService, limits_of

log = logging.getLogger(__name__)

FINGERPRINT = re.compile(r"[0-9a-f]{12,64}")
STOP_TIMEOUT = 30
# chpasswd reads "root:<password>" on its stdin, which the exec's stdin websocket feeds: the
# password is in no argv and no environment (Incus puts both on the "incusd forkexec" command
# line, readable in /proc/<pid>/cmdline by every host user), in no Incus event and no file.
# Incus turns exit code 127 into a "Command not found" error: a missing chpasswd exits 100.
NO_CHPASSWD = 100
PASSWORD_ARGV = ["/bin/sh", "-c", f"command -v chpasswd >/dev/null || exit {NO_CHPASSWD}; exec chpasswd"]
GENERATED_PASSWORD_BYTES = 12  # secrets.token_urlsafe(12): 16 characters, 96 random bits
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


class NoPasswordSupport(BadInput):
    """The image has no chpasswd (or no /bin/sh to run it): root's password cannot be set."""


def image_source(image, remotes):
    """The Incus ``source`` for an image reference: local alias, fingerprint, or ``remote:alias``."""
    remote, sep, ref = image.partition(":")
    if not sep:
        remote, ref = "local", image
    if remote == "local":
        if FINGERPRINT.fullmatch(ref):
            return {"type": "image", "fingerprint": ref}
        return {"type": "image", "alias": ref}
    if remote not in remotes:
        raise BadInput(
            N_("Unknown image remote '{remote}' (known: {known})"),
            remote=remote, known=", ".join(sorted(remotes)) or "-",
        )
    return {
        "type": "image",
        "mode": "pull",
        "server": remotes[remote],
        "protocol": "simplestreams",
        "alias": ref,
    }


class ContainerService:
    def __init__(self, incus, db, nat_rules, nat_sync, nic_guard, config, suspensions=None):
        self.incus = incus
        self.suspensions = suspensions  # lifecycle.Suspensions: the suspended marks and their 409
        self.traffic = None  # service.traffic.TrafficService, set by build_services: forgets the deleted
        self.db = db
        self.nat_rules = nat_rules
        self.nat_sync = nat_sync
        self.nic_guard = nic_guard
        self.limits = LimitsService(incus, nic_guard, config)  # a plan's checks and Incus settings at create
        self.remotes = parse_remotes(config.get("IMAGE_REMOTES", ""))
        self.exec_timeout = int(config.get("EXEC_TIMEOUT", 60))
        self.exec_output_limit = int(config.get("EXEC_OUTPUT_LIMIT", 1024 * 1024))
        self.exec_per_container = max(1, int(config.get("EXEC_PER_CONTAINER", 4)))
        self._execs = {}  # container name -> commands running in it now
        self._execs_lock = threading.Lock()

    # -- list -------------------------------------------------------------------------------

    def list_all(self):
        """Every container for the dashboard: ``(rows, live)``.

        Status comes from the instance list without state and addresses from the bridge's DHCP
        leases: two cheap requests instead of a state query per container. When Incus is down,
        the rows are the DB's last known state and ``live`` is False.
        """
        nat_counts = dict(self.db.query("SELECT container_name, COUNT(*) FROM nat_rules GROUP BY container_name"))
        try:
            instances = self.incus.instances()
            leases = self.nic_guard.leases_by_hwaddr()
            network = self.nic_guard.network()
        except IncusUnavailable:
            rows = self.db.query("SELECT name, image, status, ip, created_at, last_synced FROM containers ORDER BY name")
            return [dict(row, nat_rules=nat_counts.get(row["name"], 0)) for row in rows], False
        rows = []
        for instance in sorted(instances, key=lambda i: i["name"]):
            config = instance.get("config") or {}
            rows.append({
                "name": instance["name"],
                "status": instance.get("status"),
                "ip": assigned_ipv4(instance, network, leases) if instance.get("status") == "Running" else None,
                "image": config.get("image.description") or config.get("volatile.base_image", "")[:12],
                "created_at": instance.get("created_at"),
                "nat_rules": nat_counts.get(instance["name"], 0),
                "limits": limits_of(instance, self.limits.bridge),
            })
        self._remember_list(rows)
        return rows, True

    def _remember_list(self, rows):
        with self.db.transaction() as conn:
            conn.executemany(
                """INSERT INTO containers (name, image, status, ip, created_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET image = excluded.image, status = excluded.status,
                     ip = excluded.ip, created_at = excluded.created_at,
                     last_synced = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')""",
                [(r["name"], r["image"], r["status"], r["ip"], r["created_at"]) for r in rows],
            )
            names = [r["name"] for r in rows]
            conn.execute(
                f"DELETE FROM containers WHERE name NOT IN ({','.join('?' * len(names))})", names
            )

    # -- create -----------------------------------------------------------------------------

    def create(self, name, image, password=None, ssh_key=None, plan=None):
        """Create and start ``name`` from ``image``; ``(info, generated_password)`` once it runs.

        A ``plan`` (``service.plans.Plan``) is applied in the create request itself: its limits
        in the config, the rate limits on the pinned NIC, the root disk's size and pool, the
        profile; it is checked against the host first (pool driver, kernel modules, profile and
        pool exist), so that a refusal leaves nothing. ``info["limits"]`` holds them as applied.

        Root's credentials are set right after the start: ``ssh_key`` (validated authorized_keys
        text) is written to /root/.ssh/authorized_keys through the Incus files API, ``password``
        is set with chpasswd. With neither, a random password is set and returned here, once
        (never logged or stored); an image without chpasswd then gets none (``None``). When a
        credential cannot be set, the new container is deleted again (nobody could log in to it,
        or it would keep the image's own login) and the error raised.
        """
        self.create_instance(name, image, plan)
        try:
            generated = self.set_credentials(name, password=password, ssh_key=ssh_key)
        except Exception:
            log.warning("setting the root credentials of new container %s failed: deleting it", name)
            self._discard(name)
            raise
        return self.info(name, with_state=False), generated

    def create_instance(self, name, image, plan=None):
        """The Incus part of ``create``: checks, then the instance created and started with its
        pinned, filtered NIC and its plan. Root's credentials are the caller's to set (a sale
        sets them while it writes the forwards)."""
        if self.incus.exists(name):
            raise Conflict(N_("Container {name} already exists"), name=name)
        source = self.checked_source(image)
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

    def checked_source(self, image):
        """The Incus ``source`` for ``image``; 400 when a local alias is not in the image store."""
        source = image_source(image, self.remotes)
        if "alias" in source and "server" not in source:
            try:
                self.incus.image_alias(source["alias"])
            except NotFound:
                raise BadInput(
                    N_("Image '{image}' is not in the local image store (see the image list, or use remote:alias)"),
                    image=image,
                ) from None
        return source

    def set_credentials(self, name, password=None, ssh_key=None):
        """Root's credentials in the running container, as create and reinstall set them: the
        ``ssh_key`` text to authorized_keys, ``password`` with chpasswd; with neither, a random
        password, returned here once (never logged or stored), or ``None`` for an image without
        chpasswd. Returns the generated password or ``None``."""
        if ssh_key is not None:
            self._write_authorized_keys(name, ssh_key)
        if password is not None:
            self.set_password(name, password)
        if password is not None or ssh_key is not None:
            return None
        generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        try:
            self.set_password(name, generated)
        except NoPasswordSupport:
            log.info("image of container %s has no chpasswd: it has no root password", name)
            return None
        return generated

    def _refuse_if_suspended(self, name, action):
        if self.suspensions is not None:
            self.suspensions.refuse(name, action)

    def _write_authorized_keys(self, name, keys):
        """root's authorized_keys (dir 0700, file 0600, owner root) through the files API."""
        try:
            self.incus.make_directory(name, "/root", mode=0o700)
            self.incus.make_directory(name, "/root/.ssh", mode=0o700)
            self.incus.push_file(name, AUTHORIZED_KEYS, keys.encode(), mode=0o600)
        except (IncusError, NotFound) as exc:
            raise IncusError(
                N_("Writing {path} in container {name} failed: {reason}"), path=AUTHORIZED_KEYS, name=name, reason=exc.reason,
            ) from exc

    def _discard(self, name):
        try:
            self.incus.change_state(name, "stop", force=True)
            self.incus.delete(name)
        except Exception as exc:  # noqa: BLE001  (the first error is the one to report)
            log.warning("deleting %s failed too: %s", name, exc)

    # -- root password ----------------------------------------------------------------------

    def set_password(self, name, password):
        """Set root's password with ``chpasswd`` in the container.

        ``root:<password>`` reaches chpasswd on its stdin, through the exec's stdin websocket:
        never in an argv or the environment (both on the host's process list), an Incus event,
        a file, the log or the database.
        """
        self._refuse_if_suspended(name, "password change")
        try:
            with self._exec_slot(name):
                result = self.incus.exec(name, PASSWORD_ARGV, timeout=self.exec_timeout,
                                         stdin=f"root:{password}\n".encode(), output_limit=self.exec_output_limit)
        except IncusError as exc:
            reason = exc.reason
            if reason == "Command not found":
                raise NoPasswordSupport(N_("Container {name} has no /bin/sh to run chpasswd: its image does not support setting a password"), name=name) from exc
            if "not running" in reason:
                raise BadInput(N_("Container {name} is not running: start it to set the password"), name=name) from exc
            raise
        except OperationTimeout as exc:
            raise OperationTimeout(N_("chpasswd did not finish within {timeout} s"), timeout=self.exec_timeout) from exc
        if result.exit_code == NO_CHPASSWD:
            raise NoPasswordSupport(N_("Container {name} has no chpasswd command: its image does not support setting a password"), name=name)
        if result.exit_code != 0:
            raise IncusError(
                N_("chpasswd failed in container {name} (exit code {code}): {reason}"),
                name=name, code=result.exit_code, reason=(result.stderr or result.stdout).strip()[:500],
            )

    # -- state changes ----------------------------------------------------------------------

    def start(self, name):
        self._refuse_if_suspended(name, "start")
        return self._stopped_again_if_suspended_meanwhile(name, "start", self._change_state(name, "start"))

    def stop(self, name):
        return self._change_state(name, "stop")

    def restart(self, name):
        self._refuse_if_suspended(name, "restart")
        return self._stopped_again_if_suspended_meanwhile(name, "restart", self._change_state(name, "restart"))

    def _stopped_again_if_suspended_meanwhile(self, name, action, result):
        """A suspend that came between the check and Incus's start (it marks, then stops what is
        running) would leave a suspended container running: look again once it has started, and
        stop it and answer 409 when it was marked meanwhile. ``result`` passes through otherwise."""
        if self.suspensions is None or not self.suspensions.is_suspended(name):  # one DB read
            return result
        if not self.suspensions.is_suspended(name, self.incus.instance_config(name)):
            return result  # a stale mark, of another instance of that name: dropped
        log.info("%s was suspended while it started: stopping it again", name)
        self.incus.change_state(name, "stop", force=True)
        self._refresh_status(name)
        self.suspensions.refuse(name, action)
        return result  # unsuspended in the meantime

    def _change_state(self, name, action):
        """Graceful first (the guest shuts down cleanly), forced when it does not within the timeout.

        Returns ``(status, already)``: the container's new status and whether it was already there.
        """
        if action == "start":
            self.nic_guard.isolate_before_start(name)
        try:
            self.incus.change_state(name, action, force=False, timeout=STOP_TIMEOUT)
        except (IncusError, OperationTimeout) as exc:
            reason = exc.reason
            if "already running" in reason or "already stopped" in reason:
                return self._refresh_status(name), True
            if action == "start":
                raise IncusError(N_("{action} of container {name} failed: {reason}"), action=action, name=name, reason=reason) from exc
            log.warning("graceful %s of %s failed (%s); forcing it", action, name, reason)
            self.incus.change_state(name, action, force=True)
        if action in ("start", "restart"):
            self.nat_sync.follow_restart(name)
        return self._refresh_status(name), False

    def _refresh_status(self, name):
        instance, address = self.nic_guard.address_of(name, wait=False)
        status = instance.get("status")
        self._remember(name, status=status, ip=address if status == "Running" else None)
        return status

    def delete(self, name):
        """Delete the container and its NAT rules; on failure, the rules are put back."""
        if not self.incus.exists(name):
            raise NotFound(N_("Container {name} does not exist"), name=name)
        with self.nat_rules.removing_all_for(name) as removed:
            try:
                self.incus.change_state(name, "stop", force=True)
            except IncusError as exc:
                if "already stopped" not in exc.reason:
                    raise
            self.incus.delete(name)
            self.db.execute("DELETE FROM containers WHERE name = ?", (name,))
            if self.suspensions is not None:
                self.suspensions.clear(name)
            if self.traffic is not None:
                self.traffic.forget(name)
        return len(removed)

    # -- exec -------------------------------------------------------------------------------

    def exec(self, name, argv):
        """Run ``argv`` in the container: an ``ExecResult`` with each of stdout and stderr cut at
        EXEC_OUTPUT_LIMIT bytes (``truncated``); past EXEC_TIMEOUT everything it started is
        killed (504); at most EXEC_PER_CONTAINER at once in one container (429)."""
        self._refuse_if_suspended(name, "exec")
        try:
            with self._exec_slot(name):
                return self.incus.exec(name, argv, timeout=self.exec_timeout, output_limit=self.exec_output_limit)
        except IncusError as exc:
            reason = exc.reason
            if reason == "Command not found":
                raise BadInput(N_("Command not found in container {name}: {command}"), name=name, command=argv[0]) from exc
            if "not running" in reason:
                raise BadInput(N_("Container {name} is not running"), name=name) from exc
            raise
        except OperationTimeout as exc:
            raise OperationTimeout(
                N_("The command did not finish within {timeout} s"), timeout=self.exec_timeout
            ) from exc

    @contextlib.contextmanager
    def _exec_slot(self, name):
        """One of the container's EXEC_PER_CONTAINER exec slots, or 429 at once (never waits)."""
        with self._execs_lock:
            running = self._execs.get(name, 0)
            if running >= self.exec_per_container:
                raise TooManyRequests(
                    N_("{count} commands are already running in container {name} (the limit): try again when one has finished"),
                    count=running, name=name,
                )
            self._execs[name] = running + 1
        try:
            yield
        finally:
            with self._execs_lock:
                left = self._execs.pop(name) - 1
                if left:
                    self._execs[name] = left

    # -- info -------------------------------------------------------------------------------

    def info_of(self, name, instance):
        """``info`` from an instance config the caller has just read (no request of its own)."""
        info = shape_info(instance, ip=self._assigned_ip(instance), bridge=self.limits.bridge)
        info["suspended"] = self.suspensions is not None and self.suspensions.is_suspended(name, instance)
        self._remember(name, info=info)
        return info

    def info(self, name, with_state=True):
        """Live information from Incus; the last known snapshot when Incus is unreachable.
        ``with_state=False`` leaves out what the running container reports (its ``state``:
        processes, memory, addresses), which Incus gathers from it at some cost."""
        try:
            instance = self.incus.instance(name) if with_state else self.incus.instance_config(name)
        except IncusUnavailable:
            snapshot = self.snapshot(name)
            if snapshot is None:
                raise
            snapshot["suspended"] = self.suspensions is not None and self.suspensions.is_suspended(name)
            return snapshot
        except NotFound:
            self.db.execute("DELETE FROM containers WHERE name = ?", (name,))
            raise
        return self.info_of(name, instance)

    def _assigned_ip(self, instance):
        """The address Incus assigned (never one the container reports), while it runs."""
        if instance.get("status") != "Running":
            return None
        try:
            return self.nic_guard.assigned(instance)
        except BadInput:  # the bridge has no IPv4 subnet
            return None

    def snapshot(self, name):
        row = self.db.query_one("SELECT * FROM containers WHERE name = ?", (name,))
        if row is None:
            return None
        info = json.loads(row["snapshot"]) if row["snapshot"] else {
            "name": name, "status": row["status"], "ip": row["ip"], "created_at": row["created_at"],
            "architecture": row["architecture"], "description": row["image"],
            "profiles": [], "config": {}, "devices": {}, "snapshots": [], "state": {},
        }
        info.update(status=row["status"], ip=row["ip"], live_data_available=False, last_synced=row["last_synced"])
        return info

    def _remember(self, name, info=None, status=None, ip=None):
        """Keep the last known state in the DB (served while Incus is down)."""
        if info is not None:
            self.db.execute(
                """INSERT INTO containers (name, image, status, ip, architecture, created_at, snapshot, last_synced)
                   VALUES (?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
                   ON CONFLICT(name) DO UPDATE SET image = excluded.image, status = excluded.status,
                     ip = excluded.ip, architecture = excluded.architecture, created_at = excluded.created_at,
                     snapshot = excluded.snapshot, last_synced = excluded.last_synced""",
                (name, info["description"], info["status"], info["ip"], info["architecture"],
                 info["created_at"], json.dumps(info)),
            )
        else:
            self.db.execute(
                """UPDATE containers SET status = ?, ip = ?, last_synced = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                   WHERE name = ?""",
                (status, ip, name),
            )


def shape_info(instance, ip, bridge="incusbr0"):
    """The original project's info answer, so existing clients keep working. ``ip`` is the
    address Incus assigned; ``state`` holds what the container reports about itself; ``limits``
    what Incus enforces (``limits_of``; the NIC's are those of the NIC on ``bridge``)."""
    config = instance.get("config") or {}
    state = instance.get("state") or {}
    return {
        "name": instance["name"],
        "status": instance.get("status"),
        "status_code": instance.get("status_code"),
        "type": instance.get("type"),
        "architecture": instance.get("architecture"),
        "ephemeral": instance.get("ephemeral", False),
        "created_at": instance.get("created_at"),
        "profiles": instance.get("profiles") or [],
        "config": config,
        "devices": instance.get("devices") or {},
        "snapshots": [s.get("name") if isinstance(s, dict) else s for s in instance.get("snapshots") or []],
        "state": state,
        "description": config.get("image.description") or instance.get("description") or "",
        "image": config.get("image.description") or config.get("volatile.base_image", "")[:12],
        "ip": ip,
        "limits": limits_of(instance, bridge),
        "live_data_available": True,
    }
