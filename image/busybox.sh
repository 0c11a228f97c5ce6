#!/usr/bin/env bash
# Builds a tiny busybox container image from Debian's busybox-static and imports it into Incus
# under a fixed alias (default "busybox"). It boots in a fraction of a second, takes an IPv4
# address by DHCP on eth0 and serves /www over HTTP on port 80 (busybox httpd); the page names
# the container, so a test can tell which container answered. Used by the tests and the benchmark.
#
#   bash image/busybox.sh [ALIAS]      (rebuilding replaces the alias)
set -euo pipefail

ALIAS=${1:-busybox}
BUSYBOX=/bin/busybox

if ! "$BUSYBOX" --list 2>/dev/null | grep -x httpd >/dev/null || ! file -L "$BUSYBOX" 2>/dev/null | grep static >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static file >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,www,var/log,usr/share/udhcpc}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    case "$applet" in bin/busybox|sbin/init) ;; *) ln -sf /bin/busybox "$root/$applet" ;; esac
done

# PID 1 is a small shell script rather than busybox init: Incus stops a container gracefully
# with SIGPWR, which busybox init ignores (every stop would wait for the timeout).
cat > "$root/sbin/init" <<'INIT'
#!/bin/sh
trap 'kill -TERM -1 2>/dev/null; exit 0' PWR TERM INT
mount -t tmpfs tmpfs /run 2>/dev/null
hostname -F /etc/hostname 2>/dev/null
ip link set lo up
echo "hello from $(hostname)" > /www/index.html
udhcpc -b -i eth0 -s /usr/share/udhcpc/default.script -x hostname:"$(hostname)" >/var/log/udhcpc.log 2>&1
httpd -p 80 -h /www
while :; do sleep 3600 & wait $!; done
INIT

cat > "$root/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        : > /etc/resolv.conf
        for ns in $dns; do echo "nameserver $ns" >> /etc/resolv.conf; done
        ;;
esac
exit 0
DHCP
chmod +x "$root/sbin/init" "$root/usr/share/udhcpc/default.script"

# Debian's busybox has no chpasswd applet: a small one, so the service can set root's password
# (it feeds "root:password" lines on stdin) in test containers too.
if [ ! -e "$root/usr/sbin/chpasswd" ]; then
    cat > "$root/usr/sbin/chpasswd" <<'CHPASSWD'
#!/bin/sh
# chpasswd: "user:password" lines on stdin; SHA-512 hashes into /etc/shadow.
while IFS= read -r line || [ -n "$line" ]; do
    user=${line%%:*}
    pass=${line#*:}
    grep -q "^$user:" /etc/shadow || { echo "chpasswd: unknown user '$user'" >&2; exit 1; }
    hash=$(printf '%s' "$pass" | mkpasswd -m sha512) || exit 1
    sed -i "s|^$user:[^:]*:|$user:$hash:|" /etc/shadow || exit 1
done
CHPASSWD
    chmod 755 "$root/usr/sbin/chpasswd"
fi

echo busybox > "$root/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'root::19000:0:99999:7:::\n' > "$root/etc/shadow"
chmod 600 "$root/etc/shadow"

version=$("$BUSYBOX" 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p')
cat > "$work/metadata.yaml" <<META
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  description: BusyBox $version (httpd on :80, DHCP on eth0)
  os: busybox
  release: "$version"
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
META
mkdir -p "$work/templates"
echo '{{ instance.name }}' > "$work/templates/hostname.tpl"

tar -C "$work" -czf "$work/meta.tar.gz" metadata.yaml templates
tar -C "$root" --numeric-owner -czf "$work/rootfs.tar.gz" .

old=$(incus image alias list -f csv | awk -F, -v a="$ALIAS" '$1==a {print $2}')
[ -z "$old" ] || incus image alias delete "$ALIAS"
incus image import "$work/meta.tar.gz" "$work/rootfs.tar.gz" --alias "$ALIAS" >/dev/null
if [ -n "$old" ] && ! incus image alias list -f csv | grep ",$old" >/dev/null; then
    incus image delete "$old" >/dev/null 2>&1 || true
fi
echo "imported image '$ALIAS': $(incus image alias list -f csv | awk -F, -v a="$ALIAS" '$1==a {print $2}')"
