"""The customer's forwards against the real daemon and kernel (issue 19): a container sold with
ports=N, its customer signed in through a real one-time link, points a port of the block at the
container's httpd (port 80) and reaches it from a network namespace, deletes it and the port stops
answering; the block stays the container's through a reinstall, the pool never sells its ports
to another sale, and it ends with the container."""
import re

import pytest

from ..conftest import wait_for_ipv4

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def app_overrides(pool):
    return {"PORT_POOL": f"{pool[0]}-{pool[1]}", "PUBLIC_HOST": "203.0.113.7"}


def sell(api, name, **fields):
    response = api.post("/container/create", data={"name": name, "image": "busybox", **fields}, headers=ENGLISH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


class Panel:
    """A browser signed in as a container's customer: the link opened with no login, then the
    session cookie and the CSRF token on every call."""

    def __init__(self, app, api, name):
        self.client = app.test_client()
        link = api.post(f"/container/{name}/customer_link").get_json()
        opened = self.client.get(link["url"])
        assert opened.status_code == 302 and opened.headers["Location"].endswith("/customer"), opened.status_code
        page = self.client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        self.headers = {"X-CSRFToken": token, "Accept": "application/json", **ENGLISH}

    def forwards(self):
        answer = self.client.get("/customer/forwards", headers=self.headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    def add(self, host_port, container_port, protocol="tcp"):
        return self.client.post("/customer/forwards", headers=self.headers, data={
            "host_port": str(host_port), "container_port": str(container_port), "protocol": protocol})

    def delete(self, rule_id):
        return self.client.delete(f"/customer/forwards/{rule_id}", headers=self.headers)


def test_the_customer_points_a_block_port_at_port_80_and_the_pool_keeps_the_block(app, api, container_name,
                                                                                  busybox_image, test_host, pool):
    name = container_name()
    sale = sell(api, name, ssh_port="auto", ports="3")
    block = sale["ports"]
    assert wait_for_ipv4(name) == sale["ip"]
    info = api.get(f"/container/{name}/info").get_json()
    assert info["port_block"] == {"start": block["start"], "end": block["end"], "count": 3}

    panel = Panel(app, api, name)
    listed = panel.forwards()
    assert listed["port_block"]["start"] == block["start"] and listed["public_host"] == "203.0.113.7"
    kinds = sorted((rule["kind"], rule["protocol"]) for rule in listed["forwards"])
    assert kinds == [("block", "tcp"), ("block", "udp"), ("ssh", "tcp")]
    ssh = next(rule for rule in listed["forwards"] if rule["kind"] == "ssh")
    assert ssh["public"] == f"203.0.113.7:{sale['ssh']['port']}" and not ssh["editable"]

    # refused: outside the block, the SSH port, a port the sale's range rule already forwards
    assert panel.add(block["end"] + 1, 80).status_code == 403
    assert panel.add(sale["ssh"]["port"], 80).status_code == 403
    taken = panel.add(block["start"] + 1, 80)
    assert taken.status_code == 409 and "delete a forward of your block first" in taken.get_json()["message"]

    # the sale's tcp range rule goes; one port of the block now reaches the container's httpd
    range_rule = next(rule for rule in listed["forwards"] if rule["kind"] == "block" and rule["protocol"] == "tcp")
    assert panel.delete(range_rule["id"]).status_code == 200
    port = block["start"] + 1
    added = panel.add(port, 80)
    assert added.status_code == 200, added.get_json()
    rule = added.get_json()["rule"]
    assert rule["public"] == f"203.0.113.7:{port}"
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    # the pool never hands the block's ports to another sale, with or without their rules
    free = api.get("/ports/free", query_string={"count": "10"}).get_json()
    assert free["start"] > block["end"] or free["end"] < block["start"], free
    other = container_name()
    second = sell(api, other, ports="3")
    assert second["ports"]["start"] > block["end"] or second["ports"]["end"] < block["start"], second["ports"]
    refused = api.post(f"/container/{other}/add_nat_rule", headers=ENGLISH,
                       data={"host_port": str(block["start"]), "container_port": "80", "protocol": "tcp"})
    assert refused.status_code == 409 and f"sold with container {name}" in refused.get_json()["message"]

    # a reinstall keeps the block and the customer's rule
    reinstalled = api.post(f"/container/{name}/action", data={"action": "reinstall", "image": busybox_image})
    assert reinstalled.status_code == 200, reinstalled.get_json()
    assert api.get(f"/container/{name}/info").get_json()["port_block"]["start"] == block["start"]
    assert rule["id"] in {r["id"] for r in panel.forwards()["forwards"]}
    assert wait_for_ipv4(name) == sale["ip"]
    assert test_host.http_get(test_host.host_ip, port) == f"hello from {name}"

    # deleted: the port stops answering, and it is free to point again
    assert panel.delete(rule["id"]).status_code == 200
    assert test_host.http_get(test_host.host_ip, port) is None
    assert port in panel.forwards()["port_block"]["free"]["tcp"]

    # the container's delete ends the block: its ports are the pool's again
    assert api.post(f"/container/{name}/action", data={"action": "delete"}).status_code == 200
    assert app.extensions["incus_api"].services.nat_rules.block_of(name) is None
