"""``python3 -m incus_api <command>``: the app's CLI commands without the ``flask`` launcher."""
from flask.cli import FlaskGroup

from . import create_app

cli = FlaskGroup(create_app=lambda: create_app(), add_default_commands=False, add_version_option=False)

if __name__ == "__main__":
    cli(prog_name="python3 -m incus_api")
