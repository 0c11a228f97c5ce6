"""Every python-iptables call on one long-lived thread, and the freed table copies given back.

libiptc copies the whole table into malloc'd memory on each use (megabytes with thousands of
rules). Made from the server's request threads, each of them ends up keeping such a copy in its
own malloc arena (about 9 MB per thread with 5,000 rules: +140 MB with 16 threads); made from one
thread, the memory is reused. The calls were serialised by the table lock anyway. Once the NAT
calls have been quiet for a second, glibc is asked to give the freed pages back (trimming after
every call would cost each call ~2 ms of page faults with 5,000 rules).
"""
import concurrent.futures
import functools
import threading
import time

from ..memory import can_trim, trim_heap


class IptcThread:
    TRIM_AFTER_SECONDS = 1.0

    def __init__(self):
        self._executor = None
        self._ident = None
        self._start_lock = threading.Lock()
        self._last_call = 0.0
        self._trim_timer = None

    def _remember_ident(self):
        self._ident = threading.get_ident()

    def call(self, fn, *args, **kwargs):
        if threading.get_ident() == self._ident:  # already there (e.g. remove -> remove_tagged)
            return fn(*args, **kwargs)
        if self._executor is None:
            with self._start_lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="iptc", initializer=self._remember_ident)
        try:
            return self._executor.submit(fn, *args, **kwargs).result()
        finally:
            self._last_call = time.monotonic()
            self._schedule_trim()

    def _schedule_trim(self, delay=None):
        if not can_trim():
            return
        with self._start_lock:
            if self._trim_timer is None:
                self._trim_timer = threading.Timer(delay or self.TRIM_AFTER_SECONDS, self._trim)
                self._trim_timer.daemon = True
                self._trim_timer.start()

    def _trim(self):
        with self._start_lock:
            self._trim_timer = None
        quiet_for = time.monotonic() - self._last_call
        if quiet_for < self.TRIM_AFTER_SECONDS:
            self._schedule_trim(self.TRIM_AFTER_SECONDS - quiet_for)
            return
        # glibc keeps the freed table copies in its arenas (its mmap threshold grows after the
        # first big free); give those pages back to the system.
        trim_heap()


_iptc_thread = IptcThread()


def on_iptc_thread(method):
    """Run the decorated function on the one iptc thread."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return _iptc_thread.call(method, *args, **kwargs)

    return wrapper
