"""Image routes against the real Incus image store, and root passwords set with chpasswd.

Nothing here pulls from a real remote: the import's error path uses a remote on a dead loopback
port, the other routes use busybox images built locally under temporary aliases."""
import logging
import re
import secrets
import uuid
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # checks the hash chpasswd wrote (Python 3.11, Debian 12)

from tests.conftest import incus_cli

DEAD_REMOTE = "https://127.0.0.1:9"


@pytest.fixture
def app_overrides():
    return {"IMAGE_REMOTES": f"dead={DEAD_REMOTE}"}


def test_list_images_has_the_fields_of_the_dashboard(api, busybox_image):
    body = api.get("/images").get_json()
    assert body["status"] == "success"
    busybox = next(i for i in body["images"] if busybox_image in i["aliases"])
    assert re.fullmatch(r"[0-9a-f]{64}", busybox["fingerprint"])
    assert busybox["description"].startswith("BusyBox")
    assert busybox["size"] > 0 and busybox["architecture"] and busybox["created_at"]
    assert isinstance(busybox["used_by"], list)


def test_aliases_and_delete_refused_while_a_container_uses_the_image(api, temp_image, container_name):
    alias, fingerprint = temp_image()
    second = f"{alias}-b/x"
    temp_image.aliases.append(second)

    added = api.post(f"/images/{fingerprint[:12]}/alias", data={"alias": second})
    assert added.status_code == 200 and added.get_json()["fingerprint"] == fingerprint, added.get_json()
    listed = next(i for i in api.get("/images").get_json()["images"] if i["fingerprint"] == fingerprint)
    assert listed["aliases"] == sorted([alias, second])

    again = api.post(f"/images/{fingerprint}/alias", data={"alias": second})
    assert again.status_code == 409 and second in again.get_json()["message"]
    assert api.post(f"/images/{fingerprint}/alias", data={"alias": "bad:alias"}).status_code == 400
    assert api.post("/images/0123456789ab/alias", data={"alias": "t-none"}).status_code == 404

    removed = api.delete(f"/images/alias/{second}")
    assert removed.status_code == 200 and removed.get_json()["fingerprint"] == fingerprint
    assert api.delete(f"/images/alias/{second}").status_code == 404

    name = container_name()
    incus_cli("launch", alias, name)
    refused = api.delete(f"/images/{fingerprint}")
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["used_by"] == [name] and name in refused.get_json()["message"]
    listed = next(i for i in api.get("/images").get_json()["images"] if i["fingerprint"] == fingerprint)
    assert listed["used_by"] == [name]

    assert api.post(f"/container/{name}/action", data={"action": "delete"}).status_code == 200
    deleted = api.delete(f"/images/{fingerprint[:16]}")
    assert deleted.status_code == 200, deleted.get_json()
    assert fingerprint not in [i["fingerprint"] for i in api.get("/images").get_json()["images"]]
    assert api.delete(f"/images/{fingerprint}").status_code == 404
    assert api.delete("/images/not-hex").status_code == 400


def test_import_from_a_dead_remote_fails_with_a_clear_error(api, busybox_image):
    failed = api.post("/images/import", data={"image": "dead:debian/12", "alias": "t-never-imported"})
    assert failed.status_code == 502, failed.get_json()
    body = failed.get_json()
    assert body["status"] == "error" and body["state"] == "failed" and "dead:debian/12" in body["message"]
    polled = api.get(f"/images/operations/{body['operation']}").get_json()
    assert polled["state"] == "failed" and polled["status"] == "error"
    assert incus_cli("image", "alias", "list", "-f", "csv").stdout.count("t-never-imported") == 0

    unknown = api.post("/images/import", data={"image": "nowhere:debian/12"})
    assert unknown.status_code == 400 and "nowhere" in unknown.get_json()["message"]
    local = api.post("/images/import", data={"image": busybox_image})
    assert local.status_code == 400
    taken = api.post("/images/import", data={"image": "dead:debian/12", "alias": busybox_image})
    assert taken.status_code == 409 and busybox_image in taken.get_json()["message"]
    assert api.get(f"/images/operations/{uuid.uuid4()}").status_code == 404
    assert api.get("/images/operations/../../1.0").status_code in (400, 404)


# -- root passwords ------------------------------------------------------------------------------

def root_hash(name):
    shadow = incus_cli("exec", name, "--", "cat", "/etc/shadow").stdout
    return next(line.split(":")[1] for line in shadow.splitlines() if line.startswith("root:"))


def test_password_at_creation_and_later_never_logged_or_stored(app, api, container_name, busybox_image, caplog):
    caplog.set_level(logging.DEBUG)
    name = container_name()
    first, second = f"Pw:{secrets.token_hex(8)}", f"Pw2 {secrets.token_hex(8)}"
    created = api.post("/container/create", data={"name": name, "image": busybox_image, "password": first})
    assert created.status_code == 200, created.get_json()
    assert crypt.crypt(first, root_hash(name)) == root_hash(name)

    changed = api.post(f"/container/{name}/password", data={"password": second})
    assert changed.status_code == 200 and changed.get_json()["status"] == "success", changed.get_json()
    assert crypt.crypt(second, root_hash(name)) == root_hash(name)
    assert crypt.crypt(first, root_hash(name)) != root_hash(name)

    for bad in ("", "short", "two\nlines", "x" * 129, " padded "):
        refused = api.post(f"/container/{name}/password", data={"password": bad})
        assert refused.status_code == 400, bad
        assert bad.strip() == "" or bad not in refused.get_data(as_text=True)
    assert api.post("/container/t-no-such-container/password", data={"password": "abcdef1"}).status_code == 404

    db_dir = Path(app.config["DATABASE"]).parent
    stored = b"".join(path.read_bytes() for path in db_dir.iterdir() if path.is_file())
    for secret in (first, second):
        assert secret not in caplog.text
        assert secret.encode() not in stored
        assert secret not in created.get_data(as_text=True) + changed.get_data(as_text=True)


def test_password_on_an_image_without_chpasswd_is_a_clear_error(api, make_container):
    name = make_container(wait_for_ip=False)
    incus_cli("exec", name, "--", "rm", "-f", "/usr/sbin/chpasswd", "/bin/chpasswd", "/usr/bin/chpasswd", "/sbin/chpasswd")
    refused = api.post(f"/container/{name}/password", data={"password": "abcdef1"})
    assert refused.status_code == 400, refused.get_json()
    assert "chpasswd" in refused.get_json()["message"]

    incus_cli("stop", "--force", name)
    stopped = api.post(f"/container/{name}/password", data={"password": "abcdef1"}, headers={"Accept-Language": "en"})
    assert stopped.status_code == 400 and "not running" in stopped.get_json()["message"]
