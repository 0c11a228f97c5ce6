"""The process's own heap: freed pages given back to the system. Used by the front, the iptc
thread and the backup thread, each after a burst; a long-lived service at rest keeps only what it
uses."""
import ctypes


def _find_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc; elsewhere there is nothing to trim this way
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _find_malloc_trim()


def can_trim():
    return _MALLOC_TRIM is not None


def trim_heap():
    """glibc's ``malloc_trim(0)``: the free pages of every arena back to the system."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
