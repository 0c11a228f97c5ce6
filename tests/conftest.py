"""Shared fixtures. Integration and browser tests run against the real Incus daemon, the real
kernel (python-iptables) and real HTTP; they need root. Under CI they must run: when the host is
not ready, the run fails instead of skipping them."""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
import requests
import websocket

from incus_api.host.certificate import make_self_signed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API_SECRET = "test-api-secret"
API_HEADERS = {"X-API-Hash": hashlib.sha256(API_SECRET.encode()).hexdigest()}
TEST_IMAGE = "busybox"
TEST_TAG_PREFIX = "incus-api-test"  # + a random part per app: parallel runs never touch each other
INCUS_SOCKET = os.environ.get("INCUS_SOCKET", "/var/lib/incus/unix.socket")
REAL_SUITES = ("integration", "browser", "billing")
BUSYBOX_BUILT = "/tmp/incus-api-test-busybox.run"  # the run that built the busybox image last
pytest_plugins = ["tests.s3_server"]  # s3_server, s3_auth_server: moto's S3 server (the off-site store's tests)


def host_problems():
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    if not os.path.exists(INCUS_SOCKET):
        problems.append(f"no Incus socket at {INCUS_SOCKET} (run: bash install_incus.sh)")
    if not shutil.which("iptables-legacy"):
        problems.append("iptables-legacy is missing (apt-get install iptables)")
    return problems


def pytest_sessionstart(session):
    """Before a run (once, not in each pytest-xdist worker): the forwards an earlier run left in the
    kernel (a killed run, a service killed with its rules) whose container address no instance
    holds any more. Such a rule on a port the pool hands out again would catch the traffic of this
    run's sale on it. Rules of a run still going point at its living containers and stay."""
    if hasattr(session.config, "workerinput") or host_problems():
        return
    listed = subprocess.run(["incus", "list", "-f", "json"], capture_output=True, text=True)
    if listed.returncode != 0:
        return
    living = {address["address"] for instance in json.loads(listed.stdout)
              for network in ((instance.get("state") or {}).get("network") or {}).values()
              for address in network.get("addresses", [])}
    living |= {device["ipv4.address"] for instance in json.loads(listed.stdout)
               for device in (instance.get("expanded_devices") or {}).values() if device.get("ipv4.address")}
    rules = subprocess.run(["iptables-legacy", "-t", "nat", "-S", "PREROUTING"], capture_output=True, text=True).stdout
    for rule in rules.splitlines():
        target = re.search(r"--to-destination ([0-9.]+)", rule)
        if TEST_TAG_PREFIX in rule and target and target.group(1) not in living:
            subprocess.run(["iptables-legacy", "-t", "nat", "-D", *shlex.split(rule)[1:]], capture_output=True)


def pytest_collection_modifyitems(config, items):
    real = [item for item in items if any(f"{os.sep}{suite}{os.sep}" in str(item.fspath) for suite in REAL_SUITES)]
    problems = host_problems() if real else []
    if not problems:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("integration/browser tests cannot run under CI: " + "; ".join(problems))
    marker = pytest.mark.skip(reason="needs a real host: " + "; ".join(problems))
    for item in real:
        item.add_marker(marker)


# Modules on the real host that pin no address (their containers take theirs by DHCP, or they
# make none), change nothing host-wide in the kernel (only NAT rules of their own tag) and run no
# traffic sampler: they may run on the other worker beside the rest, which sells containers (a
# sale pins the lowest free address: two processes selling at once could pick the same one). The
# fuzzer's service refuses every create: it has no image remotes and never names the busybox image.
BESIDE_THE_HOST_TESTS = ("tests/integration/test_fuzz.py", "tests/integration/test_exec_bounds.py",
                         "tests/browser/test_console.py", "tests/browser/test_dashboard_http.py",
                         "tests/browser/test_images_page.py")


def pytest_xdist_make_scheduler(config, log):
    """tests/run.sh runs two pytest-xdist workers: every test on the real host (integration,
    browser) is one unit of work, run one after another on one worker, since they share the
    bridge, its addresses and the kernel's tables; each pure-logic test is a unit of its own,
    spread over both workers meanwhile."""
    from xdist.scheduler import LoadScopeScheduling

    real_host = tuple(f"tests/{suite}/" for suite in REAL_SUITES)

    class RealHostTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            if nodeid.startswith(BESIDE_THE_HOST_TESTS):
                return nodeid.split("::")[0]
            return "real host" if nodeid.startswith(real_host) else nodeid

    return RealHostTogether(config, log)


# -- the app ---------------------------------------------------------------------------------

@pytest.fixture
def app_overrides():
    """Extra app settings; a test module overrides this fixture to change the config."""
    return {}


