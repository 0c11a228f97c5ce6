"""suspend / unsuspend / reinstall on the real daemon, with real traffic from a network namespace
through the container's forward."""
from incus_api import create_app
from tests.conftest import API_HEADERS, incus_cli, wait_for_ipv4
from tests.integration.conftest import free_port


def create(api, name, image):
    created = api.post("/container/create", data={"name": name, "image": image})
    assert created.status_code == 200, created.get_json()
    wait_for_ipv4(name)
    return created.get_json()


def forward(api, name):
    """A host port forwarded to the container's httpd (port 80): ``(rule_id, host_port)``."""
    port = free_port()
    added = api.post(f"/container/{name}/add_nat_rule", data={"host_port": port, "container_port": 80, "protocol": "tcp"})
    assert added.status_code == 200, added.get_json()
    return added.get_json()["rule_id"], port


def action(api, name, verb, **fields):
    return api.post(f"/container/{name}/action", data={"action": verb, **fields})


def status(name):
    return incus_cli("list", name, "-f", "csv", "-c", "s").stdout.strip()


def suspended_rows(app):
    with app.app_context():
        db = app.extensions["incus_api"].db
        return [row["container_name"] for row in db.query("SELECT container_name FROM suspended")]


def test_suspend_blocks_start_restart_exec_password_and_reinstall_and_unsuspend_restores_traffic(
        api, container_name, busybox_image, test_host):
    name = container_name()
    create(api, name, busybox_image)
    rule_id, port = forward(api, name)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    suspended = action(api, name, "suspend")
    assert suspended.status_code == 200, suspended.get_json()
    assert suspended.get_json()["container_status"] == "Stopped" and suspended.get_json()["suspended"] is True
    assert status(name) == "STOPPED"
    assert api.get(f"/container/{name}/info").get_json()["suspended"] is True
    assert test_host.http_get(test_host.host_ip, port) is None  # the forward carries nothing
    # the rule is kept, ready for unsuspend
    assert [rule["id"] for rule in api.get(f"/container/{name}/nat_rules").get_json()["rules"]] == [rule_id]

    english = {"Accept-Language": "en"}  # the message's words are checked below
    refused = [
        api.post(f"/container/{name}/action", data={"action": "start"}, headers=english),
        api.post(f"/container/{name}/action", data={"action": "restart"}, headers=english),
        api.post(f"/container/{name}/action", data={"action": "reinstall", "image": busybox_image}, headers=english),
        api.post(f"/container/{name}/exec", data={"command": "true"}, headers=english),
        api.post(f"/container/{name}/password", data={"password": "N3w-secret"}, headers=english),
    ]
    for response in refused:
        assert response.status_code == 409, response.get_json()
        body = response.get_json()
        assert body["status"] == "error" and "suspended" in body["message"] and "unsuspend" in body["message"]
    assert status(name) == "STOPPED"  # nothing above started it
    again = action(api, name, "suspend")
    assert again.status_code == 200 and again.get_json()["suspended"] is True

    unsuspended = action(api, name, "unsuspend")
    assert unsuspended.status_code == 200, unsuspended.get_json()
    assert unsuspended.get_json()["container_status"] == "Running" and unsuspended.get_json()["suspended"] is False
    assert api.get(f"/container/{name}/info").get_json()["suspended"] is False
    wait_for_ipv4(name)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"
    assert api.post(f"/container/{name}/exec", data={"command": "hostname"}).get_json()["output"].strip() == name


def test_the_mark_survives_a_new_app_and_delete_of_a_suspended_container_clears_it(app, api, make_container):
    name = make_container()
    assert action(api, name, "suspend").status_code == 200

    # A new app instance (a restart of the service) on the same database still refuses.
    restarted = create_app(dict(app.config), instance_path=app.instance_path)
    client = restarted.test_client()
    start = client.post(f"/container/{name}/action", data={"action": "start"}, headers=API_HEADERS)
    assert start.status_code == 409, start.get_json()
    assert client.get(f"/container/{name}/info", headers=API_HEADERS).get_json()["suspended"] is True
    assert status(name) == "STOPPED"

    deleted = client.post(f"/container/{name}/action", data={"action": "delete"}, headers=API_HEADERS)
    assert deleted.status_code == 200, deleted.get_json()
    assert incus_cli("info", name, check=False).returncode != 0
    assert suspended_rows(app) == []


