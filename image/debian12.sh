#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) container image with debootstrap, from the Debian mirror this
# host's apt already uses, and imports it into Incus under a fixed alias (default "debian12-ssh").
# The image runs systemd, takes an IPv4 address by DHCP on eth0 (systemd-networkd) and runs
# openssh-server. Root is LOCKED in the image (no password, no key): no two containers share a
# login. Each container gets its own at create time through the service (POST /container/create:
# the given `password`, a generated one answered once, or `ssh_key` in /root/.ssh/authorized_keys);
# sshd then lets root in by key, and by password once one is set. SSH host keys and the
# machine-id are made on each container's first boot, so no two containers share them either.
#
#   bash image/debian12.sh [ALIAS]    (rebuilding replaces the alias)
#
# DEBIAN_MIRROR  override the mirror (default: the one in /etc/apt/sources.list*).
# CACHE_DIR      where the debootstrap result is kept between runs (default /var/cache/incus-api-web);
#                REFRESH=1 rebuilds it (e.g. for security updates), it is also rebuilt after 7 days.
set -euo pipefail

ALIAS=${1:-debian12-ssh}
SUITE=bookworm
CACHE_DIR=${CACHE_DIR:-/var/cache/incus-api-web}
CACHE_DAYS=7
# minbase + what a login over SSH needs: systemd as PID 1, networkd/resolved for DHCP and DNS
# (networkd leaves links "pending" without udev),
# sshd, ip. (passwd, with chpasswd, is in minbase.)
PACKAGES=systemd-sysv,udev,systemd-resolved,dbus,openssh-server,iproute2,ca-certificates,less,nano

log() { echo "[debian12] $*" >&2; }
die() { echo "[debian12] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
command -v incus >/dev/null || die "incus is not installed (bash install_incus.sh)"

# The mirror this system already uses for Debian itself (same parser as install_incus.sh).
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

MIRROR=${DEBIAN_MIRROR:-$(debian_mirror)}
[ -n "$MIRROR" ] || die "no Debian bookworm mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR"

# A password baked into the image would be every container's: refused, not silently ignored.
[ -z "${ROOT_PASSWORD:-}" ] || die "ROOT_PASSWORD is no longer supported: root is locked in the image; give each container its own 'password' or 'ssh_key' at create, or let the service generate a password"

if ! command -v debootstrap >/dev/null || ! command -v zstd >/dev/null; then
    log "installing debootstrap and zstd"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap zstd >/dev/null
fi

arch=$(dpkg --print-architecture)
key=$(printf '%s %s %s %s' "$MIRROR" "$SUITE" "$arch" "$PACKAGES" | sha256sum | cut -c1-16)
base=$CACHE_DIR/debian12-$arch-$key.tar.gz
mkdir -p "$CACHE_DIR"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"

if [ "${REFRESH:-0}" != 1 ] && [ -n "$(find "$base" -mtime -$CACHE_DAYS 2>/dev/null)" ]; then
    log "base system from the cache ($base)"
    tar -C "$root" --numeric-owner -xzf "$base"
else
    log "debootstrap $SUITE from $MIRROR (minbase + $PACKAGES)"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # apt inside the container uses the same mirror.
    cat > "$root/etc/apt/sources.list" <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
SRC
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
        "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old
    # Host keys made by the package install would be shared by every container: made at boot instead.
    rm -f "$root"/etc/ssh/ssh_host_*
    tar -C "$root" --numeric-owner -czf "$base.tmp" . && mv "$base.tmp" "$base"
    find "$CACHE_DIR" -maxdepth 1 -name 'debian12-*.tar.gz' ! -name "$(basename "$base")" -delete
fi

log "configuring: DHCP on eth0, sshd (root by key, or by password once one is set), root locked"
cat > "$root/etc/systemd/network/10-eth0.network" <<'NET'
[Match]
Name=eth0

[Network]
DHCP=yes

[DHCPv4]
UseDomains=yes
NET

# Root may log in by key and by password; it has neither until the service sets them.
cat > "$root/etc/ssh/sshd_config.d/10-root-login.conf" <<'SSHD'
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
SSHD

# Unique host keys per container, made on first boot before sshd starts.
cat > "$root/etc/systemd/system/ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Generate the SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service multi-user.target
UNIT

chroot "$root" systemctl enable systemd-networkd.service systemd-resolved.service ssh.service ssh-host-keys.service >/dev/null 2>&1
# resolved's stub as the resolver (the package's postinst does not link it inside a chroot).
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# Units that have nothing to do in a container.
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true

# Locked: '*' matches no password (unlike '!', sshd still accepts a key for it). chpasswd
# replaces it when the service sets a password.
chroot "$root" usermod -p '*' root

# An empty machine-id: systemd makes a new one on each container's first boot.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"
echo debian > "$root/etc/hostname"

cat > "$work/metadata.yaml" <<META
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: Debian 12 bookworm (SSH, root locked until a password or key is set, DHCP on eth0)
  os: debian
  release: bookworm
  variant: ssh
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
META
mkdir -p "$work/templates"
echo '{{ instance.name }}' > "$work/templates/hostname.tpl"
printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n::1 localhost ip6-localhost ip6-loopback\n' \
    > "$work/templates/hosts.tpl"

log "packing and importing as '$ALIAS'"
tar -C "$work" -czf "$work/meta.tar.gz" metadata.yaml templates
# zstd: the 200 MB root file system packs in about 1 s (gzip takes 10) and comes out smaller.
tar -C "$root" --numeric-owner --zstd -cf "$work/rootfs.tar.zst" .

old=$(incus image alias list -f csv | awk -F, -v a="$ALIAS" '$1==a {print $2}')
[ -z "$old" ] || incus image alias delete "$ALIAS"
if ! incus image import "$work/meta.tar.gz" "$work/rootfs.tar.zst" --alias "$ALIAS" >"$work/import.log" 2>&1; then
    cat "$work/import.log" >&2
    # The same content (e.g. a rebuild that changed nothing) is already there: point the alias at it.
    [ -z "$old" ] || incus image alias create "$ALIAS" "$old" >/dev/null 2>&1 || true
    die "import failed"
fi
new=$(incus image alias list -f csv | awk -F, -v a="$ALIAS" '$1==a {print $2}')
if [ -n "$old" ] && [ "$old" != "$new" ] && ! incus image alias list -f csv | grep ",$old" >/dev/null \
    && ! incus query '/1.0/instances?recursion=1' 2>/dev/null | grep -q "\"volatile.base_image\": \"$old"; then
    incus image delete "$old" >/dev/null 2>&1 || true
fi
echo "imported image '$ALIAS': $new (root locked: set a password or key at create)"