@pytest.fixture
def app(tmp_path, app_overrides):
    from incus_api import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "test.sqlite3"),
            "API_SECRET_KEY": API_SECRET,
            "SECRET_KEY": "test-session-key",
            "INCUS_SOCKET": INCUS_SOCKET,
            "NAT_TAG_PREFIX": f"{TEST_TAG_PREFIX}-{secrets.token_hex(3)}:",
            "ADMIN_USERNAME": "admin",
            "ADMIN_PASSWORD": "test-admin-password",
            **app_overrides,
        },
        instance_path=tmp_path / "instance",
    )
    yield app
    remove_test_nat_rules(app)


def rule_comment(app, rule_id):
    """How ``iptables -S`` shows the comment of our rule ``rule_id``."""
    return f'--comment "{app.config["NAT_TAG_PREFIX"]}{rule_id}"'


def remove_test_nat_rules(app):
    """Take the test's rules out of the kernel, whatever the test left behind."""
    remove_tagged_rules(app.extensions["incus_api"].nat)


def remove_tagged_rules(nat):
    if os.geteuid() != 0 or not shutil.which("iptables-legacy"):
        return
    for rule_id in {rule_id for rule_id, _ in nat.tagged()}:
        nat.remove_tagged(rule_id)
    nat.remove_forward_accept()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def api(client):
    """The test client with the API hash header on every call."""

    class Api:
        def __getattr__(self, method):
            call = getattr(client, method)
            return lambda *args, **kwargs: call(*args, headers={**API_HEADERS, **kwargs.pop("headers", {})}, **kwargs)

    return Api()


@pytest.fixture
def live_server(app):
    """The app behind a real HTTP server on loopback; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


# -- real containers -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def busybox_image():
    """The busybox test image, built once per run from Debian's busybox-static: by the first of
    the run's pytest-xdist workers that needs it (the others wait for it, then use it as it is:
    a second build would take the alias away while they create containers from it)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"single-{os.getpid()}"
    with open(BUSYBOX_BUILT, "a+") as built:
        fcntl.flock(built, fcntl.LOCK_EX)
        built.seek(0)
        if built.read().strip() != run:
            subprocess.run(["bash", str(ROOT / "image" / "busybox.sh"), TEST_IMAGE], check=True, capture_output=True)
            built.seek(0)
            built.truncate()
            built.write(run)
    return TEST_IMAGE


@pytest.fixture
def temp_image():
    """Factory: a busybox image imported under a temporary alias -> ``(alias, fingerprint)``;
    every image made and every alias in ``make.aliases`` is removed after the test."""
    made, aliases = [], []

    def make():
        alias = f"t-img-{secrets.token_hex(3)}"
        aliases.append(alias)
        subprocess.run(["bash", str(ROOT / "image" / "busybox.sh"), alias], check=True, capture_output=True)
        fingerprint = incus_cli("query", f"/1.0/images/aliases/{alias}").stdout
        fingerprint = re.search(r'"target":\s*"([0-9a-f]{64})"', fingerprint).group(1)
        made.append(fingerprint)
        return alias, fingerprint

    make.aliases = aliases
    yield make
    for alias in aliases:
        incus_cli("image", "alias", "delete", alias, check=False)
    for fingerprint in made:
        incus_cli("image", "delete", fingerprint, check=False)


def incus_cli(*args, check=True):
    return subprocess.run(["incus", *args], check=check, capture_output=True, text=True)