def test_a_mark_of_a_container_deleted_behind_the_service_does_not_apply_to_a_new_one(app, api, make_container, busybox_image):
    name = make_container()
    assert action(api, name, "suspend").status_code == 200
    incus_cli("delete", "--force", name)
    incus_cli("launch", busybox_image, name)  # a new container, same name
    started = action(api, name, "restart")
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["suspended"] is False and suspended_rows(app) == []


def test_reinstall_gives_a_fresh_filesystem_keeping_address_limits_and_forwards(api, container_name, busybox_image,
                                                                               test_host):
    name = container_name()
    create(api, name, busybox_image)
    incus_cli("config", "set", name, "limits.cpu=1", "limits.memory=192MiB", "limits.processes=200")
    rule_id, port = forward(api, name)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"
    address = incus_cli("config", "device", "get", name, "eth0", "ipv4.address").stdout.strip()
    assert address
    incus_cli("exec", name, "--", "sh", "-c", "echo x > /root/marker")
    assert incus_cli("exec", name, "--", "test", "-e", "/root/marker", check=False).returncode == 0

    # An unknown image is refused before anything changes.
    unknown = action(api, name, "reinstall", image="no-such-image-here")
    assert unknown.status_code == 400 and "no-such-image-here" in unknown.get_json()["message"]
    assert status(name) == "RUNNING"
    assert incus_cli("exec", name, "--", "test", "-e", "/root/marker", check=False).returncode == 0

    reinstalled = action(api, name, "reinstall", image=busybox_image)
    assert reinstalled.status_code == 200, reinstalled.get_json()
    body = reinstalled.get_json()
    assert body["container_status"] == "Running" and body["suspended"] is False
    assert len(body["password"]) >= 16  # generated, answered once, like create
    assert status(name) == "RUNNING"
    assert incus_cli("exec", name, "--", "test", "-e", "/root/marker", check=False).returncode != 0
    shadow = incus_cli("exec", name, "--", "cat", "/etc/shadow").stdout
    assert shadow.startswith("root:$6$")  # the new filesystem got the root password

    assert incus_cli("config", "device", "get", name, "eth0", "ipv4.address").stdout.strip() == address
    assert body["ip"] == address
    for key, value in (("limits.cpu", "1"), ("limits.memory", "192MiB"), ("limits.processes", "200")):
        assert incus_cli("config", "get", name, key).stdout.strip() == value
    assert [rule["id"] for rule in api.get(f"/container/{name}/nat_rules").get_json()["rules"]] == [rule_id]
    wait_for_ipv4(name)
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    with_password = action(api, name, "reinstall", image=busybox_image, password="Given-pw-123")
    assert with_password.status_code == 200, with_password.get_json()
    assert "password" not in with_password.get_json()


def test_bad_input_is_400(api):
    for fields, words in (
        ({"action": "reinstall"}, "image"),
        ({"action": "reinstall", "image": "bad image!"}, "image"),
        ({"action": "hibernate"}, "hibernate"),
        ({"action": "start", "image": "busybox"}, "reinstall"),
        ({"action": "suspend", "password": "Some-pw-123"}, "reinstall"),
    ):
        response = api.post("/container/t-nobody/action", data=fields)
        assert response.status_code == 400, (fields, response.get_json())
        body = response.get_json()
        assert body["status"] == "error" and words in body["message"]


def test_suspend_and_unsuspend_of_an_unknown_container_are_404(api):
    for verb in ("suspend", "unsuspend"):
        assert action(api, "t-nobody-here", verb).status_code == 404
    assert action(api, "t-nobody-here", "reinstall", image="busybox").status_code == 404


def test_a_suspend_between_the_check_and_incus_start_leaves_it_stopped(app, api, make_container, monkeypatch):
    """The interleaving of a start and a suspend that run at once, made certain: the suspend comes
    after the start's check and before Incus starts the container."""
    name = make_container()
    assert incus_cli("stop", "--force", name).returncode == 0
    services = app.extensions["incus_api"].services
    incus = services.containers.incus
    real_change_state = incus.change_state

    def suspend_first(instance, verb, **options):
        if instance == name and verb == "start":
            monkeypatch.setattr(incus, "change_state", real_change_state)
            services.lifecycle.suspend(name)  # marks it, then finds nothing to stop
        return real_change_state(instance, verb, **options)

    monkeypatch.setattr(incus, "change_state", suspend_first)
    started = action(api, name, "start")
    assert started.status_code == 409, started.get_json()
    assert "action=unsuspend" in started.get_json()["message"]
    assert status(name) == "STOPPED" and suspended_rows(app) == [name]
    assert action(api, name, "unsuspend").status_code == 200 and status(name) == "RUNNING"
