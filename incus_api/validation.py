"""Parsing of user input into typed values; every failure is a ``BadInput`` a person can act on."""
import re
import shlex

from werkzeug.routing import IntegerConverter

from .exceptions import BadInput
from .i18n import N_

# Incus instance names are hostnames: letters, digits and hyphens, 1-63 characters, starting with
# a letter and not ending with a hyphen.
CONTAINER_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,254}")
ACTIONS = ("start", "stop", "restart", "delete", "suspend", "unsuspend", "reinstall")
PROTOCOLS = ("tcp", "udp")
MAX_COMMAND_BYTES = 16 * 1024


def required(form, field):
    value = form.get(field)
    if value is None or str(value).strip() == "":
        raise BadInput(N_("The field '{field}' is required"), field=field)
    return str(value)


def container_name(value):
    if value is None or value == "":
        raise BadInput(N_("The field '{field}' is required"), field="name")
    if not CONTAINER_NAME.fullmatch(value):
        raise BadInput(
            N_("Invalid container name '{name}': use 1-63 letters, digits and hyphens, starting with a letter and not ending with a hyphen"),
            name=value[:80],
        )
    return value


def image_ref(value):
    value = value.strip()
    if not IMAGE_REF.fullmatch(value):
        raise BadInput(
            N_("Invalid image '{image}': give a local alias, a fingerprint, or remote:alias such as images:debian/12"),
            image=value[:80],
        )
    return value


def action(value):
    value = value.strip().lower()
    if value not in ACTIONS:
        raise BadInput(N_("Invalid action '{action}': use start, stop, restart, delete, suspend, unsuspend or reinstall"),
                       action=value[:40])
    return value


ASCII_DIGITS = re.compile(r"[0-9]+")
BIGGEST_ID = 2**63 - 1  # SQLite's INTEGER: anything larger overflows it


def whole_number(value, field, minimum, maximum):
    """A whole number from ``minimum`` to ``maximum``, written in ASCII digits only.

    No sign, spaces, exponent, fraction or other scripts' digits (``'²'.isdigit()`` and
    ``int('٣')`` both accept those); the length is checked before ``int()`` so a long digit string
    costs nothing and never reaches SQLite.
    """
    text = str(value)
    if (len(text) > len(str(maximum)) or not ASCII_DIGITS.fullmatch(text)
            or not minimum <= int(text) <= maximum):
        raise BadInput(N_("Invalid {field} '{value}': a whole number from {minimum} to {maximum}"),
                       field=field, value=text[:40], minimum=minimum, maximum=maximum)
    return int(text)


class WholeNumberConverter(IntegerConverter):
    """``<int:...>`` in a route, ASCII digits only and at most 18 of them.

    Werkzeug's own matches ``\\d+``, which takes other scripts' digits (``/nat_rule/٣`` deleted
    rule 3) and any length (30 digits went on to the service): such a path now matches no route
    and answers 404.
    """

    regex = r"[0-9]{1,18}"
    signed_regex = r"-?[0-9]{1,18}"


def port(value, field):
    """A TCP/UDP port: plain decimal digits only (no sign, spaces, exponents or fractions)."""
    return whole_number(value, field, 1, 65535)


MAX_RANGE_SIZE = 1000


def port_range(value, field):
    """A port or a range ``start-end`` (at most ``MAX_RANGE_SIZE`` ports): ``(start, end)``."""
    text = str(value)
    start_text, dash, end_text = text.partition("-")
    if not dash:
        start = port(text, field)
        return start, start
    start, end = port(start_text, field), port(end_text, field)
    if end < start or end - start + 1 > MAX_RANGE_SIZE:
        raise BadInput(
            N_("Invalid {field} range '{value}': start-end with start <= end, at most {limit} ports"),
            field=field, value=text[:40], limit=MAX_RANGE_SIZE,
        )
    return start, end


def forward_ports(host_range, container_range):
    """Parsed ``host_port`` and ``container_port`` ranges -> ``(host_start, host_end, container_start)``.

    A host range maps to the same-size container range; the container side may give just its start.
    """
    host_start, host_end = host_range
    container_start, container_end = container_range
    size = host_end - host_start
    if container_end != container_start and container_end - container_start != size:
        raise BadInput(N_("The host and container port ranges must have the same size"))
    if container_start + size > 65535:
        raise BadInput(N_("The container port range goes past 65535"))
    return host_start, host_end, container_start


def protocol(value):
    value = value.strip().lower()
    if value not in PROTOCOLS:
        raise BadInput(N_("Invalid protocol '{protocol}': use tcp or udp"), protocol=value[:40])
    return value


