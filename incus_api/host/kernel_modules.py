"""Whether the running kernel has a module, built in or loadable (read from ``/sys``, ``/proc``,
``/lib/modules``, the kernel's config, and ``modprobe -n``)."""
import gzip
import os
import shutil
import subprocess
import threading
import time

KERNEL_CONFIG = {"sch_htb": "CONFIG_NET_SCH_HTB", "sch_ingress": "CONFIG_NET_SCH_INGRESS",
                 "cls_u32": "CONFIG_NET_CLS_U32", "act_police": "CONFIG_NET_ACT_POLICE"}
MODULES_CACHE_SECONDS = 60


class KernelModules:
    """Whether the running kernel has a module, built in or loadable.

    Asked in turn: ``/sys/module`` (loaded, or built in with parameters), ``/proc/modules``,
    ``modules.builtin``, the kernel's config (``/proc/config.gz`` or ``/boot/config-<release>``;
    ``=y`` built in, ``=m`` a module), and ``modprobe -n`` for one that may be loaded. True,
    False, or None when nothing could tell (then Incus is left to try).
    """

    def __init__(self, root="/", release=None):
        self.root = root
        self.release = release or os.uname().release
        self._cache = {}
        self._lock = threading.Lock()

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    def _read(self, *parts):
        path = self._path(*parts)
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rt", errors="replace") as handle:
                    return handle.read(4 * 1024 * 1024)
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read(4 * 1024 * 1024)
        except OSError:
            return None

    def _config(self):
        return self._read("proc", "config.gz") or self._read("boot", f"config-{self.release}")

    def has(self, module):
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(module)
            if cached and now - cached[1] < MODULES_CACHE_SECONDS:
                return cached[0]
        found = self._look(module)
        with self._lock:
            self._cache[module] = (found, now)
        return found

    def _look(self, module):
        if os.path.isdir(self._path("sys", "module", module)):
            return True
        loaded = self._read("proc", "modules")
        if loaded and any(line.split(" ", 1)[0] == module for line in loaded.splitlines()):
            return True
        builtin = self._read("lib", "modules", self.release, "modules.builtin")
        if builtin and any(line.rsplit("/", 1)[-1] in (f"{module}.ko",) for line in builtin.splitlines()):
            return True
        config = self._config()
        symbol = KERNEL_CONFIG.get(module)
        if config is not None and symbol:
            lines = config.splitlines()
            if f"{symbol}=y" in lines:
                return True
            if f"{symbol}=m" not in lines:
                return False
        loadable = self._modprobe(module)
        if loadable is not None:
            return loadable
        return None if config is None else False

    def _modprobe(self, module):
        """``modprobe -n -q``: whether it could load the module (None without modprobe)."""
        if self.root != "/":
            return None
        modprobe = shutil.which("modprobe") or next(
            (path for path in ("/usr/sbin/modprobe", "/sbin/modprobe") if os.access(path, os.X_OK)), None)
        if modprobe is None:
            return None
        try:
            return subprocess.run([modprobe, "-n", "-q", module], capture_output=True, timeout=5).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return None

    def missing(self, modules):
        return [module for module in modules if self.has(module) is False]
