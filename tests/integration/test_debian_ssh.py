"""The Debian 12 SSH image as a new user meets it: built with image/debian12.sh (root locked),
containers made from it through the API with a given password, a generated one or an SSH key, a
NAT rule from a host port to 22, and SSH logins from a network namespace (a client outside the
host). Slow: debootstrap takes about a minute (the base system is cached in /var/cache/incus-api-web
for the next runs)."""
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import API_HEADERS, ROOT, incus_cli, wait_for_ipv4
from tests.integration.conftest import free_port

SSH_PROBE = r"""
import os, sys, paramiko
host, port, command = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
key = os.environ.get("SSH_KEY_FILE")
credential = {"key_filename": key} if key else {"password": os.environ["SSH_PASSWORD"]}
try:
    client.connect(host, port=port, username="root", **credential,
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


def ssh(test_host, port, password, command, key_file=None):
    """Log in from the namespace (with ``password``, or the private key in ``key_file``) and run
    ``command``: (exit code, output); 2 = refused credential."""
    credential = {"SSH_KEY_FILE": str(key_file)} if key_file else {"SSH_PASSWORD": password}
    result = subprocess.run(
        ["ip", "netns", "exec", test_host.name, sys.executable, "-c", SSH_PROBE, test_host.host_ip, str(port), command],
        capture_output=True, text=True, timeout=40, env={**os.environ, **credential},
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def ssh_when_up(test_host, port, password, command, timeout=60, key_file=None):
    """Retry while sshd is still starting (the first boot makes its host keys)."""
    deadline = time.monotonic() + timeout
    while True:
        code, output = ssh(test_host, port, password, command, key_file=key_file)
        if code != 1 or time.monotonic() > deadline:
            return code, output
        time.sleep(0.3)


@pytest.fixture(scope="module")
def debian_image():
    """image/debian12.sh under a temporary alias (the admin's debian12-ssh stays as it is)."""
    alias = f"t-debian12-{secrets.token_hex(3)}"
    started = time.monotonic()
    env = {key: value for key, value in os.environ.items() if key != "ROOT_PASSWORD"}
    try:
        refused = subprocess.run(["bash", str(ROOT / "image" / "debian12.sh"), alias], capture_output=True,
                                 text=True, timeout=60, env={**env, "ROOT_PASSWORD": "shared-by-all"})
        assert refused.returncode != 0 and "ROOT_PASSWORD is no longer supported" in refused.stderr
        build = subprocess.run(
            ["bash", str(ROOT / "image" / "debian12.sh"), alias],
            capture_output=True, text=True, timeout=1800, env=env,
        )
        assert build.returncode == 0, build.stdout + build.stderr
        print(f"\nimage/debian12.sh took {time.monotonic() - started:.0f} s")
        yield alias
    finally:
        target = incus_cli("image", "alias", "list", "-f", "csv", check=False).stdout
        fingerprints = [line.split(",")[1] for line in target.splitlines() if line.startswith(f"{alias},")]
        incus_cli("image", "alias", "delete", alias, check=False)
        for fingerprint in fingerprints:
            incus_cli("image", "delete", fingerprint, check=False)


def root_shadow(name):
    return incus_cli("exec", name, "--", "getent", "shadow", "root").stdout.split(":")[1]


def test_ssh_login_through_a_nat_rule_with_the_password_given_at_creation_and_changed_later(
        api, container_name, debian_image, test_host):
    alias = debian_image
    name = container_name()
    password = f"Pw:{secrets.token_hex(8)}"
    created = api.post("/container/create", data={"name": name, "image": alias, "password": password})
    assert created.status_code == 200, created.get_json()
    assert "password" not in created.get_json()  # the given one is never echoed
    wait_for_ipv4(name, timeout=30)

    port = free_port()
    added = api.post(f"/container/{name}/add_nat_rule", data={"host_port": port, "container_port": 22, "protocol": "tcp"})
    assert added.status_code == 200, added.get_json()

    code, output = ssh_when_up(test_host, port, password, "hostname; . /etc/os-release; echo $VERSION_CODENAME; id -u")
    assert code == 0, output
    assert output.split() == [name, "bookworm", "0"]

    new_password = f"New {secrets.token_hex(8)}"
    changed = api.post(f"/container/{name}/password", data={"password": new_password})
    assert changed.status_code == 200, changed.get_json()
    assert ssh(test_host, port, new_password, "echo ok") == (0, "ok")
    assert ssh(test_host, port, password, "true")[0] == 2

    assert api.post(f"/container/{name}/action", data={"action": "delete"}).get_json()["nat_rules_removed"] == 1


def test_containers_made_without_a_password_get_their_own_and_each_is_unique(api, live_server, container_name, debian_image,
                                                                          test_host):
    """No shared login: each container answers its own generated password, once; A's does not
    open B. Machine-id and SSH host keys differ too. The two are sold at once, as a shop does."""
    alias = debian_image
    first, second = container_name(), container_name()
    passwords, ports = {}, {}

    def create(name):
        return requests.post(f"{live_server}/container/create", data={"name": name, "image": alias},
                             headers=API_HEADERS, timeout=120)

    with ThreadPoolExecutor(2) as pool:
        created = dict(zip((first, second), pool.map(create, (first, second))))
    for name in (first, second):
        assert created[name].status_code == 200, created[name].text
        passwords[name] = created[name].json()["password"]
        assert len(passwords[name]) >= 16 and root_shadow(name).startswith("$")
        ports[name] = free_port()
        assert api.post(f"/container/{name}/add_nat_rule",
                        data={"host_port": ports[name], "container_port": 22, "protocol": "tcp"}).status_code == 200
    assert passwords[first] != passwords[second]
    assert api.get(f"/container/{first}/info").get_json().get("password") is None  # shown once, kept nowhere

    code, output = ssh_when_up(test_host, ports[first], passwords[first],
                               "cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
    assert code == 0, output
    assert ssh_when_up(test_host, ports[second], passwords[second], "hostname") == (0, second)
    with ThreadPoolExecutor(2) as pool:  # each refusal waits out sshd's failed-login delay: both at once
        crossed = list(pool.map(lambda pair: ssh(test_host, ports[pair[0]], passwords[pair[1]], "true")[0],
                                [(second, first), (first, second)]))
    assert crossed == [2, 2]
    machine_id, host_key = output.splitlines()
    other = incus_cli("exec", second, "--", "sh", "-c",
                      "for i in $(seq 60); do [ -s /etc/ssh/ssh_host_ed25519_key.pub ] && break; sleep 0.5; done; "
                      "cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split("\n")
    assert len(machine_id) == 32 and machine_id != other[0].strip()
    assert host_key.split()[1] != other[1].split()[1]
    for name in (first, second):
        assert api.post(f"/container/{name}/action", data={"action": "delete"}).status_code == 200


def test_an_ssh_key_given_at_creation_logs_in_and_root_has_no_password(api, container_name, debian_image, test_host, tmp_path):
    alias = debian_image
    name = container_name()
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@laptop", "-f", str(key)], check=True)
    created = api.post("/container/create", data={"name": name, "image": alias,
                                                  "ssh_key": "\n" + key.with_suffix(".pub").read_text() + "\n"})
    assert created.status_code == 200, created.get_json()
    assert "password" not in created.get_json()
    assert root_shadow(name) == "*"  # locked, as in the image: the key is the only way in
    modes = incus_cli("exec", name, "--", "stat", "-c", "%a %u %g %n", "/root/.ssh", "/root/.ssh/authorized_keys").stdout
    assert modes.split("\n")[:2] == ["700 0 0 /root/.ssh", "600 0 0 /root/.ssh/authorized_keys"]
    port = free_port()
    assert api.post(f"/container/{name}/add_nat_rule",
                    data={"host_port": port, "container_port": 22, "protocol": "tcp"}).status_code == 200
    assert ssh_when_up(test_host, port, None, "id -u", key_file=key) == (0, "0")
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    assert ssh(test_host, port, None, "true", key_file=other)[0] == 2
    with ThreadPoolExecutor(3) as pool:  # each refusal waits out sshd's failed-login delay: all at once
        assert list(pool.map(lambda guess: ssh(test_host, port, guess, "true")[0], ("", "root", "debian"))) == [2, 2, 2]

    bad = api.post("/container/create", data={"name": container_name(), "image": alias, "ssh_key": "ssh-rsa not-a-key"})
    assert bad.status_code == 400
