"""Parsing of user input into typed values, one module per kind of input; every failure is a
``BadInput`` a person can act on (its message names the field).

Pure Python: no Flask or werkzeug here, so the service layer, the CLI and the settings can use the
same parsers as the web side. The bounds and patterns are module constants, and the routes'
schemas (``incus_api.schemas``) are built from them, so that what the API documents is what the
parser takes.

- ``numbers``: whole numbers in ASCII digits, booleans;
- ``choices``: one value of a fixed list (a container action, ``one_of``);
- ``names``: container names, image references, aliases and fingerprints, operation ids, Incus
  object names;
- ``ports``: ports, port ranges and forwards, protocols, ``ssh_port``, block sizes;
- ``commands``: the command line of ``exec``;
- ``credentials``: root passwords and SSH public keys;
- ``quantities``: sizes and rates with their units, CPU and process counts (a plan's limits);
- ``traffic``: a traffic plan's quota, reset day, direction and action;
- ``listing``: the filters and pages of the list routes (``/containers``, ``/audit_log``).
"""
