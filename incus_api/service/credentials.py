"""Root's credentials in a running container: the password (chpasswd, fed on its stdin) and the
SSH keys (authorized_keys through the Incus files API), as a sale and a reinstall set them."""
import logging
import secrets

from ..exceptions import BadInput, IncusError, NotFound, OperationTimeout
from ..i18n import N_

log = logging.getLogger(__name__)

# chpasswd reads "root:<password>" on its stdin, which the exec's stdin websocket feeds: the
# password is in no argv and no environment (Incus puts both on the "incusd forkexec" command
# line, readable in /proc/<pid>/cmdline by every host user), in no Incus event and no file.
# Incus turns exit code 127 into a "Command not found" error: a missing chpasswd exits 100.
NO_CHPASSWD = 100
PASSWORD_ARGV = ["/bin/sh", "-c", f"command -v chpasswd >/dev/null || exit {NO_CHPASSWD}; exec chpasswd"]
GENERATED_PASSWORD_BYTES = 12  # secrets.token_urlsafe(12): 16 characters, 96 random bits
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


def new_password():
    """A random root password: 16 characters, 96 random bits."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


class NoPasswordSupport(BadInput):
    """The image has no chpasswd (or no /bin/sh to run it): root's password cannot be set."""


class Credentials:
    def __init__(self, incus, commands, suspensions):
        self.incus = incus
        self.commands = commands  # the exec slots: a password change takes one
        self.suspensions = suspensions

    def set_credentials(self, name, password=None, ssh_key=None):
        """Root's credentials in the running container, as create and reinstall set them: the
        ``ssh_key`` text to authorized_keys, ``password`` with chpasswd; with neither, a random
        password, returned here once (never logged or stored), or ``None`` for an image without
        chpasswd. Returns the generated password or ``None``."""
        if ssh_key is not None:
            self._write_authorized_keys(name, ssh_key)
        if password is not None:
            self.set_password(name, password)
        if password is not None or ssh_key is not None:
            return None
        generated = new_password()
        try:
            self.set_password(name, generated)
        except NoPasswordSupport:
            log.info("image of container %s has no chpasswd: it has no root password", name)
            return None
        return generated

    def reset_password(self, name, password=None):
        """Root's password set to ``password``, or to a new random one, returned here once (never
        logged or stored); an image without chpasswd is an error here (400), not a silent None."""
        generated = new_password() if password is None else None
        self.set_password(name, password if password is not None else generated)
        return generated

    def set_ssh_keys(self, name, keys):
        """Root's authorized_keys replaced by ``keys`` (parsed OpenSSH public keys, one a line);
        409 while the container is suspended."""
        self.suspensions.refuse(name, "SSH key change")
        self._write_authorized_keys(name, keys)

    def set_password(self, name, password):
        """Set root's password with ``chpasswd`` in the container.

        ``root:<password>`` reaches chpasswd on its stdin, through the exec's stdin websocket:
        never in an argv or the environment (both on the host's process list), an Incus event,
        a file, the log or the database.
        """
        self.suspensions.refuse(name, "password change")
        try:
            result = self.commands.run(name, PASSWORD_ARGV, stdin=f"root:{password}\n".encode())
        except IncusError as exc:
            reason = exc.reason
            if reason == "Command not found":
                raise NoPasswordSupport(N_("Container {name} has no /bin/sh to run chpasswd: its image does not support setting a password"), name=name) from exc
            if "not running" in reason:
                raise BadInput(N_("Container {name} is not running: start it to set the password"), name=name) from exc
            raise
        except OperationTimeout as exc:
            raise OperationTimeout(N_("chpasswd did not finish within {timeout} s"), timeout=self.commands.timeout) from exc
        if result.exit_code == NO_CHPASSWD:
            raise NoPasswordSupport(N_("Container {name} has no chpasswd command: its image does not support setting a password"), name=name)
        if result.exit_code != 0:
            raise IncusError(
                N_("chpasswd failed in container {name} (exit code {code}): {reason}"),
                name=name, code=result.exit_code, reason=(result.stderr or result.stdout).strip()[:500],
            )

    def _write_authorized_keys(self, name, keys):
        """root's authorized_keys (dir 0700, file 0600, owner root) through the files API."""
        try:
            self.incus.make_directory(name, "/root", mode=0o700)
            self.incus.make_directory(name, "/root/.ssh", mode=0o700)
            self.incus.push_file(name, AUTHORIZED_KEYS, keys.encode(), mode=0o600)
        except (IncusError, NotFound) as exc:
            raise IncusError(
                N_("Writing {path} in container {name} failed: {reason}"), path=AUTHORIZED_KEYS, name=name, reason=exc.reason,
            ) from exc
