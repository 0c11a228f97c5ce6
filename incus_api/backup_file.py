"""The backup file: one uncompressed tar holding Incus's export of the instance and the service's
record of it. No Flask, no Incus: bytes in, bytes out.

Members, in this order:

- ``instance.tar.gz``: what ``GET /1.0/instances/<name>/backups/<backup>/export`` streamed (Incus's
  own format: ``incus import instance.tar.gz`` takes it as it is);
- ``incus-api-web.json``: the record (``FORMAT``, ``VERSION``, the container, the forwards, the port
  blocks, the traffic plan and this period's use, the suspension) with ``export_size`` and
  ``export_sha256``, the SHA-256 of the member before it.

The export is written as it arrives (its tar header is written first with size 0 and rewritten
once the size is known: a GNU header is 512 bytes whatever the size), so memory stays flat
whatever the container holds. The file's own SHA-256 is read back from the disk after it is
written (``digest``): the hash a backup is listed with, uploaded with and checked against.
"""
import hashlib
import io
import json
import os
import tarfile
import time
from typing import NamedTuple

from .exceptions import BadInput
from .i18n import N_

FORMAT = "incus-api-web-backup"
VERSION = 1
EXPORT_MEMBER = "instance.tar.gz"
RECORD_MEMBER = "incus-api-web.json"
RECORD_LIMIT = 4 * 1024 * 1024  # a record is a few KB; a bigger one is not ours
CHUNK = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


class BackupFileError(BadInput):
    """A file that is not a backup of this service, or one that was damaged."""


def _header(name, size, mtime):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o600
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _padding(size):
    return b"\0" * (-size % BLOCK)


def write(path, chunks, record):
    """Write the backup file at ``path`` (created 0600, fsynced): the export from ``chunks`` (an
    iterable of bytes), then ``record`` with ``export_size`` and ``export_sha256`` added. Returns
    the record as written."""
    mtime = time.time()
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(_header(EXPORT_MEMBER, 0, mtime))
        for chunk in chunks:
            if chunk:
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        out.write(_padding(size))
        end = out.tell()
        out.seek(0)
        out.write(_header(EXPORT_MEMBER, size, mtime))
        out.seek(end)
        record = {**record, "format": FORMAT, "version": VERSION, "export_size": size,
                  "export_sha256": digest.hexdigest()}
        body = json.dumps(record, indent=1, sort_keys=True).encode()
        out.write(_header(RECORD_MEMBER, len(body), mtime))
        out.write(body + _padding(len(body)))
        out.write(b"\0" * (2 * BLOCK))  # the tar's end
        out.flush()
        os.fsync(out.fileno())
    return record


def _members(path):
    try:
        with tarfile.open(path, "r:") as archive:
            members = {member.name: member for member in archive.getmembers()}
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupFileError(N_("{file} is not a backup file of incus-api-web (not a tar file: {reason})"),
                              file=os.path.basename(path), reason=str(exc)) from exc
    if EXPORT_MEMBER not in members or RECORD_MEMBER not in members:
        raise BackupFileError(N_("{file} is not a backup file of incus-api-web (it lacks {members})"),
                              file=os.path.basename(path), members=f"{EXPORT_MEMBER}, {RECORD_MEMBER}")
    return members


def read(path):
    """``(record, export offset, export size)`` of the backup file at ``path``, its record checked
    for form (not the export's hash: ``verify``)."""
    members = _members(path)
    record_member, export = members[RECORD_MEMBER], members[EXPORT_MEMBER]
    if not record_member.isfile() or record_member.size > RECORD_LIMIT:
        raise BackupFileError(N_("{file} is not a backup file of incus-api-web (its record is not readable)"),
                              file=os.path.basename(path))
    with open(path, "rb") as source:
        source.seek(record_member.offset_data)
        body = source.read(record_member.size)
    try:
        record = json.loads(body)
    except ValueError as exc:
        raise BackupFileError(N_("The record in {file} is damaged: {reason}"), file=os.path.basename(path),
                              reason=str(exc)) from exc
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BackupFileError(N_("{file} is not a backup file of incus-api-web"), file=os.path.basename(path))
    if record.get("version") != VERSION:
        raise BackupFileError(N_("{file} is a backup of format version {version}; this service reads version "
                                 "{supported}"), file=os.path.basename(path), version=record.get("version"),
                              supported=VERSION)
    if not _well_formed(record):
        raise BackupFileError(N_("The record in {file} is damaged: its container, forwards, port blocks or traffic plan "
                                 "are not what this service writes"), file=os.path.basename(path))
    if record.get("export_size") != export.size:
        raise BackupFileError(N_("{file} is damaged: its instance export is {size} bytes where its record says "
                                 "{expected}"), file=os.path.basename(path), size=export.size,
                              expected=record.get("export_size"))
    return record, export.offset_data, export.size


