"""Configuration from the environment (names fixed by the service contract) and an optional file.

Precedence: explicit overrides (tests) > environment variables > config file > defaults. The file
is ``KEY=VALUE`` lines, found at ``$INCUS_API_CONFIG`` or ``<instance>/config.env``.
"""
import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"

ENV_KEYS = (
    "API_SECRET_KEY",
    "SECRET_KEY",
    "DATABASE",
    "HOST",
    "PORT",
    "INCUS_SOCKET",
    "INCUS_BRIDGE",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "EXEC_TIMEOUT",
    "OPERATION_TIMEOUT",
    "IMAGE_REMOTES",
    "LOG_LEVEL",
    "NAT_TAG_PREFIX",
    "RESERVED_PORTS",
    "NAT_SYNC_INTERVAL",
)

DEFAULTS = {
    "HOST": "0.0.0.0",
    "PORT": 5000,
    "INCUS_SOCKET": "/var/lib/incus/unix.socket",
    "INCUS_BRIDGE": "incusbr0",
    "EXEC_TIMEOUT": 60,
    "OPERATION_TIMEOUT": 300,
    # name=url pairs; "remote:alias" images are pulled from these simplestreams servers.
    "IMAGE_REMOTES": "images=https://images.linuxcontainers.org",
    "LOG_LEVEL": "INFO",
    # Host ports that can never be forwarded (the service's own PORT is always added).
    "RESERVED_PORTS": "22",
    # Seconds between two reconciles of the kernel's NAT rules with the DB (0: only at start-up).
    "NAT_SYNC_INTERVAL": 60,
    # Comment prefix that marks our iptables rules; the tests use their own.
    "NAT_TAG_PREFIX": "incus-api-web:",
}

INT_KEYS = ("PORT", "EXEC_TIMEOUT", "OPERATION_TIMEOUT", "NAT_SYNC_INTERVAL")


def read_config_file(path):
    values = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_config(environ=None, instance_path=DEFAULT_INSTANCE_PATH):
    """The settings as a dict for ``app.config``, without secrets that have to be generated."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    settings["DATABASE"] = str(Path(instance_path) / "incus_api.sqlite3")
    config_file = environ.get("INCUS_API_CONFIG") or Path(instance_path) / "config.env"
    if Path(config_file).is_file():
        settings.update({k: v for k, v in read_config_file(config_file).items() if k in ENV_KEYS})
    settings.update({key: environ[key] for key in ENV_KEYS if environ.get(key)})
    for key in INT_KEYS:
        settings[key] = int(settings[key])
    settings["RESERVED_PORTS"] = f"{settings['RESERVED_PORTS']},{settings['PORT']}"
    return settings


def parse_remotes(spec):
    """``"images=https://a,mirror=https://b"`` -> ``{"images": "https://a", "mirror": "https://b"}``."""
    remotes = {}
    for item in spec.split(","):
        if "=" in item:
            name, url = item.split("=", 1)
            remotes[name.strip()] = url.strip().rstrip("/")
    return remotes


def persistent_secret(path):
    """Read a secret from ``path``, creating it (mode 0600) on first use.

    Used for the session key: a key generated per process would log everyone out on restart and
    break sessions across workers.
    """
    path = Path(path)
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
