"""Incus adapter: the daemon's REST API over its unix socket, through pylxd. No Flask here.

pylxd's model objects make one request per object, so the hot paths use pylxd's raw API node
(``client.api``) with ``recursion`` instead; exec runs over its websockets with bounded output
and a deadline (``incus_exec.py``).
The client is created on first use, not at import or app creation: the service starts (and
answers 503) while the daemon is down, and reconnects by itself when it is back.
"""
import contextlib
import math
import os
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests
import urllib3
from pylxd import Client
from pylxd import client as pylxd_client
from pylxd import exceptions as pylxd_errors

from ..exceptions import IncusError, IncusUnavailable, NotFound, OperationTimeout
from ..i18n import N_
from . import console as incus_console
from . import exec as incus_exec

OPERATION_SUCCESS = 200
POOL_SIZE = 32  # keep-alive connections to the daemon, one per concurrently serving thread
DEFAULT_OUTPUT_LIMIT = 1024 * 1024  # bytes kept of each exec output stream (EXEC_OUTPUT_LIMIT)
IDLE_REUSE_SECONDS = 20  # a kept connection idle longer is not used again (incusd closes it at 30 s)


class _UnixSocketPool(pylxd_client._UnixSocketHTTPConnectionPool):
    """pylxd's unix-socket pool keeps one connection: with concurrent requests the others are
    opened and thrown away each time (and logged as "Connection pool is full").

    incusd closes a connection idle for 30 s: one idle for IDLE_REUSE_SECONDS is opened anew
    rather than sent a request that could cross the daemon's close (urllib3 sees a close only
    once it has happened)."""

    def __init__(self, socket_url):
        urllib3.HTTPConnectionPool.__init__(self, "localhost", maxsize=POOL_SIZE)
        self.socket_path = socket_url

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        idle_since = getattr(conn, "idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > IDLE_REUSE_SECONDS:
            conn.close()  # connected again when it is used
        return conn

    def _put_conn(self, conn):
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)


class _UnixAdapter(pylxd_client._UnixAdapter):
    """One pool for the socket. pylxd keys its pools by the whole request URL, path and query
    included: each instance and each operation's wait got a pool of its own, pylxd keeps the 25
    latest and closes the rest, so most requests opened a new connection to the daemon (and built
    a pool of POOL_SIZE slots) instead of reusing a kept-alive one."""

    def get_connection(self, url, proxies):
        parts = urlsplit(url)
        socket_url = f"{parts.scheme}://{parts.netloc}"  # the socket's path is the netloc, quoted
        with self.pools.lock:
            pool = self.pools.get(socket_url)
            if pool is None:
                pool = self.pools[socket_url] = _UnixSocketPool(socket_url)
        return pool


def _session():
    session = requests.Session()
    session.trust_env = False  # a unix socket: never through an http(s)_proxy from the environment
    session.mount(pylxd_client.DEFAULT_SCHEME, _UnixAdapter())
    return session