def command(value):
    """Split a command line like a shell would, to run it without one."""
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_COMMAND_BYTES:
        raise BadInput(N_("The command is too long (at most {limit} bytes)"), limit=MAX_COMMAND_BYTES)
    if "\x00" in value:
        raise BadInput(N_("The command contains a NUL byte"))
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise BadInput(N_("Cannot parse the command: {reason}"), reason=str(exc)) from exc
    if not argv:
        raise BadInput(N_("The field '{field}' is required"), field="command")
    return argv


# -- images and passwords ----------------------------------------------------------------------

FINGERPRINT = re.compile(r"[0-9a-f]{12,64}")
# Local alias names: no ":" (it would read as remote:alias), no spaces; "/" as in debian/12.
IMAGE_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MIN_PASSWORD_LENGTH = 6
MAX_PASSWORD_LENGTH = 128


def fingerprint(value):
    value = value.strip().lower()
    if not FINGERPRINT.fullmatch(value):
        raise BadInput(N_("Invalid image fingerprint '{fingerprint}': 12 to 64 hexadecimal digits"), fingerprint=value[:80])
    return value


def image_alias(value):
    value = value.strip()
    if not IMAGE_ALIAS.fullmatch(value) or "//" in value or value.endswith("/"):
        raise BadInput(
            N_("Invalid image alias '{alias}': 1-128 letters, digits, '.', '_', '-' and '/', starting with a letter or digit"),
            alias=value[:80],
        )
    return value


def operation_id(value):
    if not OPERATION_ID.fullmatch(value):
        raise BadInput(N_("Invalid operation id '{id}'"), id=value[:40])
    return value


def root_password(value):
    """A root password for ``chpasswd``: one line of printable characters. Never echoed back."""
    if value is None or value == "":
        raise BadInput(N_("The field '{field}' is required"), field="password")
    if any(ch in value for ch in "\r\n\x00"):
        raise BadInput(N_("The password must be a single line"))
    if any(not ch.isprintable() for ch in value):
        raise BadInput(N_("The password contains control characters"))
    if value != value.strip():
        raise BadInput(N_("The password must not start or end with a space"))
    if not MIN_PASSWORD_LENGTH <= len(value) <= MAX_PASSWORD_LENGTH:
        raise BadInput(
            N_("The password must have {min} to {max} characters"),
            min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
        )
    return value



# -- SSH public keys (root's authorized_keys at create) -----------------------------------------

SSH_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
SSH_KEY_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,8192}={0,2}")
SSH_KEY_COMMENT = re.compile(r"[^\x00-\x1f\x7f]{0,256}")
MAX_SSH_KEYS = 32
MAX_SSH_KEY_TEXT = 32 * 1024


def ssh_keys(value):
    """OpenSSH public keys, one a line (``ssh-ed25519 AAAA... comment``), for authorized_keys.

    No options before the type; each key's base64 must decode to a key of the type it names;
    blank lines are left out. Returns the file's text: the keys one a line, ending in a newline.
    """
    import base64
    import binascii

    text = value or ""
    if len(text) > MAX_SSH_KEY_TEXT:
        raise BadInput(N_("The SSH keys are too long: at most {count} keys in {size} characters"),
                       count=MAX_SSH_KEYS, size=MAX_SSH_KEY_TEXT)
    keys = []
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        parts = line.strip(" \t").split(None, 2)
        if not parts:
            continue
        key_type, blob, comment = (parts + ["", ""])[:3]
        valid = (key_type in SSH_KEY_TYPES and SSH_KEY_BASE64.fullmatch(blob) is not None
                 and SSH_KEY_COMMENT.fullmatch(comment) is not None)
        if valid:
            try:
                raw = base64.b64decode(blob, validate=True)
                valid = raw[4:4 + int.from_bytes(raw[:4], "big")] == key_type.encode()
            except (binascii.Error, ValueError):
                valid = False
        if not valid:
            raise BadInput(
                N_("Line {line} of the SSH keys is not an OpenSSH public key ('type base64 comment', type one of: {types})"),
                line=number, types=", ".join(SSH_KEY_TYPES),
            )
        keys.append(" ".join(part for part in (key_type, blob, comment) if part))
    if not keys:
        raise BadInput(N_("The field '{field}' holds no SSH public key"), field="ssh_key")
    if len(keys) > MAX_SSH_KEYS:
        raise BadInput(N_("The SSH keys are too long: at most {count} keys in {size} characters"),
                       count=MAX_SSH_KEYS, size=MAX_SSH_KEY_TEXT)
    return "\n".join(keys) + "\n"
