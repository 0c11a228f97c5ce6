"""The backup file's format: written as a stream, read back whole, a damaged or foreign file or a
hand-edited record refused with a message that says so."""
import hashlib
import io
import json
import os
import tarfile

import pytest

from incus_api import backup_file
from incus_api.backup_file import BackupFileError

RECORD = {"container": "web1", "forwards": [{"host_port": 20001, "host_port_end": 20001, "container_port": 22,
                                             "protocol": "tcp"}],
          "port_blocks": [{"first_port": 20010, "last_port": 20019}],
          "traffic": {"reset_day": 7, "direction": "both", "action": "suspend", "period_start": "2026-12-07T00:00:00"},
          "suspension": None}


def written(tmp_path, data=b"x" * 3_000_000 + os.urandom(777), record=RECORD):
    path = tmp_path / "web1.tar"
    chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
    backup_file.write(str(path), chunks, record)
    return path, data


def test_a_file_reads_back_as_written_and_is_a_plain_tar(tmp_path):
    path, data = written(tmp_path)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    record, offset, size, file_size, sha256 = backup_file.verify(str(path))
    assert record["export_sha256"] == hashlib.sha256(data).hexdigest() and size == len(data)
    # the one read gives the file's own size and digest too
    assert (file_size, sha256) == (os.path.getsize(path), hashlib.sha256(path.read_bytes()).hexdigest())
    assert backup_file.verify(str(path), whole_file=False) == (record, offset, size, None, None)
    with backup_file.ExportReader(str(path), offset, size) as reader:
        assert len(reader) == len(data) and reader.read() == data
    with tarfile.open(path) as archive:  # what `tar -xf` sees: incus import takes instance.tar.gz as it is
        assert archive.getnames() == ["instance.tar.gz", "incus-api-web.json"]
        assert archive.extractfile("instance.tar.gz").read() == data
        assert json.load(archive.extractfile("incus-api-web.json"))["container"] == "web1"


def test_an_empty_export_and_a_file_that_exists_already(tmp_path):
    path, _ = written(tmp_path, data=b"")
    assert backup_file.verify(str(path))[2] == 0
    with pytest.raises(FileExistsError):
        written(tmp_path)


def test_a_flipped_byte_is_found(tmp_path):
    path, data = written(tmp_path)
    _, offset, size = backup_file.read(str(path))
    with open(path, "r+b") as damaged:
        damaged.seek(offset + size - 1)
        damaged.write(bytes([data[-1] ^ 1]))
    for whole_file in (True, False):
        with pytest.raises(BackupFileError, match="SHA-256 does not match"):
            backup_file.verify(str(path), whole_file=whole_file)


@pytest.mark.parametrize("content", [b"", os.urandom(5000), b"not a tar at all" * 100])
def test_a_foreign_file_is_refused(tmp_path, content):
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    with pytest.raises(BackupFileError, match="not a backup file"):
        backup_file.read(str(path))


def test_a_truncated_file_is_refused(tmp_path):
    path, _ = written(tmp_path)
    path.write_bytes(path.read_bytes()[:1_000_000])
    for whole_file in (True, False):
        with pytest.raises(BackupFileError):
            backup_file.verify(str(path), whole_file=whole_file)


def member_tar(tmp_path, record, export=b"data"):
    path = tmp_path / "edited.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for name, body in (("instance.tar.gz", export), ("incus-api-web.json", json.dumps(record).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return path


@pytest.mark.parametrize("change", [
    {"format": "something-else"},
    {"version": 2},
    {"container": 7},
    {"forwards": [{"host_port": 0, "host_port_end": 0, "container_port": 22, "protocol": "tcp"}]},
    {"forwards": [{"host_port": 20001, "host_port_end": 20001, "container_port": 22, "protocol": "sctp"}]},
    {"port_blocks": [{"first_port": 20019, "last_port": 20010}]},
    {"traffic": {"reset_day": 31, "direction": "both", "action": "suspend", "period_start": "x"}},
    {"export_size": 5},
])
def test_a_record_this_service_would_not_write_is_refused(tmp_path, change):
    record = {**RECORD, "format": backup_file.FORMAT, "version": backup_file.VERSION, "export_size": 4,
              "export_sha256": hashlib.sha256(b"data").hexdigest(), **change}
    with pytest.raises(BackupFileError):
        backup_file.verify(str(member_tar(tmp_path, record)))


def test_a_good_hand_made_file_passes(tmp_path):
    record = {**RECORD, "format": backup_file.FORMAT, "version": backup_file.VERSION, "export_size": 4,
              "export_sha256": hashlib.sha256(b"data").hexdigest()}
    assert backup_file.verify(str(member_tar(tmp_path, record)))[0]["container"] == "web1"
