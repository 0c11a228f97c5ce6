"""The customer's panel routes (issue 19), through the Flask test client with the fake Incus behind
the services they read, and recorders in place of the ones that would change a container: no
session answers 401, a POST without the CSRF token 400, a suspended container 409 for every action
with nothing changed, an image the seller does not offer 400; the container is always the
session's, whatever a field names, and the audit log says ``customer:<container>``."""
import re

import pytest

from tests.unit.fake_incus import FakeIncus

BASE = "ab" * 32  # the image web1 was made from
ACTIONS = [("/customer/power", {"action": "start"}), ("/customer/power", {"action": "stop"}),
           ("/customer/power", {"action": "restart"}), ("/customer/password", {}),
           ("/customer/password", {"password": "typed-password"}),
           ("/customer/ssh-key", {"ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ me"}),
           ("/customer/reinstall", {"image": "debian12-ssh"})]


class Recorder:
    """Stands for a service that would change the container: records each call."""

    def __init__(self, calls, answers):
        self.calls, self.answers = calls, answers

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((method, args, kwargs))
            answer = self.answers.get(method)
            return answer(*args, **kwargs) if callable(answer) else answer
        return call


@pytest.fixture
def panel(app, monkeypatch):
    """The app with web1 (stopped, made from BASE, alias debian12-ssh) and web2 in the fake Incus;
    ``panel.calls``: what reached power, credentials and reinstall."""
    services = app.extensions["incus_api"].services
    incus = FakeIncus()
    incus.add("web1", status="Stopped", config={"volatile.base_image": BASE, "image.description": "Debian 12"})
    incus.add("web2")
    incus.add_image(BASE, alias="debian12-ssh")
    incus.add_image("cd" * 32, alias="alpine")
    for service in (services.customers, services.images, services.traffic):
        monkeypatch.setattr(service, "incus", incus)

    class Info:
        def info(self, name, with_state=True):
            instance = incus.instance_config(name)
            return {"name": name, "status": instance["status"], "config": instance["config"], "ip": None,
                    "image": "Debian 12", "created_at": instance["created_at"], "state": {}, "limits": {},
                    "suspended": services.lifecycle.is_suspended(name), "live_data_available": True}

    calls = []
    monkeypatch.setattr(services, "info", Info())
    monkeypatch.setattr(services, "power", Recorder(calls, {"start": ("Running", False), "stop": ("Stopped", False),
                                                             "restart": ("Running", False)}))
    monkeypatch.setattr(services, "credentials", Recorder(calls, {
        "reset_password": lambda name, password: None if password else "generated-once"}))
    monkeypatch.setattr(services.lifecycle, "reinstall",
                        lambda *args, **kwargs: calls.append(("reinstall", args, kwargs)) or ({"status": "Running", "ip": None}, None))
    services.panel_calls, services.fake_incus = calls, incus
    return services


def sign_in(client, services, name="web1"):
    token, _ = services.customers.create_link(name)
    opened = client.get(f"/customer/{token}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/customer")
    return csrf_of(client)


def offered(page):
    """The images the reinstall form offers."""
    select = re.search(r'<select name="image">(.*?)</select>', page, re.S).group(1)
    return re.findall(r'<option value="([^"]+)"', select)


