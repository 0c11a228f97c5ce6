"""Configuration from the environment (names fixed by the service contract) and an optional file.

Precedence: explicit overrides (tests) > environment variables > config file > defaults. The file
is ``KEY=VALUE`` lines, found at ``$INCUS_API_CONFIG`` or ``<instance>/config.env``.
"""
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"
MAX_REQUEST_BYTES = 1024 * 1024  # a request body's limit (the app's and the server's)

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
    "ISOLATE_CONTAINERS",
    "EXEC_OUTPUT_LIMIT",
    "EXEC_PER_CONTAINER",
    "CONSOLE_IDLE_TIMEOUT",
    "CONSOLE_PER_CONTAINER",
    "TRUSTED_PROXIES",
    "SESSION_COOKIE_SECURE",
    "AUDIT_KEEP_DAYS",
    "AUDIT_ANONYMOUS_KEEP",
    "PORT_POOL",
    "PUBLIC_HOST",
    "TRAFFIC_INTERVAL",
    "TRAFFIC_THROTTLE_RATE",
    "TLS",
    "TLS_CERT",
    "TLS_KEY",
    "CUSTOMER_SESSION_HOURS",
    "CUSTOMER_IMAGES",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_PREFIX",
    "S3_REGION",
    "BACKUP_DIR",
    "BACKUP_SCHEDULE",
    "BACKUP_KEEP",
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
    # security.port_isolation on every container's NIC: containers cannot reach each other over
    # the bridge (they still reach the host's DNS/DHCP and the internet).
    "ISOLATE_CONTAINERS": True,
    # Bytes kept of each output stream (stdout, stderr) of an exec; the rest is read and dropped.
    "EXEC_OUTPUT_LIMIT": 1024 * 1024,
    # Commands that may run at once in one container through the API (429 past it).
    "EXEC_PER_CONTAINER": 4,
    # Seconds without a keystroke after which a browser console (web terminal) is ended.
    "CONSOLE_IDLE_TIMEOUT": 900,
    # Browser consoles open at once on one container (429 past it; 16 at most on the host).
    "CONSOLE_PER_CONTAINER": 2,
    # Addresses/networks of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed.
    "TRUSTED_PROXIES": "",
    # Send the session cookie only over HTTPS (always, not just when the request came over it).
    "SESSION_COOKIE_SECURE": False,
    # The audit log keeps authenticated actions this many days, and at most this many anonymous
    # (failed) requests, so a flood of 401s cannot push the real history out.
    "AUDIT_KEEP_DAYS": 180,
    "AUDIT_ANONYMOUS_KEEP": 10_000,
    # Host ports handed out by ssh_port=auto and ports=N (reserved ports and ports in use are skipped).
    "PORT_POOL": "20000-59999",
    # The address customers connect to (answers and the dashboard); empty: the default route's address.
    "PUBLIC_HOST": "",
    # Seconds between two samples of the traffic counters (0: no counting, no quotas).
    "TRAFFIC_INTERVAL": 60,
    # The NIC rate (each way) of a container over its traffic quota with traffic_action=throttle.
    "TRAFFIC_THROTTLE_RATE": "1Mbit",
    # HTTPS (off: plain HTTP, for a TLS proxy on the same host). Without TLS_CERT/TLS_KEY (PEM
    # files) a self-signed certificate is made under the instance folder (service/tls.py).
    "TLS": True,
    "TLS_CERT": "",
    "TLS_KEY": "",
    # Hours a customer's panel stays signed in after its one-time link was opened.
    "CUSTOMER_SESSION_HOURS": 12,
    # Image aliases a customer may reinstall from, comma-separated (empty: the one it was sold with).
    "CUSTOMER_IMAGES": "",
    # The S3-compatible store (MinIO, R2, B2, Ceph, AWS) the backups are copied to (offsite.py):
    # S3_ENDPOINT is its URL (https://s3.example.com, http://127.0.0.1:9000); empty: no copies.
    # ENDPOINT, BUCKET, ACCESS_KEY and SECRET_KEY are set together or not at all. Objects are
    # S3_PREFIX + the backup's file name. S3_SECRET_KEY is shown nowhere (like API_SECRET_KEY).
    "S3_ENDPOINT": "",
    "S3_BUCKET": "",
    "S3_ACCESS_KEY": "",
    "S3_SECRET_KEY": "",
    "S3_PREFIX": "incus-api-web/",
    "S3_REGION": "us-east-1",
    # Backups (issue 21): one file each, 0700 folder; every container by BACKUP_SCHEDULE (off,
    # hourly, 'daily HH:MM', 'weekly DAY HH:MM', host's local time), BACKUP_KEEP kept per container.
    "BACKUP_DIR": "/var/lib/incus-api-web/backups",
    "BACKUP_SCHEDULE": "off",
    "BACKUP_KEEP": 7,
}

INT_KEYS = ("PORT", "EXEC_TIMEOUT", "CONSOLE_IDLE_TIMEOUT", "OPERATION_TIMEOUT", "NAT_SYNC_INTERVAL", "EXEC_OUTPUT_LIMIT",
            "EXEC_PER_CONTAINER", "CONSOLE_PER_CONTAINER", "AUDIT_KEEP_DAYS", "AUDIT_ANONYMOUS_KEEP",
            "TRAFFIC_INTERVAL", "CUSTOMER_SESSION_HOURS", "BACKUP_KEEP")
BOOL_KEYS = ("ISOLATE_CONTAINERS", "SESSION_COOKIE_SECURE", "TLS")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def read_config_file(path):
    return read_config_text(Path(path).read_text(encoding="utf-8"))


