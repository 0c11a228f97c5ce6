"""One change at a time per thing (a container, a backup): a second one meanwhile is a 409 at
once, never a wait behind the first (which may take minutes)."""
import contextlib
import threading

from ..exceptions import Conflict


class OneAtATime:
    def __init__(self, refusal):
        self.refusal = refusal  # the Conflict's message; ``{key}`` is the thing's name or id
        self._busy = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def holding(self, key, **params):
        """While the block runs, ``key`` is held; ``Conflict(refusal)`` when it already is."""
        with self._lock:
            if key in self._busy:
                raise Conflict(self.refusal, key=key, **params)
            self._busy.add(key)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(key)
