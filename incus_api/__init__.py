"""incus-api-web: a JSON API and admin dashboard for Incus containers and their NAT rules.

The package imports nothing heavy: ``create_app`` loads Flask and the rest (``factory``) when it
is called. So the server's master process (``app.py``) reads its settings in a few megabytes and
never holds a copy of the app it does not serve (see ``serving``).
"""


def create_app(config=None, instance_path=None):
    """Build the app (``factory.create_app``): ``config`` overrides the environment."""
    from .factory import create_app as build

    return build(config, instance_path)
