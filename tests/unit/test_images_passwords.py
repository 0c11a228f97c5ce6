"""Validation of image and password input, and root's credentials as a sale (``Provisioner
.create``, the path the app sells through) sets them, against the fake Incus."""
import logging

import pytest

from incus_api.exceptions import BadInput, Conflict, IncusError, TooManyRequests
from incus_api.incus.exec import ExecResult
from incus_api.parse import credentials, names
from incus_api.service.credentials import (
    AUTHORIZED_KEYS,
    NO_CHPASSWD,
    PASSWORD_ARGV,
    NoPasswordSupport,
)
from incus_api.service.images import ImageService
from incus_api.service.provisioning import StepFailed
from incus_api.service.registry import build_services
from incus_api.store.db import Database
from tests.unit.fake_incus import FakeIncus, incus_error


@pytest.mark.parametrize("value", ["123456", "S3cret:pw", "with inner space", "中文密码abc", "x" * 128, "a'b\"c$d`e\\f%g"])
def test_valid_passwords(value):
    assert credentials.root_password(value) == value


@pytest.mark.parametrize("value", ["", "12345", "x" * 129, "two\nlines", "cr\rhere", "nul\x00x", "tab\tx1",
                                   " leading", "trailing "])
def test_invalid_passwords_never_echo_the_value(value):
    with pytest.raises(BadInput) as error:
        credentials.root_password(value)
    assert value.strip() == "" or value not in error.value.message


@pytest.mark.parametrize("value", ["busybox", "debian/12", "debian12-ssh", "a.b_c-d", "x" * 128])
def test_valid_image_aliases(value):
    assert names.image_alias(value) == value


@pytest.mark.parametrize("value", ["", "-x", "remote:alias", "a b", "a//b", "a/", "x" * 129, "../x"])
def test_invalid_image_aliases(value):
    with pytest.raises(BadInput):
        names.image_alias(value)


def test_fingerprints_and_operation_ids():
    assert names.fingerprint("ABCDEF012345") == "abcdef012345"
    for bad in ("abc", "g" * 12, "a" * 65, "../../1.0"):
        with pytest.raises(BadInput):
            names.fingerprint(bad)
    assert names.operation_id("0f6b0b9e-5e6c-4c3e-9a4c-1b2c3d4e5f60")
    with pytest.raises(BadInput):
        names.operation_id("../operations")


BUSYBOX = "f" * 64


@pytest.fixture
def incus():
    incus = FakeIncus()
    incus.add_image(BUSYBOX, alias="busybox")
    return incus


def services(incus, tmp_path, **config):
    """The app's services around the fake Incus, over a real database; no NAT table (a sale
    without ports writes no forward) and no traffic counting (it would run nft on this host)."""
    db = Database(tmp_path / "db.sqlite3")
    db.migrate()
    return build_services(incus, None, db, {"IMAGE_REMOTES": "", "TRAFFIC_INTERVAL": 0,
                                             "INCUS_SOCKET": str(tmp_path / "unix.socket"), **config})


def exits(exit_code, stderr=""):
    return ExecResult(exit_code=exit_code, stdout="", stderr=stderr)


def test_the_password_goes_on_stdin_never_in_the_argv(incus, tmp_path):
    sale = services(incus, tmp_path).provisioning.create("web1", "busybox", password="S3cret:pw")
    call, = incus.execs
    assert call.name == "web1" and call.stdin == b"root:S3cret:pw\n" and sale.password is None
    assert call.argv == PASSWORD_ARGV and all("S3cret" not in part for part in call.argv)


