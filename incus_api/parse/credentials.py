"""Root's credentials: a password for ``chpasswd`` and OpenSSH public keys for authorized_keys."""
import base64
import binascii
import re

from ..exceptions import BadInput
from ..i18n import N_

MIN_PASSWORD_LENGTH = 6
MAX_PASSWORD_LENGTH = 128


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
