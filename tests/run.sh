#!/usr/bin/env bash
# The whole test suite in one command, on Debian 12 as root:
#   bash tests/run.sh [pytest arguments]
# Installs what the tests need (idempotent): Debian packages, Incus (install_incus.sh; offline
# mode when CI is set), a virtualenv with requirements-dev.txt, then runs pytest over tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES="python3-venv python3-dev gcc iptables iproute2 nftables busybox-static file chromium fonts-noto-cjk debootstrap zstd btrfs-progs php-cli php-curl"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "[tests] installing:$missing"
    apt-get update -q
    apt-get install -y -q $missing
fi

if [ -n "${CI:-}" ]; then
    bash install_incus.sh --offline
else
    bash install_incus.sh
fi

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python static/vendor/fetch.py  # the console's xterm.js (npm registry, pinned, checked)

# Two workers: the tests on the real host (Incus, the kernel, the browser) one after another on
# one, the pure-logic tests spread over both (tests/conftest.py: pytest_xdist_make_scheduler).
exec .venv/bin/python -m pytest -p no:cacheprovider -n 2 tests "$@"