def test_without_password_or_key_a_generated_password_is_set_and_answered_once(incus, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    provisioning = services(incus, tmp_path).provisioning
    passwords = []
    for name in ("web1", "web2"):
        passwords.append(provisioning.create(name, "busybox").password)
    assert len(set(passwords)) == 2 and all(len(p) >= 16 for p in passwords)
    stdins = [c.stdin for c in incus.execs]
    assert stdins == [f"root:{p}\n".encode() for p in passwords]
    assert not any(p in caplog.text for p in passwords)


def test_an_image_without_chpasswd_is_created_without_a_password(incus, tmp_path):
    incus.exec_result = exits(NO_CHPASSWD)
    provisioning = services(incus, tmp_path).provisioning
    sale = provisioning.create("web1", "busybox")
    assert sale.password is None and "web1" not in incus.deleted and incus.exists("web1")
    # ... but a password that was asked for and cannot be set deletes the new container
    with pytest.raises(StepFailed) as error:
        provisioning.create("web2", "busybox", password="S3cret:pw")
    assert isinstance(error.value.cause, NoPasswordSupport) and error.value.http_status == 400
    assert error.value.data == {"step": "credentials"}
    assert "web2" in incus.deleted and not incus.exists("web2")


def test_an_ssh_key_goes_to_authorized_keys_through_the_files_api_and_no_password_is_made(incus, tmp_path):
    keys = credentials.ssh_keys(ED25519)
    sale = services(incus, tmp_path).provisioning.create("web1", "busybox", ssh_key=keys)
    assert sale.password is None and not incus.execs
    files = incus.files["web1"]
    assert files["/root/.ssh"] == {"type": "directory", "mode": 0o700, "uid": 0, "gid": 0}
    assert files[AUTHORIZED_KEYS] == {"type": "file", "content": keys.encode(), "mode": 0o600, "uid": 0, "gid": 0}


def test_a_failed_key_write_deletes_the_new_container(incus, tmp_path):
    incus.failing["push_file"] = incus_error("disk full")
    with pytest.raises(StepFailed) as error:
        services(incus, tmp_path).provisioning.create("web1", "busybox", ssh_key=credentials.ssh_keys(ED25519))
    assert isinstance(error.value.cause, IncusError) and error.value.data == {"step": "credentials"}
    assert "authorized_keys" in error.value.message and "web1" in incus.deleted and not incus.exists("web1")


def test_execs_past_the_per_container_limit_are_refused_at_once(incus, tmp_path):
    import threading

    release, started = threading.Event(), threading.Semaphore(0)

    def slow(call):
        started.release()
        release.wait(10)
        return ExecResult(exit_code=0, stdout="", stderr="")

    incus.add("web1")
    incus.exec_result = slow
    app = services(incus, tmp_path, EXEC_PER_CONTAINER=2)
    threads = [threading.Thread(target=app.commands.exec, args=("web1", ["sleep"])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=5)
    with pytest.raises(TooManyRequests) as error:
        app.commands.exec("web1", ["true"])
    assert error.value.http_status == 429 and "web1" in error.value.message
    with pytest.raises(TooManyRequests):
        app.credentials.set_password("web1", "S3cret:pw")
    release.set()
    for thread in threads:
        thread.join(5)
    assert app.commands.exec("web1", ["true"]).exit_code == 0  # the slots are given back
    assert app.commands._running == {}


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPqBxcCMfkSpgkAAMwoC9wzTWth7oklms0labIs2wliv user@laptop"
ECDSA = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBVy4huAxz1PVoObczf/VKmrjrFsu/uFy3v"
         "j90pvtw1awF4pKH4Rnvqdj4MMjn8oUY5a4rA1mHIcBvXtA2tqHAg=")


def test_valid_ssh_keys_are_normalised_one_a_line():
    assert credentials.ssh_keys(f"  {ED25519}  \r\n\n{ECDSA}\n") == f"{ED25519}\n{ECDSA}\n"


@pytest.mark.parametrize("value", [
    "", "\n \n", "ssh-ed25519", "ssh-ed25519 AAAA", "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
    ED25519.replace("ssh-ed25519", "ssh-rsa"),  # the blob names another type
    'command="/bin/sh" ' + ED25519,  # no options
    ED25519 + " \x1b[31mred", ED25519 + "\x00", ED25519[:-30] + "!!" + ED25519[-28:],
    "\n".join([ED25519] * 33), ED25519 + " " + "c" * 40000,
])
def test_invalid_ssh_keys(value):
    with pytest.raises(BadInput):
        credentials.ssh_keys(value)


def test_a_failed_password_at_creation_deletes_the_new_container(incus, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    incus.exec_result = exits(1, "chpasswd: boom")
    with pytest.raises(StepFailed) as error:
        services(incus, tmp_path).provisioning.create("web1", "busybox", password="S3cret:pw")
    assert isinstance(error.value.cause, IncusError) and error.value.data == {"step": "credentials"}
    assert "boom" in error.value.message and "S3cret" not in error.value.message
    assert "web1" in incus.deleted and not incus.exists("web1")
    assert "S3cret" not in caplog.text


def test_no_chpasswd_in_the_image_is_a_clear_bad_input(incus, tmp_path):
    incus.add("web1")
    incus.exec_result = exits(NO_CHPASSWD)
    with pytest.raises(BadInput) as error:
        services(incus, tmp_path).credentials.set_password("web1", "S3cret:pw")
    assert "chpasswd" in error.value.message


def test_an_image_in_use_is_not_deleted():
    fingerprint = "a" * 64
    incus = FakeIncus()
    incus.add_image(fingerprint)
    incus.add("web1", config={"volatile.base_image": fingerprint})
    with pytest.raises(Conflict) as error:
        ImageService(incus, {"IMAGE_REMOTES": ""}).delete(fingerprint[:12])
    assert error.value.http_status == 409 and error.value.data == {"used_by": ["web1"]}
    assert [image["fingerprint"] for image in incus.images()] == [fingerprint]  # not deleted