def read_config_text(text):
    values = {}
    for raw in text.splitlines():
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
        settings[key] = parse_int_setting(key, settings[key])
    for key in BOOL_KEYS:
        settings[key] = parse_bool_setting(key, settings[key])
    settings["RESERVED_PORTS"] = f"{settings['RESERVED_PORTS']},{settings['PORT']}"
    settings["TRAFFIC_THROTTLE_RATE"] = parse_rate_setting("TRAFFIC_THROTTLE_RATE", settings["TRAFFIC_THROTTLE_RATE"])
    settings.update(parse_s3_settings(settings))
    parse_schedule_setting(settings["BACKUP_SCHEDULE"])
    if settings["BACKUP_KEEP"] < 1:
        raise SettingError(f"BACKUP_KEEP={settings['BACKUP_KEEP']}: keep at least 1 backup per container")
    return settings


def parse_schedule_setting(value):
    from .parse.schedule import parse_schedule

    try:
        return parse_schedule(value)
    except ValueError as exc:
        raise SettingError(str(exc)) from None


class SettingError(ValueError):
    """A setting in the environment or config file that cannot be read: the service refuses to start."""


def parse_int_setting(key, value):
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise SettingError(f"{key}={value!r}: a whole number (ASCII digits) is needed")
    return int(text)


def parse_rate_setting(key, value):
    """A NIC rate as Incus spells it (``1Mbit``)."""
    from .exceptions import BadInput
    from .parse.quantities import rate

    try:
        return rate(str(value).strip(), key).text
    except BadInput:
        raise SettingError(f"{key}={value!r}: a rate such as 1Mbit or 512kbit is needed") from None


def parse_bool_setting(key, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise SettingError(f"{key}={value!r}: use true or false")


S3_REQUIRED = ("S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY")
S3_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,61}[A-Za-z0-9]")


def parse_s3_settings(settings):
    """The S3 store's settings of ``settings`` (any dict-like), checked and normalised: ``S3_PREFIX``
    ends with ``/`` unless empty, ``S3_ENDPOINT`` has no trailing ``/``. All four of ``S3_REQUIRED``
    or none (no copies): a store half set up would leave the backups on the host unnoticed. The
    messages never repeat the secret key (nor an endpoint that carries credentials)."""
    values = {key: str(settings.get(key) or "").strip() for key in S3_REQUIRED}
    values["S3_PREFIX"] = str(settings.get("S3_PREFIX", DEFAULTS["S3_PREFIX"]) or "").strip().lstrip("/")
    values["S3_REGION"] = str(settings.get("S3_REGION") or "").strip() or DEFAULTS["S3_REGION"]
    given = [key for key in S3_REQUIRED if values[key]]
    if given and len(given) < len(S3_REQUIRED):
        missing = ", ".join(key for key in S3_REQUIRED if not values[key])
        raise SettingError(f"{', '.join(given)} set but not {missing}: the S3 store needs S3_ENDPOINT, S3_BUCKET, "
                           "S3_ACCESS_KEY and S3_SECRET_KEY together (or none of them: no copies off the host)")
    if values["S3_PREFIX"] and not values["S3_PREFIX"].endswith("/"):
        values["S3_PREFIX"] += "/"
    if not given:
        return values
    endpoint = urlsplit(values["S3_ENDPOINT"])
    if endpoint.username is not None or endpoint.password is not None:
        raise SettingError("S3_ENDPOINT: no credentials in the URL (they go in S3_ACCESS_KEY and S3_SECRET_KEY)")
    try:
        port_ok = endpoint.port is None or endpoint.port > 0
    except ValueError:
        port_ok = False
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname or not port_ok \
            or endpoint.path not in ("", "/") or endpoint.query or endpoint.fragment:
        raise SettingError(f"S3_ENDPOINT={values['S3_ENDPOINT']!r}: the store's URL is needed, http:// or https:// "
                           "and a host (and port), without a path: https://s3.example.com, http://127.0.0.1:9000")
    values["S3_ENDPOINT"] = f"{endpoint.scheme}://{endpoint.netloc}"
    if not S3_BUCKET_NAME.fullmatch(values["S3_BUCKET"]) or ".." in values["S3_BUCKET"]:
        raise SettingError(f"S3_BUCKET={values['S3_BUCKET']!r}: a bucket name is 3 to 63 letters, digits, dots "
                           "and hyphens")
    if any(part in (".", "..") for part in values["S3_PREFIX"].split("/")):
        raise SettingError(f"S3_PREFIX={values['S3_PREFIX']!r}: no . or .. between the slashes")
    return values


# What install.sh keeps in the config file from its environment: every setting but the admin's
# password (init_db.py uses it once; it never rests in a file).
SAVED_KEYS = tuple(key for key in ENV_KEYS if key != "ADMIN_PASSWORD")


def save_settings(environ, path):
    """Write the ``SAVED_KEYS`` set in ``environ`` into the ``KEY=VALUE`` file at ``path`` (mode
    0600), keeping its other lines. The result is read back first: a value the service could not
    start with is refused here (``SettingError``), and the file is left as it was."""
    path = Path(path)
    given = {key: environ[key].strip() for key in SAVED_KEYS if environ.get(key, "").strip()}
    for key, value in given.items():
        if "\n" in value or "\r" in value:
            raise SettingError(f"{key}: one line only")
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    kept = [line for line in lines if line.partition("=")[0].strip() not in given]
    text = "\n".join([*kept, *(f"{key}={value}" for key, value in given.items())]) + "\n"
    merged = read_config_text(text)
    load_config(environ={key: merged[key] for key in ENV_KEYS if key in merged}, instance_path=path.parent / ".none")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return sorted(given)


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
