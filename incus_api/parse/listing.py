"""The filters and pages of the list routes: ``/containers`` (``status``, ``q``) and the audit
log (``limit``, ``target``, ``before_id``; the dashboard's audit page takes ``before_id`` too)."""
import re

from ..exceptions import BadInput
from ..i18n import N_
from .names import CONTAINER_NAME_MAX
from .numbers import BIGGEST_ID, whole_number

# ``q``: a part of a container name.
NAME_PART = re.compile(rf"[A-Za-z0-9-]{{1,{CONTAINER_NAME_MAX}}}")
AUDIT_LIMIT_MAX = 1000
AUDIT_LIMIT_DEFAULT = 100
AUDIT_TARGET_MAX = 200  # a longer ``target`` is cut, not refused


def status_filter(value, statuses):
    """One of ``statuses`` (a container's state as Incus spells it), in any case."""
    for status in statuses:
        if value.strip().lower() == status.lower():
            return status
    raise BadInput(N_("Invalid status '{value}': use one of {statuses}"), value=value[:40],
                   statuses=", ".join(statuses))


def name_part(value):
    if not NAME_PART.fullmatch(value):
        raise BadInput(N_("Invalid q '{value}': letters, digits and hyphens of a container name, at most 63"),
                       value=value[:40])
    return value


def audit_limit(value):
    return whole_number(value, "limit", 1, AUDIT_LIMIT_MAX)


def audit_target(value):
    return value[:AUDIT_TARGET_MAX]


def before_id(value):
    """The id below which a page of the audit log starts."""
    return whole_number(value, "before_id", 1, BIGGEST_ID)