class Reaper:
    """Deletes the tests' containers in the background: a test hands its containers over at its
    end and the next test starts at once instead of waiting for Incus to stop and delete them.
    ``drain()`` waits for every delete handed over: the session's end calls it, and so does a test
    that reasons about the bridge's free addresses."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reaper")
        self.pending = []
        self.lock = threading.Lock()

    def delete(self, names):
        with self.lock:
            self.pending += [self.pool.submit(incus_cli, "delete", "--force", name, check=False) for name in names]

    def drain(self):
        with self.lock:
            pending, self.pending = self.pending, []
        wait(pending)


REAPER = Reaper()


def pytest_sessionfinish(session, exitstatus):
    REAPER.drain()


@pytest.fixture
def settled_bridge():
    """For a test that reasons about which addresses of the bridge are free: every container the
    earlier tests made is deleted first."""
    REAPER.drain()


@pytest.fixture
def container_name(request):
    """A factory of container names ``t-<test>-<random>``; every container named is deleted after
    the test, whether it passed or not."""
    names = []
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")

    def make():
        name = f"t-{test}-{secrets.token_hex(3)}"
        names.append(name)
        return name

    yield make
    REAPER.delete(names)


@pytest.fixture
def make_container(request, container_name, busybox_image):
    """Create and start a busybox container directly through Incus; returns its name.

    In a module that runs beside the host's tests (``BESIDE_THE_HOST_TESTS``) the container gets
    an address pinned from the top of what may be pinned (below the bridge's dynamic range; sales
    pin from the bottom) instead of a dynamic DHCP lease: the host's tests fill the dynamic range
    with made-up DHCP clients for a while (test_tenants), and on a bridge without a range dnsmasq
    hands dynamic leases out from the lowest free address, which a sale on the other worker may be
    pinning at that very moment."""
    beside = request.node.nodeid.startswith(BESIDE_THE_HOST_TESTS)

    def make(wait_for_ip=True):
        name = container_name()
        pinned = ["--device", f"eth0,ipv4.address={free_addresses()[-1]}"] if beside else []
        incus_cli("launch", busybox_image, name, *pinned)
        if wait_for_ip:
            wait_for_ipv4(name)
        return name

    return make


def free_addresses(bridge="incusbr0"):
    """The addresses of the bridge's subnet that a container may get pinned (outside its dynamic
    DHCP range), lowest first, that are not in Incus's leases (which hold the pinned addresses,
    of stopped containers too, and the dynamic ones; not those dnsmasq still leases to a host
    that is gone)."""
    from incus_api.service.addresses import BridgeNetwork

    network = BridgeNetwork.from_incus(json.loads(incus_cli("query", f"/1.0/networks/{bridge}").stdout))
    used = {lease["address"] for lease in json.loads(incus_cli("query", f"/1.0/networks/{bridge}/leases").stdout)}
    return [address for address in network.pinnable() if address not in used]


def container_ipv4(name):
    out = incus_cli("list", name, "-f", "csv", "-c", "4").stdout.strip()
    return out.split(" ")[0] if out else None


def wait_for_ipv4(name, timeout=15):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        address = container_ipv4(name)
        if address:
            return address
        time.sleep(0.1)
    raise AssertionError(f"{name} got no IPv4 address in {timeout} s")


# -- app.py as a host runs it -----------------------------------------------------------------

def unused_port():
    """A loopback port nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def service():
    """app.py in a subprocess, as a host runs it (the front with TLS, gunicorn behind): temporary DB
    and config, known API secret and admin, loopback. Its certificate is made by the test
    (``TLS_CERT``: the repository's instance folder is left alone); ``service.session()`` and
    ``service.websocket()`` trust it. Extra settings: ``@pytest.mark.parametrize("service_env", ...)``."""
    tmp = Path(tempfile.mkdtemp(prefix="incus-api-service-"))
    (tmp / "config.env").write_text("")
    make_self_signed(str(tmp / "cert.pem"), str(tmp / "key.pem"), ["localhost", "127.0.0.1"])
    port, secret, password = unused_port(), "console-test-secret", secrets.token_urlsafe(12)
    tag = f"{TEST_TAG_PREFIX}-{secrets.token_hex(3)}:"
    env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
           "API_SECRET_KEY": secret, "SECRET_KEY": secrets.token_hex(16), "DATABASE": str(tmp / "db.sqlite3"),
           "HOST": "127.0.0.1", "PORT": str(port), "INCUS_SOCKET": INCUS_SOCKET, "NAT_SYNC_INTERVAL": "0",
           "TRAFFIC_INTERVAL": "0", "NAT_TAG_PREFIX": tag,
           "INCUS_API_CONFIG": str(tmp / "config.env"), "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": password,
           "LOG_LEVEL": "INFO", "TLS_CERT": str(tmp / "cert.pem"), "TLS_KEY": str(tmp / "key.pem")}
    subprocess.run([sys.executable, "init_db.py"], cwd=ROOT, env=env, check=True, capture_output=True)
    log = open(tmp / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.base, proc.password, proc.log, proc.cert = f"https://127.0.0.1:{port}", password, tmp / "service.log", str(tmp / "cert.pem")
    proc.api = {"X-API-Hash": hashlib.sha256(secret.encode()).hexdigest()}

    def session():
        http = requests.Session()
        http.trust_env, http.verify = False, proc.cert
        return http

    def open_websocket(url, **kwargs):
        return websocket.create_connection(url, sslopt={"ca_certs": proc.cert}, **kwargs)

    def login():
        """A session signed in as the admin, as a browser does it (over HTTPS the CSRF check wants
        the Referer of this very site)."""
        http = session()
        page = http.get(proc.base + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        done = http.post(proc.base + "/login", data={"username": "admin", "password": password, "csrf_token": token},
                         headers={"Referer": proc.base + "/login"}, timeout=10, allow_redirects=False)
        assert done.status_code == 302, done.text[:300]
        return http

    proc.session, proc.websocket, proc.login = session, open_websocket, login
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the worker answers (the front alone answers 503)
        assert proc.poll() is None, (tmp / "service.log").read_text()
        with contextlib.suppress(requests.RequestException):
            if session().get(proc.base + "/login", timeout=1).status_code == 200:
                break
        time.sleep(0.1)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()
    # Its forwards stay in the kernel after a kill: a later test's port would reach this test's
    # container address (a sale's SSH port 20000 did, and the next sale's SSH login failed).
    from incus_api.nat import NatTable

    remove_tagged_rules(NatTable(tag_prefix=tag, bridge="incusbr0"))