def csrf_of(client):
    client.set_cookie("lang", "en")  # the messages below are read in English
    page = client.get("/customer/signed-out").get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def test_without_a_session_the_panel_and_its_actions_answer_401(client, panel):
    token = csrf_of(client)
    page = client.get("/customer", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "data-customer-refused" in page.get_data(as_text=True)
    assert client.get("/customer/overview").status_code == 401
    for path, data in ACTIONS:
        answer = client.post(path, data=data, headers={"X-CSRFToken": token})
        assert answer.status_code == 401, path
        assert answer.get_json()["status"] == "error"
    assert panel.panel_calls == []


def test_a_post_without_the_csrf_token_is_refused(client, panel):
    sign_in(client, panel)
    for path, data in ACTIONS:
        answer = client.post(path, data=data)
        assert answer.status_code == 400, path
        assert "security token" in answer.get_json()["message"]
    assert panel.panel_calls == []


def test_a_suspended_container_refuses_every_action_and_shows_no_control(client, panel):
    token = sign_in(client, panel)
    uuid = panel.fake_incus.by_name["web1"]["config"]["volatile.uuid"]
    panel.lifecycle.suspensions.mark("web1", uuid, "billing")
    for path, data in ACTIONS:
        answer = client.post(path, data=data, headers={"X-CSRFToken": token})
        assert answer.status_code == 409, path
        assert "suspended by your provider" in answer.get_json()["message"]
    assert panel.panel_calls == []

    page = client.get("/customer").get_data(as_text=True)
    assert "data-suspended-note" in page
    buttons = re.findall(r"<button[^>]*data-power=[^>]*>", page)
    assert len(buttons) == 3 and all(" hidden" in button for button in buttons)
    assert re.search(r'<div class="columns" data-unless-suspended\s+hidden', page)
    assert re.search(r'<section class="card" id="console"[^>]*hidden', page)


def test_a_traffic_suspension_says_so(client, panel, monkeypatch):
    token = sign_in(client, panel)
    panel.lifecycle.suspensions.mark("web1", None, "traffic")
    monkeypatch.setattr(panel.traffic, "summary", lambda name: {"enforced": "suspend", "period_end": "2026-12-31T00:00"})
    answer = client.post("/customer/power", data={"action": "start"}, headers={"X-CSRFToken": token})
    assert answer.status_code == 409 and "traffic" in answer.get_json()["message"]
    assert "2026-12-31" in answer.get_json()["message"]
    assert panel.panel_calls == []


def test_reinstall_only_from_an_image_offered(client, panel, app):
    token = sign_in(client, panel)
    refused = client.post("/customer/reinstall", data={"image": "alpine"}, headers={"X-CSRFToken": token})
    assert refused.status_code == 400 and "not offered" in refused.get_json()["message"]
    assert panel.panel_calls == []
    page = client.get("/customer").get_data(as_text=True)  # the default: the image it was made from
    assert offered(page) == ["debian12-ssh"]

    done = client.post("/customer/reinstall", data={"image": "debian12-ssh", "name": "web2"},
                       headers={"X-CSRFToken": token})
    assert done.status_code == 200, done.get_json()
    assert panel.panel_calls == [("reinstall", ("web1", "debian12-ssh"), {"password": None, "ssh_key": None})]

    app.config["CUSTOMER_IMAGES"] = "alpine, images:debian/12"
    panel.panel_calls.clear()
    for image in ("debian12-ssh", "busybox"):
        answer = client.post("/customer/reinstall", data={"image": image}, headers={"X-CSRFToken": token})
        assert answer.status_code == 400, image
    assert panel.panel_calls == []
    assert client.post("/customer/reinstall", data={"image": "alpine"}, headers={"X-CSRFToken": token}).status_code == 200
    assert offered(client.get("/customer").get_data(as_text=True)) == ["alpine", "images:debian/12"]


def test_actions_reach_the_sessions_container_only_and_are_audited_as_the_customer(client, panel):
    token = sign_in(client, panel)
    for action in ("start", "restart", "stop"):
        answer = client.post("/customer/power", data={"action": action, "name": "web2"}, headers={"X-CSRFToken": token})
        assert answer.status_code == 200 and answer.get_json()["status"] == "success"
    assert [(call[0], call[1]) for call in panel.panel_calls] == [("start", ("web1",)), ("restart", ("web1",)),
                                                                   ("stop", ("web1",))]
    for bad in ("delete", "suspend", "unsuspend", "reinstall", ""):
        answer = client.post("/customer/power", data={"action": bad}, headers={"X-CSRFToken": token})
        assert answer.status_code == 400, bad
    assert len(panel.panel_calls) == 3

    generated = client.post("/customer/password", data={"name": "web2"}, headers={"X-CSRFToken": token}).get_json()
    assert generated["password"] == "generated-once"
    typed = client.post("/customer/password", data={"password": "typed-password"}, headers={"X-CSRFToken": token})
    assert "password" not in typed.get_json()
    assert panel.panel_calls[3:] == [("reset_password", ("web1", None), {}),
                                     ("reset_password", ("web1", "typed-password"), {})]
    short = client.post("/customer/password", data={"password": "abc"}, headers={"X-CSRFToken": token})
    assert short.status_code == 400 and len(panel.panel_calls) == 5
    assert client.post("/customer/ssh-key", data={"ssh_key": "not a key"}, headers={"X-CSRFToken": token}).status_code == 400

    entries = [entry for entry in panel.audit_log.entries() if entry["action"].startswith("customer.")]
    assert entries and {(entry["actor"], entry["target"]) for entry in entries} == {("customer:web1", "web1")}
    assert "typed-password" not in str(entries) and "generated-once" not in str(entries)


def test_a_container_made_again_under_the_name_ends_the_session(client, panel):
    token = sign_in(client, panel)
    panel.fake_incus.by_name["web1"]["config"]["volatile.uuid"] = "another-instance"
    answer = client.post("/customer/power", data={"action": "start"}, headers={"X-CSRFToken": token})
    assert answer.status_code == 410 and panel.panel_calls == []
    page = client.get("/customer", headers={"Accept": "text/html"})
    assert page.status_code == 410 and "no longer exists" in page.get_data(as_text=True)
    assert client.get("/customer", headers={"Accept": "text/html"}).status_code == 401  # signed out with it


def test_the_console_socket_needs_the_session_and_this_hosts_origin(client, panel):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
               "Sec-WebSocket-Version": "13"}
    assert client.get("/customer/console/ws", headers={**headers, "Origin": "http://localhost"}).status_code == 401
    sign_in(client, panel)
    foreign = client.get("/customer/console/ws", headers={**headers, "Origin": "http://evil.example"})
    assert foreign.status_code == 403
