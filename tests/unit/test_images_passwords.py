"""Validation of image and password input, and the password use case against a fake Incus."""
import contextlib

import pytest

from incus_api.exceptions import BadInput, Conflict, IncusError, TooManyRequests
from incus_api.incus.exec import ExecResult
from incus_api.parse import credentials, names
from incus_api.service.containers import AUTHORIZED_KEYS, NO_CHPASSWD, ContainerService
from incus_api.service.images import ImageService


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


class FakeIncus:
    def __init__(self, exit_code=0, images=(), instances=(), aliases=None):
        self.exit_code = exit_code
        self.calls = []
        self._images = list(images)
        self._instances = list(instances)
        self.aliases = dict(aliases or {})

    def exists(self, name):
        return False

    def image_alias(self, alias):
        if alias not in self.aliases:
            from incus_api.exceptions import NotFound
            raise NotFound("no alias")
        return {"target": self.aliases[alias]}

    def create(self, name, source, start=True, devices=None):
        self.calls.append(("create", name))

    def exec(self, name, argv, timeout, stdin=b"", output_limit=None):
        self.calls.append(("exec", name, argv, stdin))
        return ExecResult(exit_code=self.exit_code, stdout="", stderr="chpasswd: boom" if self.exit_code else "")

    def make_directory(self, name, path, mode=0o700, uid=0, gid=0):
        self.calls.append(("mkdir", name, path, mode))

    def push_file(self, name, path, content, mode=0o600, uid=0, gid=0):
        self.calls.append(("push", name, path, content, mode, uid, gid))

    def change_state(self, name, action, force=False, timeout=30):
        self.calls.append((action, name))

    def delete(self, name):
        self.calls.append(("delete", name))

    def instance(self, name):
        return {"name": name, "status": "Running", "config": {}, "state": {}}

    def instance_config(self, name):
        return {"name": name, "status": "Running", "config": {}}

    def images(self):
        return self._images

    def instances(self):
        return self._instances

    def delete_image(self, fingerprint):
        self.calls.append(("delete_image", fingerprint))


class FakeDb:
    def execute(self, *args):
        pass


class FakeNicGuard:
    @contextlib.contextmanager
    def new_nic(self, profiles=None):
        yield {}

    def assigned(self, instance, network=None):
        return None


def service(incus):
    return ContainerService(incus=incus, db=FakeDb(), nat_rules=None, nat_sync=None, nic_guard=FakeNicGuard(),
                            config={"IMAGE_REMOTES": ""})


def test_the_password_goes_on_stdin_never_in_the_argv():
    incus = FakeIncus(aliases={"busybox": "f" * 64})
    _, generated = service(incus).create("web1", "busybox", password="S3cret:pw")
    (_, name, argv, stdin), = [c for c in incus.calls if c[0] == "exec"]
    assert name == "web1" and stdin == b"root:S3cret:pw\n" and generated is None
    assert all("S3cret" not in part for part in argv)


def test_without_password_or_key_a_generated_password_is_set_and_answered_once(caplog):
    incus = FakeIncus(aliases={"busybox": "f" * 64})
    passwords = []
    for name in ("web1", "web2"):
        _, generated = service(incus).create(name, "busybox")
        passwords.append(generated)
    assert len(set(passwords)) == 2 and all(len(p) >= 16 for p in passwords)
    stdins = [c[3] for c in incus.calls if c[0] == "exec"]
    assert stdins == [f"root:{p}\n".encode() for p in passwords]
    assert not any(p in caplog.text for p in passwords)


def test_an_image_without_chpasswd_is_created_without_a_password():
    incus = FakeIncus(exit_code=NO_CHPASSWD, aliases={"busybox": "f" * 64})
    _, generated = service(incus).create("web1", "busybox")
    assert generated is None and ("delete", "web1") not in incus.calls
    # ... but a password that was asked for and cannot be set deletes the new container
    with pytest.raises(BadInput):
        service(incus).create("web2", "busybox", password="S3cret:pw")
    assert ("delete", "web2") in incus.calls


def test_an_ssh_key_goes_to_authorized_keys_through_the_files_api_and_no_password_is_made():
    incus = FakeIncus(aliases={"busybox": "f" * 64})
    keys = credentials.ssh_keys(ED25519)
    _, generated = service(incus).create("web1", "busybox", ssh_key=keys)
    assert generated is None and not [c for c in incus.calls if c[0] == "exec"]
    assert ("mkdir", "web1", "/root/.ssh", 0o700) in incus.calls
    assert ("push", "web1", AUTHORIZED_KEYS, keys.encode(), 0o600, 0, 0) in incus.calls


def test_a_failed_key_write_deletes_the_new_container():
    class NoFiles(FakeIncus):
        def push_file(self, *args, **kwargs):
            raise IncusError("Incus error: {reason}", reason="disk full")

    incus = NoFiles(aliases={"busybox": "f" * 64})
    with pytest.raises(IncusError) as error:
        service(incus).create("web1", "busybox", ssh_key=credentials.ssh_keys(ED25519))
    assert "authorized_keys" in error.value.message and ("delete", "web1") in incus.calls


def test_execs_past_the_per_container_limit_are_refused_at_once():
    import threading

    release, started = threading.Event(), threading.Semaphore(0)

    class SlowIncus(FakeIncus):
        def exec(self, name, argv, timeout, stdin=b"", output_limit=None):
            started.release()
            release.wait(10)
            return ExecResult(exit_code=0, stdout="", stderr="")

    containers = service(SlowIncus())
    containers.exec_per_container = 2
    threads = [threading.Thread(target=containers.exec, args=("web1", ["sleep"])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=5)
    with pytest.raises(TooManyRequests) as error:
        containers.exec("web1", ["true"])
    assert error.value.http_status == 429 and "web1" in error.value.message
    with pytest.raises(TooManyRequests):
        containers.set_password("web1", "S3cret:pw")
    release.set()
    for thread in threads:
        thread.join(5)
    assert containers.exec("web1", ["true"]).exit_code == 0  # the slots are given back
    assert containers._execs == {}


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


def test_a_failed_password_at_creation_deletes_the_new_container(caplog):
    incus = FakeIncus(exit_code=1, aliases={"busybox": "f" * 64})
    with pytest.raises(IncusError) as error:
        service(incus).create("web1", "busybox", password="S3cret:pw")
    assert "boom" in error.value.message and "S3cret" not in error.value.message
    assert ("delete", "web1") in incus.calls
    assert "S3cret" not in caplog.text


def test_no_chpasswd_in_the_image_is_a_clear_bad_input():
    incus = FakeIncus(exit_code=NO_CHPASSWD)
    with pytest.raises(BadInput) as error:
        service(incus).set_password("web1", "S3cret:pw")
    assert "chpasswd" in error.value.message


def test_an_image_in_use_is_not_deleted():
    fingerprint = "a" * 64
    incus = FakeIncus(images=[{"fingerprint": fingerprint}],
                      instances=[{"name": "web1", "config": {"volatile.base_image": fingerprint}}])
    with pytest.raises(Conflict) as error:
        ImageService(incus, {"IMAGE_REMOTES": ""}).delete(fingerprint[:12])
    assert error.value.http_status == 409 and error.value.data == {"used_by": ["web1"]}
    assert not [c for c in incus.calls if c[0] == "delete_image"]