class Incus:
    def __init__(self, socket_path, operation_timeout=300):
        self.socket_path = socket_path
        self.operation_timeout = operation_timeout
        self._client = None
        self._client_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def api(self):
        """pylxd's raw REST node for ``/1.0``."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client.api

    def _connect(self):
        if not os.path.exists(self.socket_path):
            raise IncusUnavailable(
                N_("The Incus daemon is not running (no socket at {socket}). Start it: systemctl start incus"),
                socket=self.socket_path,
            )
        try:
            return Client(endpoint=self.socket_path, session=_session())
        except (pylxd_errors.ClientConnectionFailed, requests.RequestException, OSError) as exc:
            raise IncusUnavailable(N_("Cannot reach the Incus daemon: {reason}"), reason=str(exc)) from exc

    @contextlib.contextmanager
    def _translated(self, instance=None):
        """Turn pylxd/requests failures into domain errors carrying the daemon's reason."""
        try:
            yield
        except pylxd_errors.NotFound as exc:
            if instance is not None:
                raise NotFound(N_("Container {name} does not exist"), name=instance) from exc
            raise NotFound(N_("Not found in Incus: {reason}"), reason=str(exc)) from exc
        except pylxd_errors.LXDAPIException as exc:
            raise IncusError(N_("Incus error: {reason}"), reason=str(exc)) from exc
        except requests.Timeout as exc:
            raise OperationTimeout(N_("Incus did not answer in time: {reason}"), reason=str(exc)) from exc
        except (requests.ConnectionError, pylxd_errors.ClientConnectionFailed, OSError) as exc:
            raise IncusUnavailable(N_("Cannot reach the Incus daemon: {reason}"), reason=str(exc)) from exc

    def _get(self, node, instance=None, **params):
        with self._translated(instance):
            return node.get(params=params or None).json()["metadata"]

    def _wait(self, response, timeout=None):
        """Wait for the background operation a POST/PUT/DELETE started; its metadata on success."""
        body = response.json()
        if body.get("type") != "async":
            return body.get("metadata")
        operation_id = body["operation"].rsplit("/", 1)[-1]
        timeout = timeout or self.operation_timeout
        with self._translated():
            try:
                result = self.api.operations[operation_id].wait.get(
                    params={"timeout": timeout}, timeout=timeout + 10
                ).json()["metadata"]
            except pylxd_errors.LXDAPIException as exc:
                # A failed operation answers the wait with an error response; so does a wait
                # that ran out of time ("context deadline exceeded").
                if "deadline exceeded" in str(exc):
                    raise OperationTimeout(
                        N_("Incus operation '{description}' did not finish within {timeout} s"),
                        description=body.get("metadata", {}).get("description", ""), timeout=timeout,
                    ) from exc
                raise IncusError(N_("Incus error: {reason}"), reason=str(exc)) from exc
        if result["status_code"] == OPERATION_SUCCESS:
            return result.get("metadata")
        if result["status_code"] in (103, 105):  # still running / pending after the timeout
            raise OperationTimeout(
                N_("Incus operation '{description}' did not finish within {timeout} s"),
                description=result.get("description", ""), timeout=timeout,
            )
        raise IncusError(N_("Incus error: {reason}"), reason=result.get("err") or result.get("status"))

    # -- instances --------------------------------------------------------------------------

    def instance(self, name):
        """One instance with its state, snapshots and backups (one request)."""
        return self._get(self.api.instances[name], instance=name, recursion=1)

    def instance_config(self, name):
        """One instance without state: status, config, devices and expanded_devices (cheaper)."""
        return self._get(self.api.instances[name], instance=name)

    def instance_state(self, name):
        return self._get(self.api.instances[name].state, instance=name)

    def exists(self, name):
        try:
            self._get(self.api.instances[name], instance=name)
            return True
        except NotFound:
            return False

    def instances(self):
        """Every instance without state (fast); pair with ``leases()`` for addresses."""
        return self._get(self.api.instances, recursion=1)

    def network(self, name):
        return self._get(self.api.networks[name])

    def profile(self, name):
        return self._get(self.api.profiles[name])

    def storage_pool(self, name):
        """``GET /1.0/storage-pools/<name>``: its ``driver`` and ``config``."""
        return self._get(self.api["storage-pools"][name])

    def leases(self, network):
        """DHCP leases of a managed network: hostname, hwaddr, address, type."""
        return self._get(self.api.networks[network].leases)

    def create(self, name, source, start=True, devices=None, config=None, profiles=None):
        """Create (and start) a container; returns when the operation has finished.
        ``devices`` are the instance's own devices (over the profile's of the same name),
        ``config`` its own config keys (e.g. ``limits.*``), ``profiles`` its profiles (None:
        Incus's default)."""
        body = {"name": name, "type": "container", "source": source, "start": start, "devices": devices or {},
                "config": config or {}}
        if profiles is not None:
            body["profiles"] = list(profiles)
        with self._translated():
            response = self.api.instances.post(json=body)
        self._wait(response)

    def change_state(self, name, action, force=False, timeout=30):
        body = {"action": action, "force": force, "timeout": timeout}
        with self._translated(name):
            response = self.api.instances[name].state.put(json=body)
        self._wait(response, timeout=timeout + 30)

    def delete(self, name):
        with self._translated(name):
            response = self.api.instances[name].delete()
        self._wait(response)

    def rebuild(self, name, source):
        """A new root filesystem from ``source`` (as create's) for the stopped instance ``name``;
        its config, devices and profiles stay. Returns when the operation has finished."""
        with self._translated(name):
            response = self.api.instances[name].rebuild.post(json={"source": source})
        self._wait(response)

    def update(self, name, config=None, devices=None):
        """PATCH the instance's own config keys and devices in one request: the keys and devices
        named replace those of the same name, the others stay (Incus applies what it can live)."""
        body = {}
        if config:
            body["config"] = config
        if devices:
            body["devices"] = devices
        if not body:
            return
        with self._translated(name):
            response = self.api.instances[name].patch(json=body)
        self._wait(response)

    def update_devices(self, name, devices):
        """PATCH the instance's local devices (e.g. pin the NIC's ipv4.address)."""
        with self._translated(name):
            response = self.api.instances[name].patch(json={"devices": devices})
        self._wait(response)

    # -- snapshots ------------------------------------------------------------------------

    def snapshots(self, name):
        """``GET /1.0/instances/<name>/snapshots?recursion=1``: each snapshot's ``name``,
        ``created_at``, ``expires_at``, ``size`` (-1 where the pool does not tell), config."""
        return self._get(self.api.instances[name].snapshots, instance=name, recursion=1)

    def create_snapshot(self, name, snapshot):
        """A stateless snapshot named ``snapshot``; returns when it is taken."""
        with self._translated(name):
            response = self.api.instances[name].snapshots.post(json={"name": snapshot, "stateful": False})
        self._wait(response)

    def delete_snapshot(self, name, snapshot):
        with self._translated(name):
            response = self.api.instances[name].snapshots[snapshot].delete()
        self._wait(response)

    def restore_snapshot(self, name, snapshot):
        """``PUT /1.0/instances/<name>`` with ``{"restore": snapshot}``: the files, and the config,
        devices and profiles, as the snapshot has them (the caller puts the config back)."""
        with self._translated(name):
            response = self.api.instances[name].put(json={"restore": snapshot})
        self._wait(response)

    # -- backups --------------------------------------------------------------------------

    def create_backup(self, name, backup, timeout=None):
        """An Incus backup of ``name`` (without its snapshots, gzip) named ``backup``, kept by Incus
        until ``delete_backup``; returns when it is written."""
        body = {"name": backup, "instance_only": True, "optimized_storage": False, "compression_algorithm": "gzip"}
        with self._translated(name):
            response = self.api.instances[name].backups.post(json=body)
        self._wait(response, timeout=timeout)

    @contextlib.contextmanager
    def export_backup(self, name, backup, chunk_size=1024 * 1024):
        """The backup's tarball as an iterator of chunks, read as it is consumed (never whole)."""
        with self._translated(name):
            response = self.api.instances[name].backups[backup].export.get(stream=True, is_api=False,
                                                                            timeout=(10, 300))
        try:
            def chunks():
                with self._translated(name):
                    yield from response.iter_content(chunk_size)
            yield chunks()
        finally:
            response.close()

    def delete_backup(self, name, backup):
        with self._translated(name):
            response = self.api.instances[name].backups[backup].delete()
        self._wait(response)

    def import_backup(self, source, name, pool=None, timeout=None):
        """A new (stopped) instance ``name`` from an export tarball read from ``source`` (a file
        object with a length: streamed, never whole), its root disk in ``pool`` (None: the pool the
        export names); returns when Incus has made it."""
        headers = {"Content-Type": "application/octet-stream", "X-Incus-name": name}
        if pool:
            headers["X-Incus-pool"] = pool
        with self._translated():
            response = self.api.instances.post(data=source, headers=headers, timeout=(10, 600))
        self._wait(response, timeout=timeout)

    def replace(self, name, body):
        """``PUT /1.0/instances/<name>``: its config, devices, profiles, description as ``body``."""
        with self._translated(name):
            response = self.api.instances[name].put(json=body)
        self._wait(response)

    def exec(self, name, argv, timeout, stdin=b"", output_limit=DEFAULT_OUTPUT_LIMIT):
        """Run ``argv`` (no shell) over the exec websockets (``incus_exec``); an ``ExecResult``.

        ``stdin`` is fed to the command and then closed: the way to hand it a secret, since Incus
        puts the argv in its lifecycle events and the argv and environment on the ``incusd
        forkexec`` command line, which every host user sees in ``ps``. Each of stdout and stderr
        keeps its first ``output_limit`` bytes; the rest is read and dropped (``truncated``).
        Past ``timeout`` s every process the command started in the container is killed and
        ``OperationTimeout`` raised. Nothing is written to the host's disk.
        """
        deadline = time.monotonic() + timeout
        tag = uuid.uuid4().hex
        body = {
            "command": argv,
            "wait-for-websocket": True,
            "interactive": False,
            "environment": {"HOME": "/root", "USER": "root", "LANG": "C.UTF-8", incus_exec.TAG_VARIABLE: tag},
        }
        with self._translated(name):
            response = self.api.instances[name]["exec"].post(json=body)
            answer = response.json()
            operation_id = answer["operation"].rsplit("/", 1)[-1]
            fds = answer["metadata"]["metadata"]["fds"]
        timed_out = None
        with incus_exec.ExecStreams(self.socket_path, operation_id, fds) as streams:
            # The kill comes before the websockets close: closing the control one makes Incus kill
            # the first process, and its children would lose the parent that ties them to the exec.
            try:
                streams.send_stdin(stdin)
                stdout, stderr = streams.drain(deadline, output_limit)
                metadata = self._wait(response, timeout=max(1, math.ceil(deadline - time.monotonic())))
            except (incus_exec.DeadlinePassed, OperationTimeout) as exc:
                timed_out = exc
                incus_exec.kill_tagged(name, tag)
            except BaseException:
                with contextlib.suppress(Exception):  # whatever went wrong, nothing of it keeps running
                    incus_exec.kill_tagged(name, tag)
                raise
        if timed_out is not None:
            self._settle(operation_id)
            raise OperationTimeout(
                N_("Incus operation '{description}' did not finish within {timeout} s"),
                description="exec", timeout=timeout,
            ) from timed_out
        return incus_exec.ExecResult(
            exit_code=(metadata or {}).get("return", -1),
            stdout=stdout.text(), stderr=stderr.text(),
            stdout_truncated=stdout.truncated, stderr_truncated=stderr.truncated,
        )

    def open_console(self, name, columns, rows):
        """A login shell (bash, else sh) on a PTY of ``columns`` x ``rows`` in the running
        container ``name``: an ``incus_console.Console`` to read, write and resize, ended by
        ``end_console``. Nothing of what passes through it is written anywhere."""
        tag = uuid.uuid4().hex
        with self._translated(name):
            answer = self.api.instances[name]["exec"].post(json=incus_console.exec_body(columns, rows, tag)).json()
            operation_id = answer["operation"].rsplit("/", 1)[-1]
            fds = answer["metadata"]["metadata"]["fds"]
        streams = incus_console.ConsoleStreams(self.socket_path, operation_id, fds).__enter__()
        return incus_console.Console(name, tag, operation_id, streams)

    def end_console(self, console):
        """Kill every process the console started in the container (those it put in the
        background too), then close its websockets; returns how many processes were killed."""
        killed = 0
        try:
            killed = incus_exec.kill_tagged(console.name, console.tag)
        finally:
            console.streams.close()
            self._settle(console.operation_id, timeout=5)
        return killed

    def _settle(self, operation_id, timeout=10):
        """Give a killed exec's operation a moment to end, so that it does not linger."""
        with contextlib.suppress(Exception):
            self.api.operations[operation_id].wait.get(params={"timeout": timeout}, timeout=timeout + 5)

    def push_file(self, name, path, content, mode=0o600, uid=0, gid=0):
        """Write ``content`` (bytes) to ``path`` in the instance through the Incus files API: the
        data goes in the request body, on no command line. An existing file is removed first (Incus
        keeps an overwritten file's mode), so the new one has exactly ``mode``, ``uid`` and ``gid``
        (the instance's own ids). The parent directory must exist (``NotFound`` otherwise)."""
        node = self.api.instances[name].files
        headers = {
            "X-Incus-type": "file", "X-Incus-write": "overwrite",
            "X-Incus-mode": f"{mode:04o}", "X-Incus-uid": str(uid), "X-Incus-gid": str(gid),
            "Content-Type": "application/octet-stream",
        }
        with self._translated():
            with contextlib.suppress(pylxd_errors.NotFound):
                node.delete(params={"path": path})
            node.post(params={"path": path}, data=bytes(content), headers=headers)

    def make_directory(self, name, path, mode=0o700, uid=0, gid=0):
        """Create the directory ``path`` in the instance (files API); an existing one is left as it
        is. The parent must exist (``NotFound`` otherwise)."""
        headers = {
            "X-Incus-type": "directory",
            "X-Incus-mode": f"{mode:04o}", "X-Incus-uid": str(uid), "X-Incus-gid": str(gid),
        }
        with self._translated():
            self.api.instances[name].files.post(params={"path": path}, data=b"", headers=headers)

    # -- images -----------------------------------------------------------------------------

    def images(self):
        return self._get(self.api.images, recursion=1)

    def image_alias(self, alias):
        return self._get(self.api.images.aliases[alias])

    def delete_image(self, fingerprint):
        with self._translated():
            response = self.api.images[fingerprint].delete()
        self._wait(response)

    def create_image_alias(self, alias, fingerprint, description=""):
        body = {"name": alias, "target": fingerprint, "description": description}
        with self._translated():
            self.api.images.aliases.post(json=body)

    def delete_image_alias(self, alias):
        with self._translated():
            self.api.images.aliases[alias].delete()

    def pull_image(self, source, aliases=()):
        """Start copying an image from a remote into the local store; returns the operation's id."""
        body = {"source": source, "aliases": [{"name": alias} for alias in aliases]}
        with self._translated():
            response = self.api.images.post(json=body)
        return response.json()["operation"].rsplit("/", 1)[-1]

    # -- operations -------------------------------------------------------------------------

    def operation(self, operation_id):
        """One background operation (Incus forgets it a few seconds after it ends)."""
        return self._get(self.api.operations[operation_id])

    def wait_operation(self, operation_id, timeout):
        """Wait up to ``timeout`` s for an operation; its state, finished or not (no raise on failure)."""
        with self._translated():
            try:
                return self.api.operations[operation_id].wait.get(
                    params={"timeout": timeout}, timeout=timeout + 10
                ).json()["metadata"]
            except pylxd_errors.NotFound:
                raise
            except pylxd_errors.LXDAPIException as exc:
                # A failed operation answers the wait with an error response.
                return {"id": operation_id, "status": "Failure", "status_code": 400, "err": str(exc), "metadata": {}}

    def ping(self):
        return self._get(self.api)
