"""One value of a fixed list: a container's action, or any field with ``one_of``."""
from ..exceptions import BadInput
from ..i18n import N_

ACTIONS = ("start", "stop", "restart", "delete", "suspend", "unsuspend", "reinstall")


def action(value):
    value = value.strip().lower()
    if value not in ACTIONS:
        raise BadInput(N_("Invalid action '{action}': use start, stop, restart, delete, suspend, unsuspend or reinstall"),
                       action=value[:40])
    return value


def one_of(value, field, choices):
    text = str(value).lower()
    if text not in choices:
        raise BadInput(N_("Invalid {field} '{value}': use one of {choices}"), field=field, value=str(value)[:40],
                       choices=", ".join(choices))
    return text
