"""Administrative commands: ``python3 -m incus_api <command>`` (or ``flask --app app <command>``)."""
import secrets

import click
from flask import current_app
from flask.cli import with_appcontext

from .exceptions import AppError
from .service.tls import TlsError, fingerprint_lines, tls_files


def backend():
    return current_app.extensions["incus_api"]


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Apply migrations, create the admin user if missing, make the self-signed TLS certificate if
    there is none, print the X-API-Hash and the certificate's fingerprint."""
    db = backend().db
    applied = db.migrate()
    changes = f"migrations {', '.join(map(str, applied))} applied" if applied else "up to date"
    click.echo(f"database: {db.path} (schema version {db.schema_version}, {changes})")
    username = current_app.config.get("ADMIN_USERNAME") or "admin"
    password = current_app.config.get("ADMIN_PASSWORD")
    accounts = backend().services.accounts
    exists = accounts.exists(username)
    if password:
        accounts.save_user(username, password)
        click.echo(f"admin user: {username} (password from ADMIN_PASSWORD)")
    elif not exists:
        password = secrets.token_urlsafe(12)
        accounts.save_user(username, password)
        click.echo(f"admin user: {username}  password: {password}  (shown once: note it, change it in the dashboard)")
    else:
        click.echo(f"admin user: {username} (unchanged)")
    echo_api_hash()
    try:
        files = tls_files(current_app.config, current_app.instance_path)
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None
    for line in fingerprint_lines(files):
        click.echo(line)


def echo_api_hash():
    accounts = backend().services.accounts
    source = "API_SECRET_KEY" if accounts.secret_from_config else "database"
    click.echo(f"X-API-Hash: {accounts.api_hash()}  (SHA-256 of the API secret from the {source})")


@click.group("api-secret")
def api_secret_group():
    """Show or regenerate the API secret."""


@api_secret_group.command("show")
@with_appcontext
def api_secret_show():
    echo_api_hash()


@api_secret_group.command("regenerate")
@with_appcontext
def api_secret_regenerate():
    """New secret in the database; the old X-API-Hash stops working at once."""
    try:
        backend().services.accounts.regenerate_api_secret()
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    echo_api_hash()


@click.group("nat")
def nat_group():
    """NAT rules: the database is the truth, the kernel follows."""


@nat_group.command("sync")
@with_appcontext
def nat_sync():
    """Make the kernel's rules equal to the database (run at boot and at service start)."""
    report = backend().services.nat_sync.sync()
    readdressed = [change["rule_id"] for change in report.readdressed]
    click.echo(
        f"NAT sync: added {report.added or 'none'}, removed {report.removed or 'none'}, "
        f"re-addressed {readdressed or 'none'}, NICs guarded {report.guarded or 'none'}, "
        f"FORWARD accept written in {report.forward_accept or 'none'}, orphaned {report.orphaned or 'none'}"
    )


@click.command("doctor")
@with_appcontext
def doctor_command():
    """Check Incus, the bridge, forwarding, the iptables backends and the NAT rules."""
    checks = [c.render() for c in backend().services.doctor.run_checks()]
    for item in checks:
        click.echo(f"[{'ok' if item['ok'] else 'FAIL'}] {item['name']}: {item['detail']}")
        if item["hint"]:
            click.echo(f"       fix: {item['hint']}")
    if not all(item["ok"] for item in checks):
        raise SystemExit(1)


@click.command("backup")
@click.argument("name")
@with_appcontext
def backup_command(name):
    """Back up container NAME now (into BACKUP_DIR, and S3 when set) and wait until it is written."""
    backups = backend().services.backups
    try:
        backup = backups.wait(backups.create(name, trigger="api")["id"])
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    if backup["state"] != "ok":
        raise click.ClickException(f"backup {backup['id']} of {name} failed: {backup['error']}")
    click.echo(f"backup {backup['id']} of {name}: {backups.directory / backup['file']} ({backup['size']} bytes, "
               f"sha256 {backup['sha256']}; stored: {', '.join(backup['stored'])})")


@click.command("restore")
@click.argument("source")
@click.option("--name", default=None, help="Restore under this name, as a copy (default: the container's own name).")
@click.option("--ports", type=click.Choice(["auto"]), default=None,
              help="auto: the forwards take free pool ports instead of the recorded host ports.")
@with_appcontext
def restore_command(source, name, ports):
    """Restore a backup: SOURCE is a backup file, or the key of one in the S3 store (S3_ENDPOINT...).
    Works on a host whose database has never seen the container (moving a customer to this host)."""
    from .parse.names import container_name

    try:
        restored = backend().services.backups.restore_source(source, name=container_name(name) if name else None,
                                                             ports=ports)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"restored {restored['from']} as {restored['name']}: {restored['status']}, address "
               f"{restored['ip'] or '-'}{', suspended' if restored['suspended'] else ''}")
    for rule in restored["nat_rules"]:
        ports_text = rule["host_port"] if rule["host_port"] == rule["host_port_end"] else \
            f"{rule['host_port']}-{rule['host_port_end']}"
        click.echo(f"  forward {ports_text}/{rule['protocol']} -> {rule['container_port']}")


def register_commands(app):
    app.cli.add_command(init_db_command)
    app.cli.add_command(api_secret_group)
    app.cli.add_command(nat_group)
    app.cli.add_command(doctor_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
