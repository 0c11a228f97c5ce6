#!/usr/bin/env bash
# Installs and initialises Incus on Debian 12 for incus-api-web. Non-interactive and idempotent.
#
#   bash install_incus.sh [--zabbly] [--vm] [--offline] [--subnet CIDR]
#
#   --zabbly       use the upstream Zabbly repository instead of Debian's bookworm-backports
#   --vm           install the full "incus" package (virtual machines too); default: incus-base
#                  (containers only, no QEMU)
#   --offline      keep the daemon off the internet: dead proxy for incusd, no upstream DNS in
#                  the bridge's dnsmasq. Used by the tests and CI; off by default.
#   --subnet CIDR  bridge address used when Incus cannot pick a free subnet itself
#                  (default 10.88.0.1/24)
# Environment: the same switches as INCUS_ZABBLY=1, INCUS_VM=1, INCUS_OFFLINE=1, INCUS_SUBNET=CIDR.
set -euo pipefail

ZABBLY=${INCUS_ZABBLY:-0}
WITH_VM=${INCUS_VM:-0}
OFFLINE=${INCUS_OFFLINE:-0}
SUBNET=${INCUS_SUBNET:-10.88.0.1/24}
BRIDGE=incusbr0
POOL=default
DEAD_PROXY=http://127.0.0.1:9

while [ $# -gt 0 ]; do
    case "$1" in
        --zabbly) ZABBLY=1 ;;
        --vm) WITH_VM=1 ;;
        --offline) OFFLINE=1 ;;
        --subnet) SUBNET=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[install_incus] $*"; }
die() { echo "[install_incus] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
export DEBIAN_FRONTEND=noninteractive

# The mirror this system already uses for Debian itself (users in China run local mirrors).
debian_mirror() {
    local uri
    uri=$(grep -hsE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -E '\sbookworm(\s|$)' | grep -v security | awk '{for(i=2;i<=NF;i++) if ($i ~ /^(https?|file|ftp):/) {print $i; exit}}' | head -n1)
    if [ -z "$uri" ]; then
        uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {
                  if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    fi
    echo "${uri:-}"
}

setup_backports() {
    if grep -rqsE 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "bookworm-backports already configured"
        return
    fi
    local mirror
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "could not find the Debian mirror in /etc/apt/sources.list*; add bookworm-backports yourself"
    log "adding bookworm-backports from $mirror"
    cat > /etc/apt/sources.list.d/incus-api-web-backports.sources <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

setup_zabbly() {
    [ -f /etc/apt/sources.list.d/zabbly-incus-stable.sources ] && return
    apt-get install -y -q curl gpg ca-certificates
    mkdir -p /etc/apt/keyrings
    curl -fsSL https://pkgs.zabbly.com/key.asc -o /etc/apt/keyrings/zabbly.asc
    cat > /etc/apt/sources.list.d/zabbly-incus-stable.sources <<SRC
Types: deb
URIs: https://pkgs.zabbly.com/incus/stable
Suites: $(. /etc/os-release && echo "$VERSION_CODENAME")
Components: main
Architectures: $(dpkg --print-architecture)
Signed-By: /etc/apt/keyrings/zabbly.asc
SRC
}

install_packages() {
    local pkgs
    if [ "$WITH_VM" = 1 ]; then pkgs="incus"; else pkgs="incus-base"; fi
    if dpkg-query -W -f='${Status}' "$pkgs" 2>/dev/null | grep -q 'install ok installed' \
        && command -v iptables-legacy >/dev/null && [ -x /usr/sbin/dnsmasq ]; then
        log "$pkgs already installed"
        return
    fi
    if [ "$ZABBLY" = 1 ]; then
        setup_zabbly
        apt-get update -q
        apt-get install -y -q $pkgs dnsmasq-base iptables
    else
        setup_backports
        apt-get update -q
        apt-get install -y -q -t bookworm-backports $pkgs
        apt-get install -y -q dnsmasq-base iptables
    fi
}

has_systemd() { [ -d /run/systemd/system ]; }

start_daemon() {
    if incus admin waitready --timeout=1 >/dev/null 2>&1; then
        log "incusd is running"
        return
    fi
    if has_systemd; then
        if [ "$OFFLINE" = 1 ]; then
            mkdir -p /etc/systemd/system/incus.service.d
            printf '[Service]\nEnvironment=http_proxy=%s https_proxy=%s\n' "$DEAD_PROXY" "$DEAD_PROXY" \
                > /etc/systemd/system/incus.service.d/offline.conf
            systemctl daemon-reload
        fi
        systemctl enable --now incus.socket incus.service
    else
        log "no systemd: starting incusd directly (log: /var/log/incus/incusd.log)"
        mkdir -p /var/log/incus
        (
            if [ "$OFFLINE" = 1 ]; then export http_proxy=$DEAD_PROXY https_proxy=$DEAD_PROXY; fi
            setsid /usr/libexec/incus/incusd --group incus-admin --logfile /var/log/incus/incusd.log \
                </dev/null >>/var/log/incus/incusd.log 2>&1 &
        )
    fi
    incus admin waitready --timeout=60 || die "incusd did not become ready; see /var/log/incus/incusd.log"
}

preseed() {
    local ipv4=$1 ipv6=$2
    incus admin init --preseed <<YAML
storage_pools:
- name: $POOL
  driver: dir
networks:
- name: $BRIDGE
  type: bridge
  config:
    ipv4.address: $ipv4
    ipv4.nat: "true"
    ipv6.address: $ipv6
profiles:
- name: default
  devices:
    root:
      type: disk
      path: /
      pool: $POOL
    eth0:
      type: nic
      name: eth0
      network: $BRIDGE
YAML
}

initialise() {
    if [ "$OFFLINE" = 1 ]; then
        incus config set core.proxy_http "$DEAD_PROXY"
        incus config set core.proxy_https "$DEAD_PROXY"
    fi
    if incus storage show "$POOL" >/dev/null 2>&1 && incus network show "$BRIDGE" >/dev/null 2>&1; then
        log "storage pool '$POOL' and bridge '$BRIDGE' exist"
    else
        log "initialising Incus (pool '$POOL', bridge '$BRIDGE')"
        preseed auto none 2>/dev/null || {
            log "Incus could not pick a subnet; using $SUBNET"
            incus network delete "$BRIDGE" >/dev/null 2>&1 || true
            preseed "$SUBNET" none
        }
    fi
    if [ "$OFFLINE" = 1 ]; then
        incus network set "$BRIDGE" raw.dnsmasq=no-resolv
    fi
}

ip_to_int() { local IFS=.; set -- $1; echo $(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )); }
int_to_ip() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }

# The top eighth of the subnet CIDR (at most 256 addresses) as "FIRST-LAST"; nothing for a subnet
# under 16 addresses. The same as BridgeNetwork.suggested_range in incus_api/service/addresses.py.
dynamic_range() {
    local address=${1%/*} prefix=${1#*/} count network size
    case "$prefix" in ''|*[!0-9]*) return 1 ;; esac
    [ "$prefix" -le 28 ] || return 1
    count=$(( 1 << (32 - prefix) ))
    network=$(( $(ip_to_int "$address") & ~(count - 1) & 0xFFFFFFFF ))
    size=$(( count / 8 )); [ "$size" -le 256 ] || size=256
    echo "$(int_to_ip $(( network + count - size )))-$(int_to_ip $(( network + count - 2 )))"
}