def _port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _well_formed(record):
    """The record's fields that a restore writes into the database have the shapes the service
    writes (a hand-edited record is refused, not half restored)."""
    forwards = record.get("forwards") or []
    blocks = record.get("port_blocks") or []
    traffic = record.get("traffic")
    return (isinstance(record.get("container"), str) and isinstance(forwards, list) and isinstance(blocks, list)
            and all(isinstance(rule, dict) and _port(rule.get("host_port")) and _port(rule.get("host_port_end"))
                    and rule["host_port"] <= rule["host_port_end"] and _port(rule.get("container_port"))
                    and rule.get("protocol") in ("tcp", "udp") for rule in forwards)
            and all(isinstance(block, dict) and _port(block.get("first_port")) and _port(block.get("last_port"))
                    and block["first_port"] <= block["last_port"] for block in blocks)
            and (traffic is None or (isinstance(traffic, dict) and isinstance(traffic.get("reset_day"), int)
                                     and 1 <= traffic["reset_day"] <= 28
                                     and traffic.get("direction") in ("both", "out", "in", "max")
                                     and traffic.get("action") in ("throttle", "suspend")
                                     and isinstance(traffic.get("period_start"), str)))
            and (record.get("suspension") is None or isinstance(record.get("suspension"), dict))
            and (record.get("pool") is None or (isinstance(record.get("pool"), str) and len(record["pool"]) < 64)))


class Verified(NamedTuple):
    record: dict
    offset: int  # where the export starts in the file
    size: int  # the export's length
    file_size: int | None  # None: not read (``whole_file=False``)
    sha256: str | None  # of the whole file


def verify(path, whole_file=True):
    """``Verified`` (its record, where the export lies, the whole file's size and SHA-256) once the
    export's bytes match the record's SHA-256; ``BackupFileError`` (400) otherwise. The file is read
    once, whole; with ``whole_file=False`` only its export is read and hashed (a restore of a file
    whose own SHA-256 is on record already: a second hash of 1 GiB costs seconds)."""
    record, offset, size = read(path)
    whole, export = (hashlib.sha256() if whole_file else None), hashlib.sha256()
    position, stop = (0, None) if whole_file else (offset, offset + size)
    with open(path, "rb") as source:
        source.seek(position)
        while chunk := source.read(CHUNK if stop is None else min(CHUNK, stop - position)):
            if whole is not None:
                whole.update(chunk)
            start, end = max(offset - position, 0), min(offset + size - position, len(chunk))
            if start < end:
                export.update(memoryview(chunk)[start:end])
            position += len(chunk)
    if position < offset + size or export.hexdigest() != record.get("export_sha256"):
        raise BackupFileError(N_("{file} is damaged: the instance export's SHA-256 does not match its record; "
                                 "nothing was changed"), file=os.path.basename(path))
    if whole is None:
        return Verified(record, offset, size, None, None)
    return Verified(record, offset, size, position, whole.hexdigest())


class ExportReader(io.RawIOBase):
    """The export member of a backup file as a file of its own (what Incus's import reads); its
    length is known, so the upload has a Content-Length."""

    def __init__(self, path, offset, size):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with the reader
        self._file.seek(offset)
        self._offset = offset
        self._size = size
        self._left = size

    def __len__(self):
        return self._size

    def readable(self):
        return True

    def read(self, n=-1):
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._file.read(min(n, CHUNK * 4))
        self._left -= len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        self._file.close()
        super().close()
