#!/usr/bin/env bash
# Sets up and starts incus-api-web on Debian 12, as root, in one command:
#
#   bash install.sh [install_incus.sh options, e.g. --zabbly or --subnet 10.99.0.1/24]
#
# Installs Incus (install_incus.sh), the Python dependencies in a virtualenv (.venv; the system
# Python is left alone), creates the database and the admin user (init_db.py), then runs the
# service in the background: a systemd unit where there is systemd, else a daemon with a pid file
# and a log in instance/. Running it again upgrades and restarts; it keeps the data.
#
# Settings given as environment variables (every one in the README's table: API_SECRET_KEY, HOST,
# PORT, RESERVED_PORTS, NAT_SYNC_INTERVAL, ISOLATE_CONTAINERS, ...) are saved in instance/config.env
# (mode 0600) for the service; ADMIN_PASSWORD is used once by init_db.py and never saved.
set -euo pipefail
cd "$(dirname "$0")"
APP_DIR=$(pwd)
INSTANCE="$APP_DIR/instance"
CONFIG="$INSTANCE/config.env"
PIDFILE="$INSTANCE/incus-api-web.pid"
LOGFILE="$INSTANCE/incus-api-web.log"
UNIT=/etc/systemd/system/incus-api-web.service
export DEBIAN_FRONTEND=noninteractive

log() { echo "[install] $*"; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

need=""
for pkg in python3-venv python3-dev gcc iptables iproute2 nftables; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need="$need $pkg"
done
if [ -n "$need" ]; then
    apt-get update -q
    apt-get install -y -q $need
fi

bash install_incus.sh "$@"

# The small local image (busybox, httpd on :80), so that the README's first container works on a
# fresh host without a download of images: imported as "busybox" unless that alias exists. For
# SSH: bash image/debian12.sh (alias debian12-ssh), or image=images:debian/12 when online.
image_aliases=$(incus image alias list -f csv | cut -d, -f1)
if ! grep -qx busybox <<<"$image_aliases"; then
    bash image/busybox.sh busybox || log "the busybox image could not be imported (run: bash image/busybox.sh)"
fi

[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
# The browser console's xterm.js from the npm registry (pinned, sha512-checked; no CDN).
.venv/bin/python static/vendor/fetch.py

mkdir -p "$INSTANCE"
chmod 700 "$INSTANCE"
# Every setting the README documents (incus_api/config.py SAVED_KEYS), checked before it is written.
.venv/bin/python - "$CONFIG" <<'PY'
import os, sys
from incus_api.config import SettingError, save_settings
try:
    saved = save_settings(os.environ, sys.argv[1])
except SettingError as exc:
    sys.exit(f"[install] not saved, the service could not start with it: {exc}")
print(f"[install] settings saved in {sys.argv[1]}: {', '.join(saved) or 'none given'}")
PY

.venv/bin/python init_db.py

start_systemd() {
    cat > "$UNIT" <<UNIT
[Unit]
Description=incus-api-web (Incus containers and NAT rules over HTTP)
After=network-online.target incus.service
Wants=incus.service

[Service]
WorkingDirectory=$APP_DIR
# Rules live only in the kernel: put them back at boot before serving (app.py syncs too).
ExecStartPre=-$APP_DIR/.venv/bin/python -m incus_api nat sync
ExecStart=$APP_DIR/.venv/bin/python $APP_DIR/app.py
Restart=on-failure
UMask=0077

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable incus-api-web.service >/dev/null
    systemctl restart incus-api-web.service
    log "running under systemd: systemctl status incus-api-web; journalctl -u incus-api-web"
}

start_daemon() {
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        log "stopping the running service (pid $(cat "$PIDFILE"))"
        kill "$(cat "$PIDFILE")"
        for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
    fi
    (umask 077; setsid .venv/bin/python app.py </dev/null >>"$LOGFILE" 2>&1 & echo $! > "$PIDFILE")
    log "running as a daemon: pid $(cat "$PIDFILE"), log $LOGFILE (no systemd: start it again after a reboot with: bash install.sh)"
}

if [ -d /run/systemd/system ]; then start_systemd; else start_daemon; fi

# Wait for the service to answer (any HTTP status will do: no secret is sent), over HTTPS unless
# TLS=off, trusting the certificate it serves; then say where it is and what clients pin.
probe=$(.venv/bin/python - <<'PY'
import ssl, time, urllib.error, urllib.request
from incus_api.config import load_config
from incus_api.service.tls import served_certificate
config = load_config()
tls = served_certificate(config, "instance")
scheme = "https" if tls else "http"
context = None
if tls:
    # The self-signed certificate names 127.0.0.1; a real one (TLS_CERT) may not: then only its chain is checked.
    context = ssl.create_default_context(cafile=tls["path"] if tls["self_signed"] else None)
    context.check_hostname = bool(tls["self_signed"])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
for _ in range(100):
    try:
        opener.open(f"{scheme}://127.0.0.1:{config['PORT']}/container/-/info", timeout=1)
    except urllib.error.HTTPError as error:
        if error.code != 503:  # 503: the front is up, the worker not yet
            print(scheme, config["PORT"])
            break
    except OSError:
        pass
    time.sleep(0.2)
PY
)
[ -n "$probe" ] || { log "the service did not answer; see $LOGFILE (or: journalctl -u incus-api-web)"; exit 1; }
read -r scheme port <<<"$probe"
log "incus-api-web is up: $scheme://$(hostname -I 2>/dev/null | awk '{print $1}'):$port/ (API and dashboard)"
.venv/bin/python - <<'PY'
from incus_api.config import load_config
from incus_api.service.tls import fingerprint_lines, tls_files
for line in fingerprint_lines(tls_files(load_config(), "instance", make=False)):
    print(f"[install] {line}")
PY
