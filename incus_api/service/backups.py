"""Backups: one file per backup in ``BACKUP_DIR`` (``backup_file``: Incus's export and the
service's record of the container), a copy in S3 when configured (``offsite``), listed, deleted,
restored (``restore``), taken for every container by ``BACKUP_SCHEDULE`` and kept ``BACKUP_KEEP``
per container.

A backup is long I/O (a 1 GiB container is minutes of it), so it does not run in the request or
in the scheduler's loop (the NAT sync and the traffic pass must not wait on it): the request or
the scheduler's job queues it and this service's one backup thread writes them one after another,
streaming Incus's export to the disk (memory stays flat). The request answers the backup's id at
once; ``GET /backups/<id>`` tells when it is ``ok`` or ``failed`` (with why).
"""
import contextlib
import logging
import os
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path

from .. import backup_file
from ..exceptions import AppError, BadInput, Conflict, NotFound
from ..i18n import N_
from ..memory import trim_heap
from ..parse.schedule import local_now, parse_schedule
from ..store import backups as table
from ..store import settings as settings_table
from .addresses import bridge_nic
from .busy import OneAtATime
from .limits import root_disk
from .suspensions import instance_uuid

log = logging.getLogger(__name__)

DEFAULT_DIR = "/var/lib/incus-api-web/backups"
DEFAULT_KEEP = 7
SCHEDULE_KEY = "backups.schedule_last_due"
DISK_FULL_SHARE = 0.9  # doctor: the disk of BACKUP_DIR this full is a problem
INCUS_BACKUP_PREFIX = "incus-api-web-"


def shape(row):
    written = row["state"] == "ok"  # a running or failed backup has no file to restore from
    where = (["local"] if row["local"] and written else []) + (["s3"] if row["s3_state"] == "ok" and written else [])
    return {"id": row["id"], "container": row["container_name"], "file": row["file"], "trigger": row["trigger"],
            "state": row["state"], "created_at": row["created_at"], "finished_at": row["finished_at"],
            "size": row["size"], "sha256": row["sha256"], "error": row["error"], "stored": where,
            "s3_key": row["s3_key"], "s3_state": row["s3_state"], "s3_error": row["s3_error"]}