# dnsmasq leases addresses of its own choosing only in the bridge's dynamic range; the service pins
# every container it sells outside it. Without a range, root in a container can lease every
# address of the bridge under made-up client addresses (DHCP requests carry any MAC) and stop sales.
ensure_dynamic_range() {
    local ranges cidr range
    ranges=$(incus network get "$BRIDGE" ipv4.dhcp.ranges)
    if [ -n "$ranges" ]; then
        log "bridge $BRIDGE: dynamic DHCP range $ranges (sold containers are pinned outside it)"
        return
    fi
    cidr=$(incus network get "$BRIDGE" ipv4.address)
    if ! range=$(dynamic_range "$cidr"); then
        log "bridge $BRIDGE ($cidr): no room for a dynamic DHCP range; set ipv4.dhcp.ranges yourself"
        return
    fi
    log "bridge $BRIDGE: dnsmasq now leases addresses of its own choosing only in $range (ipv4.dhcp.ranges);"
    log "  sold containers are pinned outside it; a container not pinned gets an address in it at its next renewal"
    incus network set "$BRIDGE" ipv4.dhcp.ranges "$range"
}

enable_forwarding() {
    echo 'net.ipv4.ip_forward=1' > /etc/sysctl.d/60-incus-api-web.conf
    sysctl -q -w net.ipv4.ip_forward=1 || log "could not set net.ipv4.ip_forward=1 (set it yourself)"
}

install_packages
start_daemon
initialise
ensure_dynamic_range
enable_forwarding
log "done: $(incus version | tr '\n' ' ')"
log "bridge $BRIDGE: $(incus network get "$BRIDGE" ipv4.address)"
