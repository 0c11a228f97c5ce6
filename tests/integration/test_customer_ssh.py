"""The customer's panel and SSH (issue 19, point 5): on the Debian 12 SSH image, sold with an SSH
port, the customer (signed in by a one-time link, through the panel's own routes) resets root's
password (generated, then typed), sets an SSH key and reinstalls with a key only, and each time
logs in over SSH from a network namespace with what the panel set, and no longer with the old one.

Here rather than in the browser tests: the busybox image has no sshd, and image/debian12.sh takes
a minute (the base system is cached for the next runs); the browser test drives the same routes."""
import re
import subprocess

import pytest

from tests.conftest import wait_for_ipv4
from tests.integration.test_debian_ssh import debian_image, ssh, ssh_when_up  # noqa: F401  (the image fixture)


def signed_in(app, api, name):
    """A test client signed in as ``name``'s customer, its CSRF token, and the images its panel
    offers to reinstall from."""
    url = api.post(f"/container/{name}/customer_link").get_json()["url"]
    client = app.test_client()
    assert client.get(url).status_code == 302
    page = client.get("/customer")
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    html = page.get_data(as_text=True)
    select = re.search(r'<select name="image">(.*?)</select>', html, re.S).group(1)
    return client, re.search(r'data-csrf="([^"]+)"', html).group(1), re.findall(r'<option value="([^"]+)"', select)


@pytest.fixture
def sold(api, container_name, debian_image):  # noqa: F811
    name = container_name()
    created = api.post("/container/create", data={"name": name, "image": debian_image, "ssh_port": "auto"})
    assert created.status_code == 200, created.get_json()
    wait_for_ipv4(name, timeout=30)
    return name, created.get_json()


def test_the_password_and_key_the_customer_sets_log_in_over_ssh(app, api, sold, test_host, tmp_path,
                                                                debian_image):  # noqa: F811
    name, sale = sold
    port = sale["ssh"]["port"]
    assert ssh_when_up(test_host, port, sale["password"], "id -u") == (0, "0")
    client, token, images = signed_in(app, api, name)
    assert images == [debian_image]  # CUSTOMER_IMAGES is empty: the image it was sold with

    generated = client.post("/customer/password", headers={"X-CSRFToken": token}).get_json()
    assert generated["status"] == "success" and len(generated["password"]) >= 16
    assert ssh(test_host, port, generated["password"], "id -u") == (0, "0")
    assert ssh(test_host, port, sale["password"], "true")[0] == 2

    typed = client.post("/customer/password", data={"password": "Customer typed 1"}, headers={"X-CSRFToken": token})
    assert typed.status_code == 200 and "password" not in typed.get_json()
    assert ssh(test_host, port, "Customer typed 1", "hostname") == (0, name)

    key, other = tmp_path / "id_customer", tmp_path / "id_other"
    for path in (key, other):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "customer@laptop", "-f", str(path)], check=True)
    public = (tmp_path / "id_customer.pub").read_text()
    assert client.post("/customer/ssh-key", data={"ssh_key": public}, headers={"X-CSRFToken": token}).status_code == 200
    assert ssh(test_host, port, None, "id -u", key_file=key) == (0, "0")
    assert ssh(test_host, port, None, "true", key_file=other)[0] == 2

    # reinstall with the key only: the same SSH port reaches the fresh system, the key logs in, no password does
    reinstalled = client.post("/customer/reinstall", data={"image": debian_image, "ssh_key": public},
                              headers={"X-CSRFToken": token})
    assert reinstalled.status_code == 200, reinstalled.get_json()
    assert "password" not in reinstalled.get_json()
    assert ssh_when_up(test_host, port, None, "id -u", key_file=key) == (0, "0")
    assert ssh(test_host, port, "Customer typed 1", "true")[0] == 2

    actors = {entry["actor"] for entry in app.extensions["incus_api"].services.audit_log.entries(target=name)
              if entry["action"].startswith("customer.")}
    assert actors == {f"customer:{name}"}

