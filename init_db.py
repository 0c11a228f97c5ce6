"""Creates or upgrades the database, creates the admin user and prints the X-API-Hash.

Idempotent: running it again applies only new migrations and changes nothing else.
"""
from incus_api.__main__ import cli

if __name__ == "__main__":
    cli(["init-db"], prog_name="init_db.py")
