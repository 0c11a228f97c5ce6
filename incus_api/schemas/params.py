"""Parameters and answer shapes that several routes share."""
from .. import validation
from . import Param

NAME_SCHEMA = {"type": "string", "pattern": "^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", "maxLength": 63}
PORTS_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$"}
FINGERPRINT_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{12,64}$"}
PASSWORD_SCHEMA = {"type": "string", "minLength": 6, "maxLength": 128}

NAME = Param("name", validation.container_name, NAME_SCHEMA, where="path", required=True,
             description="Container name: letters, digits, hyphens; starts with a letter.")
NEW_NAME = Param("name", lambda value: validation.container_name(value.strip()), NAME_SCHEMA, required=True,
                 description="Container name: letters, digits, hyphens; starts with a letter.")
IMAGE = Param("image", validation.image_ref, {"type": "string", "maxLength": 255}, required=True,
              description="Local alias, fingerprint, or `remote:alias` (e.g. `images:debian/12`).")
FINGERPRINT = Param("fingerprint", validation.fingerprint, FINGERPRINT_SCHEMA, where="path", required=True,
                    description="Image fingerprint (or its first 12+ characters).")


def optional_password(description):
    return Param("password", validation.root_password, PASSWORD_SCHEMA, description=description)


SSH_KEY = Param("ssh_key", validation.ssh_keys, {"type": "string", "maxLength": 32768}, description=(
    "Optional OpenSSH public keys, one a line (`ssh-ed25519 AAAA... comment`; ssh-ed25519, ssh-rsa, "
    "ecdsa-sha2-nistp256/384/521, sk-*), written to /root/.ssh/authorized_keys."))

RULE = {"type": "object", "properties": {
    "id": {"type": "integer"}, "container_name": {"type": "string"}, "host_port": {"type": "integer"},
    "host_port_end": {"type": "integer"}, "container_port": {"type": "integer"},
    "container_port_end": {"type": "integer"}, "protocol": {"type": "string", "enum": ["tcp", "udp"]},
    "container_ip": {"type": "string"}, "ip_at_creation": {"type": ["string", "null"]},
    "created_at": {"type": "string"},
}}
