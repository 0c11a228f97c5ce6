"""The command line of ``exec``: split like a shell would, to run it without one."""
import shlex

from ..exceptions import BadInput
from ..i18n import N_

MAX_COMMAND_BYTES = 16 * 1024


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
