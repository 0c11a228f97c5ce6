"""Names: of containers, images (references, aliases, fingerprints), image import operations and
Incus objects (profiles, storage pools)."""
import re

from ..exceptions import BadInput
from ..i18n import N_

# Incus instance names are hostnames: letters, digits and hyphens, 1-63 characters, starting with
# a letter and not ending with a hyphen.
CONTAINER_NAME_MAX = 63
CONTAINER_NAME = re.compile(rf"[A-Za-z]([A-Za-z0-9-]{{0,{CONTAINER_NAME_MAX - 2}}}[A-Za-z0-9])?")
IMAGE_REF_MAX = 255
IMAGE_REF = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._/:-]{{0,{IMAGE_REF_MAX - 1}}}")
FINGERPRINT_MIN, FINGERPRINT_MAX = 12, 64
FINGERPRINT = re.compile(rf"[0-9a-f]{{{FINGERPRINT_MIN},{FINGERPRINT_MAX}}}")
# Local alias names: no ":" (it would read as remote:alias), no spaces; "/" as in debian/12.
IMAGE_ALIAS_MAX = 128
IMAGE_ALIAS = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._/-]{{0,{IMAGE_ALIAS_MAX - 1}}}")
IMAGE_DESCRIPTION_MAX = 255  # an alias's description: longer text is cut, not refused
OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Incus object names (profiles, storage pools).
INCUS_NAME_MAX = 63
INCUS_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{INCUS_NAME_MAX - 1}}}", re.ASCII)


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


def image_description(value):
    return value[:IMAGE_DESCRIPTION_MAX]


def operation_id(value):
    if not OPERATION_ID.fullmatch(value):
        raise BadInput(N_("Invalid operation id '{id}'"), id=value[:40])
    return value


def incus_name(value, field):
    text = str(value)
    if not INCUS_NAME.fullmatch(text):
        raise BadInput(
            N_("Invalid {field} '{value}': 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit"),
            field=field, value=text[:80],
        )
    return text
