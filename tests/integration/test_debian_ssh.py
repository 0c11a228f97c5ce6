"""The Debian 12 SSH image as a new user meets it: built with image/debian12.sh, containers made
from it through the API, a NAT rule from a host port to 22, and SSH logins with the root password
from a network namespace (a client outside the host). Slow: debootstrap takes about a minute (the
base system is cached in /var/cache/incus-api-web for the next runs)."""
import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, incus_cli, wait_for_ipv4
from tests.integration.conftest import free_port

SSH_PROBE = r"""
import os, sys, paramiko
host, port, command = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
try:
    client.connect(host, port=port, username="root", password=os.environ["SSH_PASSWORD"],
                   look_for_keys=False, allow_agent=False, timeout=5, banner_timeout=5, auth_timeout=5)
except paramiko.AuthenticationException:
    print("AUTH-FAILED")
    sys.exit(2)
except Exception as exc:
    print("ERROR", type(exc).__name__, exc)
    sys.exit(1)
_, out, err = client.exec_command(command, timeout=10)
print(out.read().decode().strip())
client.close()
"""


def ssh(test_host, port, password, command):
    """Log in from the namespace and run ``command``: (exit code, output); 2 = wrong password."""
    result = subprocess.run(
        ["ip", "netns", "exec", test_host.name, sys.executable, "-c", SSH_PROBE, test_host.host_ip, str(port), command],
        capture_output=True, text=True, timeout=40, env={**os.environ, "SSH_PASSWORD": password},
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def ssh_when_up(test_host, port, password, command, timeout=60):
    """Retry while sshd is still starting (the first boot makes its host keys)."""
    deadline = time.monotonic() + timeout
    while True:
        code, output = ssh(test_host, port, password, command)
        if code != 1 or time.monotonic() > deadline:
            return code, output
        time.sleep(1)


@pytest.fixture(scope="module")
def debian_image():
    """image/debian12.sh under a temporary alias (the admin's debian12-ssh stays as it is)."""
    alias = f"t-debian12-{secrets.token_hex(3)}"
    password = f"Img-{secrets.token_hex(6)}"
    started = time.monotonic()
    try:
        build = subprocess.run(
            ["bash", str(ROOT / "image" / "debian12.sh"), alias],
            capture_output=True, text=True, timeout=1800, env={**os.environ, "ROOT_PASSWORD": password},
        )
        assert build.returncode == 0, build.stdout + build.stderr
        assert password not in build.stdout  # printed only when generated
        print(f"\nimage/debian12.sh took {time.monotonic() - started:.0f} s")
        yield alias, password
    finally:
        target = incus_cli("image", "alias", "list", "-f", "csv", check=False).stdout
        fingerprints = [line.split(",")[1] for line in target.splitlines() if line.startswith(f"{alias},")]
        incus_cli("image", "alias", "delete", alias, check=False)
        for fingerprint in fingerprints:
            incus_cli("image", "delete", fingerprint, check=False)


def test_ssh_login_through_a_nat_rule_with_the_password_given_at_creation_and_changed_later(
        api, container_name, debian_image, test_host):
    alias, image_password = debian_image
    name = container_name()
    password = f"Pw:{secrets.token_hex(8)}"
    created = api.post("/container/create", data={"name": name, "image": alias, "password": password})
    assert created.status_code == 200, created.get_json()
    wait_for_ipv4(name, timeout=30)

    port = free_port()
    added = api.post(f"/container/{name}/add_nat_rule", data={"host_port": port, "container_port": 22, "protocol": "tcp"})
    assert added.status_code == 200, added.get_json()

    code, output = ssh_when_up(test_host, port, password, "hostname; . /etc/os-release; echo $VERSION_CODENAME; id -u")
    assert code == 0, output
    assert output.split() == [name, "bookworm", "0"]
    assert ssh(test_host, port, image_password, "true")[0] == 2  # the image's password was replaced

    new_password = f"New {secrets.token_hex(8)}"
    changed = api.post(f"/container/{name}/password", data={"password": new_password})
    assert changed.status_code == 200, changed.get_json()
    assert ssh(test_host, port, new_password, "echo ok") == (0, "ok")
    assert ssh(test_host, port, password, "true")[0] == 2

    assert api.post(f"/container/{name}/action", data={"action": "delete"}).get_json()["nat_rules_removed"] == 1


def test_the_image_password_works_and_each_container_is_unique(api, container_name, debian_image, test_host):
    alias, image_password = debian_image
    first, second = container_name(), container_name()
    for name in (first, second):
        assert api.post("/container/create", data={"name": name, "image": alias}).status_code == 200
    port = free_port()
    assert api.post(f"/container/{first}/add_nat_rule",
                    data={"host_port": port, "container_port": 22, "protocol": "tcp"}).status_code == 200

    code, output = ssh_when_up(test_host, port, image_password, "cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    assert code == 0, output
    machine_id, host_key = output.splitlines()
    other = incus_cli("exec", second, "--", "sh", "-c",
                      "for i in $(seq 60); do [ -s /etc/ssh/ssh_host_ed25519_key.pub ] && break; sleep 0.5; done; "
                      "cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split("\n")
    assert len(machine_id) == 32 and machine_id != other[0].strip()
    assert host_key.split()[1] != other[1].split()[1]
    for name in (first, second):
        assert api.post(f"/container/{name}/action", data={"action": "delete"}).status_code == 200