class BackupService:
    def __init__(self, db, incus, nat_rules, traffic, suspensions, addresses, restorer, audit_log, config, offsite=None,
                 clock=local_now):
        self.db = db
        self.incus = incus
        self.nat_rules = nat_rules
        self.traffic = traffic
        self.suspensions = suspensions
        self.addresses = addresses
        self.restorer = restorer  # service.restore.Restorer
        self.audit_log = audit_log
        self.offsite = offsite  # offsite.S3Store or None
        self.directory = Path(config.get("BACKUP_DIR") or DEFAULT_DIR)
        self.keep = int(config.get("BACKUP_KEEP") or DEFAULT_KEEP)
        self.schedule = parse_schedule(config.get("BACKUP_SCHEDULE"))
        self.clock = clock
        self._queue = queue.Queue()
        self._thread = None
        self._thread_lock = threading.Lock()
        self._finished = threading.Condition()  # notified each time a backup is no longer running
        self._busy = OneAtATime(N_("Backup {key} is being restored or deleted: try again when that has finished"))

    # -- the directory ----------------------------------------------------------------------

    def ensure_directory(self):
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise BadInput(N_("BACKUP_DIR {path} cannot be used: {reason}"), path=str(self.directory),
                           reason=exc.strerror or str(exc)) from exc
        return self.directory

    def path_of(self, row):
        return self.directory / row["file"]

    def recover(self):
        """At start: backups left ``running`` by a service that stopped are failed, their partial
        files removed."""
        for row in table.listing(self.db):
            if row["state"] == "running":
                with contextlib.suppress(OSError):
                    self.path_of(row).unlink()
        with self.db.transaction() as conn:
            count = table.fail_running(conn, "the service stopped while the backup was being written")
        if count:
            log.warning("%d backup(s) were cut short by a stop of the service: marked failed", count)

    # -- reading ----------------------------------------------------------------------------

    def list(self, name=None):
        return [shape(row) for row in table.listing(self.db, name)]

    def get(self, backup_id):
        row = table.get(self.db, backup_id)
        if row is None:
            raise NotFound(N_("There is no backup {backup_id}"), backup_id=backup_id)
        return shape(row)

    # -- taking one ---------------------------------------------------------------------------

    def create(self, name, trigger="api"):
        """Queue a backup of ``name``: its row (``state`` running) at once; the file is written by
        the backup thread."""
        instance = self.incus.instance_config(name)  # 404 for an unknown container
        self.ensure_directory()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        with self.db.transaction() as conn:
            if table.running(conn, name) is not None:
                raise Conflict(N_("A backup of container {name} is already being written: wait for it to finish"),
                               name=name)
            file, number = f"{name}-{stamp}.tar", 2
            while table.by_file(conn, file) is not None or (self.directory / file).exists():
                file, number = f"{name}-{stamp}-{number}.tar", number + 1
            backup_id = table.insert(conn, name, instance_uuid(instance), file, trigger)
        self._start_thread()
        self._queue.put(backup_id)
        return self.get(backup_id)

    def _start_thread(self):
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="backups", daemon=True)
                self._thread.start()

    def _work(self):
        while True:
            backup_id = self._queue.get()
            try:
                self.write(backup_id)
            except Exception:  # noqa: BLE001 - recorded on the row; the thread goes on
                log.exception("backup %s failed", backup_id)
            finally:
                self._queue.task_done()
                if self._queue.unfinished_tasks == 0:
                    trim_heap()  # streaming a backup leaves freed buffers in this thread's arena
                with self._finished:
                    self._finished.notify_all()

    def wait(self, backup_id, timeout=600):
        """The backup's shape once it is no longer running, or still running after ``timeout`` s
        (the CLI; tests in the same process)."""
        with self._finished:
            self._finished.wait_for(lambda: self.get(backup_id)["state"] != "running", timeout)
        return self.get(backup_id)

    def write(self, backup_id):
        """Write the queued backup ``backup_id`` (in the backup thread): Incus's backup streamed
        into the file with the record, read back for its SHA-256, uploaded, older ones pruned."""
        row = table.get(self.db, backup_id)
        name, path = row["container_name"], self.path_of(row)
        incus_name = f"{INCUS_BACKUP_PREFIX}{backup_id}"
        try:
            record = self.record_of(name)
            self.incus.create_backup(name, incus_name)
            try:
                with self.incus.export_backup(name, incus_name) as chunks:
                    backup_file.write(path, chunks, record)
            finally:
                with contextlib.suppress(AppError):
                    self.incus.delete_backup(name, incus_name)
            verified = backup_file.verify(path)  # what is on the disk reads back whole, hashed on the way
            size, sha256 = verified.file_size, verified.sha256
        except Exception as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            with self.db.transaction() as conn:
                table.fail(conn, backup_id, reason[:500])
            self.audit_log.write("system", "backup.failed", target=name, details={"backup_id": backup_id,
                                                                                 "error": reason[:200]},
                                 result="error")
            raise
        with self.db.transaction() as conn:
            table.finish(conn, backup_id, size, sha256)
        self.audit_log.write("system", "backup.written", target=name, details={
            "backup_id": backup_id, "file": row["file"], "size": size, "sha256": sha256})
        log.info("backup %s of %s written: %s (%d bytes)", backup_id, name, path, size)
        self.upload(backup_id)
        self.prune(name)

    def record_of(self, name):
        """What the service keeps of ``name``, as a backup records it."""
        instance = self.incus.instance_config(name)
        uuid = instance_uuid(instance)
        device_name, device = bridge_nic(instance, self.addresses.bridge)
        forwards = [{"host_port": rule["host_port"], "host_port_end": rule["host_port_end"],
                     "container_port": rule["container_port"], "protocol": rule["protocol"]}
                    for rule in self.nat_rules.list_for(name, uuid) if not rule.get("orphaned")]
        block = self.nat_rules.block_of(name, uuid)
        blocks = [{"first_port": block["start"], "last_port": block["end"]}] if block else []
        mark = self.suspensions.is_suspended(name, instance) and self.suspensions.reason(name)
        return {
            "container": name, "instance_uuid": uuid, "status": instance.get("status"),
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "address": (device or {}).get("ipv4.address"),
            "hwaddr": (instance.get("config") or {}).get(f"volatile.{device_name}.hwaddr") if device_name else None,
            "pool": (root_disk(instance.get("expanded_devices") or instance.get("devices"))[1] or {}).get("pool"),
            "forwards": forwards, "port_blocks": blocks, "traffic": self.traffic.plan_record(name),
            "suspension": {"reason": mark} if mark else None,
        }

    # -- off the host ---------------------------------------------------------------------------

    def s3_key(self, row):
        return row["file"]

    def upload(self, backup_id):
        if self.offsite is None:
            return
        row = table.get(self.db, backup_id)
        key = self.s3_key(row)
        with self.db.transaction() as conn:
            table.set_s3(conn, backup_id, "uploading", key=key)
        try:
            self.offsite.put(str(self.path_of(row)), key, row["sha256"])
        except Exception as exc:  # noqa: BLE001 - recorded on the row and in the audit log
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            with self.db.transaction() as conn:
                table.set_s3(conn, backup_id, "failed", error=reason[:500])
            self.audit_log.write("system", "backup.upload_failed", target=row["container_name"],
                                 details={"backup_id": backup_id, "error": reason[:200]}, result="error")
            log.warning("upload of backup %s failed: %s", backup_id, reason)
            return
        with self.db.transaction() as conn:
            table.set_s3(conn, backup_id, "ok", key=key)
        self.audit_log.write("system", "backup.uploaded", target=row["container_name"],
                             details={"backup_id": backup_id, "key": key})

    # -- keeping and deleting ----------------------------------------------------------------------

    def prune(self, name):
        """Keep the newest ``BACKUP_KEEP`` written backups of ``name``; older ones (and failed ones
        older than the oldest kept) are deleted, here and in S3."""
        rows = [row for row in table.listing(self.db, name) if row["state"] != "running"]
        kept = [row for row in rows if row["state"] == "ok"][:self.keep]
        if len(kept) < self.keep:
            return
        oldest_kept = kept[-1]["id"]
        for row in rows:
            if row["id"] < oldest_kept:
                try:
                    self._delete_row(row)
                except AppError as exc:
                    log.warning("pruning backup %s of %s failed: %s", row["id"], name, exc.message)
                    continue
                self.audit_log.write("system", "backup.pruned", target=name, details={"backup_id": row["id"]})

    def delete(self, backup_id):
        row = table.get(self.db, backup_id)
        if row is None:
            raise NotFound(N_("There is no backup {backup_id}"), backup_id=backup_id)
        if row["state"] == "running":
            raise Conflict(N_("Backup {backup_id} is still being written: delete it when it has finished"),
                           backup_id=backup_id)
        with self._busy.holding(backup_id):
            self._delete_row(row)

    def _delete_row(self, row):
        if row["s3_key"] and self.offsite is not None and row["s3_state"] in ("ok", "failed", "uploading"):
            self.offsite.delete(row["s3_key"])  # a failure keeps the row: nothing is lost without a trace
        with contextlib.suppress(FileNotFoundError):
            self.path_of(row).unlink()
        with self.db.transaction() as conn:
            table.delete(conn, row["id"])

    # -- restoring --------------------------------------------------------------------------

    def restore(self, backup_id, name=None, ports=None):
        """Restore backup ``backup_id`` (``restore.Restorer.restore``), from its file here or, when
        that is gone, from its S3 copy (downloaded and checked first)."""
        row = table.get(self.db, backup_id)
        if row is None:
            raise NotFound(N_("There is no backup {backup_id}"), backup_id=backup_id)
        if row["state"] != "ok":
            raise Conflict(N_("Backup {backup_id} is {state}: only a written backup can be restored"),
                           backup_id=backup_id, state=row["state"])
        with self._busy.holding(backup_id):
            path, verified = self.path_of(row), None
            if not path.exists():
                path, verified = self.fetch(row)
            try:
                result = self.restorer.restore(str(path), name=name, ports=ports, verified=verified)
            finally:
                trim_heap()  # the export streamed to Incus in 4 MiB reads, freed into this thread's arena
        self.audit_log.write("system", "backup.restored", target=result["name"], details={
            "backup_id": backup_id, "from": row["container_name"], "copy": result["copy"]})
        return result

    def fetch(self, row):
        """The S3 copy of ``row`` downloaded into ``BACKUP_DIR`` and checked against its SHA-256:
        ``(path, Verified)``."""
        if self.offsite is None or row["s3_state"] != "ok":
            raise Conflict(N_("Backup {backup_id}'s file is gone from {path} and it has no copy in S3"),
                           backup_id=row["id"], path=str(self.directory))
        self.ensure_directory()
        path = self.path_of(row)
        verified = self._downloaded(row["s3_key"], path, row["sha256"])
        if verified is None:
            raise BadInput(N_("The S3 copy of backup {backup_id} does not match its SHA-256: it was damaged; nothing "
                              "was changed"), backup_id=row["id"])
        with self.db.transaction() as conn:
            table.set_local(conn, row["id"], True)
        return path, verified

    def _downloaded(self, key, path, sha256=None):
        """The S3 object ``key`` downloaded to ``path`` and read back once (``backup_file.verify``):
        its ``Verified``; or None, the file removed, when it is not whole: its SHA-256 is not
        ``sha256`` (the row's) or the object's metadata's, or its export does not match its record."""
        got = self.offsite.get(key, str(path))
        try:
            verified = backup_file.verify(str(path))
        except backup_file.BackupFileError:
            verified = None
        if verified is None or any(expected and expected != verified.sha256 for expected in (sha256, got.get("sha256"))):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return verified

    def restore_source(self, source, name=None, ports=None):
        """The CLI's restore, on a host whose database may know nothing: ``source`` is a backup file's
        path, or a key of the S3 store (downloaded into ``BACKUP_DIR`` first). The file is recorded
        as a backup here (``trigger`` import) so that the dashboard lists it."""
        path, verified = Path(source), None
        if not path.is_file():
            path, verified = self._download(source)
        verified = verified or backup_file.verify(str(path))
        record = verified.record
        row = table.by_file(self.db, path.name) if path.parent == self.directory else None
        if row is None and path.parent == self.directory:
            with self.db.transaction() as conn:
                backup_id = table.insert(conn, record["container"], record.get("instance_uuid"), path.name, "import",
                                         state="ok", created_at=record.get("created_at"))
                table.finish(conn, backup_id, verified.file_size, verified.sha256)
        result = self.restorer.restore(str(path), name=name, ports=ports, verified=verified)
        self.audit_log.write("system", "backup.restored", target=result["name"], details={
            "file": path.name, "from": record["container"], "copy": result["copy"]})
        return result

    def _download(self, key):
        if self.offsite is None:
            raise NotFound(N_("{source} is neither a file nor a key of an S3 store (S3_ENDPOINT is not set)"),
                           source=key)
        self.ensure_directory()
        file = os.path.basename(key)
        path = self.directory / file
        if path.exists():
            return path, None
        if self.offsite.head(file) is None:
            raise NotFound(N_("The S3 store has no backup {key}"), key=key)
        verified = self._downloaded(file, path)
        if verified is None:
            raise BadInput(N_("The S3 copy {key} does not match its SHA-256: it was damaged; nothing was changed"),
                           key=key)
        return path, verified

    # -- the schedule -----------------------------------------------------------------------

    def run_schedule(self):
        """The scheduler's job (every minute): when ``BACKUP_SCHEDULE`` came due since the last
        run, queue a backup of every container. The first time, only the due time is noted."""
        if self.schedule is None:
            return []
        due = self.schedule.last_due(self.clock()).isoformat()
        last = settings_table.get(self.db, SCHEDULE_KEY)
        with self.db.transaction() as conn:
            settings_table.put(conn, SCHEDULE_KEY, due)
        if last is None or last >= due:
            return []
        queued = []
        for instance in self.incus.instances():
            try:
                queued.append(self.create(instance["name"], trigger="schedule")["id"])
            except AppError as exc:
                log.warning("scheduled backup of %s not queued: %s", instance["name"], exc.message)
        self.audit_log.write("system", "backup.schedule", details={"due": due, "queued": len(queued)})
        return queued

    def schedule_state(self):
        """For the Settings page and doctor: the schedule, when it runs next, and the containers
        whose last scheduled backup failed."""
        failed = sorted(name for name, row in table.last_scheduled(self.db).items()
                        if row["state"] == "failed" or row["s3_state"] == "failed")
        return {"schedule": self.schedule.text if self.schedule else None,
                "next": self.schedule.next_due(self.clock()).isoformat() if self.schedule else None,
                "keep": self.keep, "failed": failed, "directory": str(self.directory),
                "s3": self.offsite is not None}

    def disk(self):
        """``{"used_share", "free_bytes", "backups_bytes"}`` of the filesystem under ``BACKUP_DIR``
        (None when it does not exist yet)."""
        probe = self.directory if self.directory.exists() else None
        if probe is None:
            return None
        stat = os.statvfs(probe)
        total = stat.f_blocks * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        used = sum(row["size"] or 0 for row in table.listing(self.db) if row["local"])
        return {"used_share": 1 - free / total if total else 0.0, "free_bytes": free, "backups_bytes": used,
                "full": total > 0 and 1 - free / total >= DISK_FULL_SHARE}
