"""Validation of image and password input, and the password use case against a fake Incus."""
import pytest

from incus_api import validation
from incus_api.exceptions import BadInput, Conflict, IncusError, TooManyRequests
from incus_api.incus import ExecResult
from incus_api.service.containers import NO_CHPASSWD, ContainerService
from incus_api.service.images import ImageService


@pytest.mark.parametrize("value", ["123456", "S3cret:pw", "with inner space", "中文密码abc", "x" * 128, "a'b\"c$d`e\\f%g"])
def test_valid_passwords(value):
    assert validation.root_password(value) == value


@pytest.mark.parametrize("value", ["", "12345", "x" * 129, "two\nlines", "cr\rhere", "nul\x00x", "tab\tx1",
                                   " leading", "trailing "])
def test_invalid_passwords_never_echo_the_value(value):
    with pytest.raises(BadInput) as error:
        validation.root_password(value)
    assert value.strip() == "" or value not in error.value.message


@pytest.mark.parametrize("value", ["busybox", "debian/12", "debian12-ssh", "a.b_c-d", "x" * 128])
def test_valid_image_aliases(value):
    assert validation.image_alias(value) == value


@pytest.mark.parametrize("value", ["", "-x", "remote:alias", "a b", "a//b", "a/", "x" * 129, "../x"])
def test_invalid_image_aliases(value):
    with pytest.raises(BadInput):
        validation.image_alias(value)


def test_fingerprints_and_operation_ids():
    assert validation.fingerprint("ABCDEF012345") == "abcdef012345"
    for bad in ("abc", "g" * 12, "a" * 65, "../../1.0"):
        with pytest.raises(BadInput):
            validation.fingerprint(bad)
    assert validation.operation_id("0f6b0b9e-5e6c-4c3e-9a4c-1b2c3d4e5f60")
    with pytest.raises(BadInput):
        validation.operation_id("../operations")


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

    def create(self, name, source, start=True):
        self.calls.append(("create", name))

    def exec(self, name, argv, timeout, stdin=b"", output_limit=None):
        self.calls.append(("exec", name, argv, stdin))
        return ExecResult(exit_code=self.exit_code, stdout="", stderr="chpasswd: boom" if self.exit_code else "")

    def change_state(self, name, action, force=False, timeout=30):
        self.calls.append((action, name))

    def delete(self, name):
        self.calls.append(("delete", name))

    def instance(self, name):
        return {"name": name, "status": "Running", "config": {}, "state": {}}

    def images(self):
        return self._images

    def instances(self):
        return self._instances

    def delete_image(self, fingerprint):
        self.calls.append(("delete_image", fingerprint))


class FakeDb:
    def execute(self, *args):
        pass


def service(incus):
    return ContainerService(incus=incus, db=FakeDb(), nat_rules=None, config={"IMAGE_REMOTES": ""})


def test_the_password_goes_on_stdin_never_in_the_argv():
    incus = FakeIncus(aliases={"busybox": "f" * 64})
    service(incus).create("web1", "busybox", password="S3cret:pw")
    (_, name, argv, stdin), = [c for c in incus.calls if c[0] == "exec"]
    assert name == "web1" and stdin == b"root:S3cret:pw\n"
    assert all("S3cret" not in part for part in argv)


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
