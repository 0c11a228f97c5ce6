"""Parameters and answer shapes that several routes share."""
from ..parse import credentials, names
from ..parse.ports import PORT_DIGITS, PROTOCOLS
from . import Param, anchored

NAME_SCHEMA = {"type": "string", "pattern": anchored(names.CONTAINER_NAME), "maxLength": names.CONTAINER_NAME_MAX}
PORTS_SCHEMA = {"type": "string", "pattern": f"^[0-9]{{1,{PORT_DIGITS}}}(-[0-9]{{1,{PORT_DIGITS}}})?$"}
FINGERPRINT_SCHEMA = {"type": "string", "pattern": anchored(names.FINGERPRINT)}
IMAGE_SCHEMA = {"type": "string", "maxLength": names.IMAGE_REF_MAX}
ALIAS_SCHEMA = {"type": "string", "maxLength": names.IMAGE_ALIAS_MAX}
PASSWORD_SCHEMA = {"type": "string", "minLength": credentials.MIN_PASSWORD_LENGTH,
                   "maxLength": credentials.MAX_PASSWORD_LENGTH}

NAME = Param("name", names.container_name, NAME_SCHEMA, where="path", required=True,
             description="Container name: letters, digits, hyphens; starts with a letter.")
NEW_NAME = Param("name", lambda value: names.container_name(value.strip()), NAME_SCHEMA, required=True,
                 description="Container name: letters, digits, hyphens; starts with a letter.")
IMAGE = Param("image", names.image_ref, IMAGE_SCHEMA, required=True,
              description="Local alias, fingerprint, or `remote:alias` (e.g. `images:debian/12`).")
FINGERPRINT = Param("fingerprint", names.fingerprint, FINGERPRINT_SCHEMA, where="path", required=True,
                    description=f"Image fingerprint (or its first {names.FINGERPRINT_MIN}+ characters).")


def optional_password(description):
    return Param("password", credentials.root_password, PASSWORD_SCHEMA, description=description)


SSH_KEY = Param("ssh_key", credentials.ssh_keys, {"type": "string", "maxLength": credentials.MAX_SSH_KEY_TEXT}, description=(
    "Optional OpenSSH public keys, one a line (`ssh-ed25519 AAAA... comment`; ssh-ed25519, ssh-rsa, "
    "ecdsa-sha2-nistp256/384/521, sk-*), written to /root/.ssh/authorized_keys."))

RULE = {"type": "object", "properties": {
    "id": {"type": "integer"}, "container_name": {"type": "string"}, "host_port": {"type": "integer"},
    "host_port_end": {"type": "integer"}, "container_port": {"type": "integer"},
    "container_port_end": {"type": "integer"}, "protocol": {"type": "string", "enum": list(PROTOCOLS)},
    "container_ip": {"type": "string"}, "ip_at_creation": {"type": ["string", "null"]},
    "created_at": {"type": "string"},
    "orphaned": {"type": "boolean", "description": (
        "Its container was deleted outside this service (or made again under its name): the rule forwards "
        "nothing, is never applied to another container, and keeps its host ports until it is deleted")},
    "orphaned_at": {"type": ["string", "null"], "description": "When a sync found its container gone"},
}}
