"""Creates and deletes beside the background jobs: no request waits on another's Incus call.

A delete used to hold the SQLite write transaction across Incus's stop and delete and take the
traffic pass lock inside it, while a sampling pass took the two the other way round: deletes took
half a minute and other requests answered 500 "database is locked". Here the traffic sampler and
the NAT sync run every second in the real scheduler while containers are created and deleted at
once and the list is read meanwhile."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from incus_api.scheduler import Scheduler
from tests.conftest import API_HEADERS

SLOW = 5.0  # seconds: no request may take longer


@pytest.fixture
def scheduler(app):
    """The app's one background loop with the sampler and the sync every second; the passes that
    failed are recorded."""
    services = app.extensions["incus_api"].services
    failures, passes = [], []

    def watched(job):
        def run():
            try:
                job()
                passes.append(job)
            except Exception as exc:
                failures.append(repr(exc))
                raise
        return run

    loop = Scheduler()
    loop.every(1, "traffic", watched(services.traffic.sample))
    loop.every(1, "nat-sync", watched(services.nat_sync.sync))
    loop.start()
    yield failures, passes
    loop.stop()


def timed(session, url, method, what, record, **kwargs):
    started = time.monotonic()
    response = session.request(method, url, headers=API_HEADERS, timeout=120, **kwargs)
    record.append((what, response.status_code, time.monotonic() - started, response.text[:200]))
    return response


def test_creates_and_deletes_beside_the_sampler_never_stall(live_server, scheduler, container_name, busybox_image):
    session = requests.Session()
    session.trust_env = False
    record = []
    old = [container_name() for _ in range(3)]
    new = [container_name() for _ in range(3)]
    for name in old:  # each with forwards, so that a delete has NAT rules and counters to remove
        response = timed(session, f"{live_server}/container/create", "POST", "setup", [],
                         data={"name": name, "image": busybox_image, "ssh_port": "auto", "ports": "2"})
        assert response.status_code == 200, response.text
    failures, passes = scheduler
    deadline = time.monotonic() + 10
    while len(passes) < 4 and time.monotonic() < deadline:  # both jobs have run with these containers
        time.sleep(0.1)

    done = threading.Event()

    def poll():
        while not done.is_set():
            timed(session, f"{live_server}/containers", "GET", "list", record)
            timed(session, f"{live_server}/container/{old[0]}/nat_rules", "GET", "rules", record)

    with ThreadPoolExecutor(max_workers=7) as pool:
        poller = pool.submit(poll)
        calls = [pool.submit(timed, requests.Session(), f"{live_server}/container/{name}/action", "POST", "delete",
                             record, data={"action": "delete"}) for name in old]
        calls += [pool.submit(timed, requests.Session(), f"{live_server}/container/create", "POST", "create", record,
                              data={"name": name, "image": busybox_image, "ports": "2"}) for name in new]
        for call in calls:
            call.result()
        done.set()
        poller.result()

    errors = [entry for entry in record if entry[1] >= 500]
    assert not errors, errors
    assert all(status == 200 for what, status, _, _ in record if what in ("delete", "create")), record
    slow = [(what, round(seconds, 1)) for what, _, seconds, _ in record if seconds > SLOW]
    assert not slow, slow
    assert sum(1 for entry in record if entry[0] == "list") >= 3  # the list was read while they ran
    assert not failures, failures
