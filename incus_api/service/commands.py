"""Commands run in a container (``exec``): each bounded in time and output, at most
``EXEC_PER_CONTAINER`` at once in one container. Root's password is set through the same slots
(``credentials``)."""
import contextlib
import threading

from ..exceptions import BadInput, IncusError, OperationTimeout, TooManyRequests
from ..i18n import N_


class Commands:
    def __init__(self, incus, suspensions, config):
        self.incus = incus
        self.suspensions = suspensions  # suspensions.Suspensions: no command in a suspended container
        self.timeout = int(config.get("EXEC_TIMEOUT", 60))
        self.output_limit = int(config.get("EXEC_OUTPUT_LIMIT", 1024 * 1024))
        self.per_container = max(1, int(config.get("EXEC_PER_CONTAINER", 4)))
        self._running = {}  # container name -> commands running in it now
        self._lock = threading.Lock()

    def run(self, name, argv, stdin=b""):
        """The raw ``ExecResult`` of ``argv`` in ``name``, in one of its slots; Incus's errors as
        Incus raised them (the callers word them)."""
        with self.slot(name):
            return self.incus.exec(name, argv, timeout=self.timeout, stdin=stdin, output_limit=self.output_limit)

    def exec(self, name, argv):
        """Run ``argv`` in the container: an ``ExecResult`` with each of stdout and stderr cut at
        EXEC_OUTPUT_LIMIT bytes (``truncated``); past EXEC_TIMEOUT everything it started is
        killed (504); at most EXEC_PER_CONTAINER at once in one container (429)."""
        self.suspensions.refuse(name, "exec")
        try:
            return self.run(name, argv)
        except IncusError as exc:
            reason = exc.reason
            if reason == "Command not found":
                raise BadInput(N_("Command not found in container {name}: {command}"), name=name, command=argv[0]) from exc
            if "not running" in reason:
                raise BadInput(N_("Container {name} is not running"), name=name) from exc
            raise
        except OperationTimeout as exc:
            raise OperationTimeout(N_("The command did not finish within {timeout} s"), timeout=self.timeout) from exc

    @contextlib.contextmanager
    def slot(self, name):
        """One of the container's EXEC_PER_CONTAINER exec slots, or 429 at once (never waits)."""
        with self._lock:
            running = self._running.get(name, 0)
            if running >= self.per_container:
                raise TooManyRequests(
                    N_("{count} commands are already running in container {name} (the limit): try again when one has finished"),
                    count=running, name=name,
                )
            self._running[name] = running + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running.pop(name) - 1
                if left:
                    self._running[name] = left
