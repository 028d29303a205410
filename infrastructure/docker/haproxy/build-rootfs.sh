#!/usr/bin/env bash
# Assembles the root filesystem of deckhand's proxy image (HAProxy, no Docker Hub) from this
# Debian host's packages: haproxy and socat with every shared library ldd lists, a static
# busybox for the few shell tools deckhand-proxy needs (sh, mv, rm, sync, date), the deckhand-proxy
# helper and a placeholder haproxy.cfg. Dockerfile next to this script: FROM scratch + ADD rootfs.
#
#   infrastructure/docker/haproxy/build-rootfs.sh OUT_DIR     (OUT_DIR is wiped and rebuilt)
set -euo pipefail

die() { echo "build-rootfs.sh: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HAPROXY=${HAPROXY_BIN:-/usr/sbin/haproxy}
SOCAT=${SOCAT_BIN:-/usr/bin/socat}
BUSYBOX=${BUSYBOX_BIN:-/bin/busybox}

[ -x "$HAPROXY" ] || die "$HAPROXY not found: install haproxy (apt-get install haproxy)"
[ -x "$SOCAT" ] || die "$SOCAT not found: install socat (apt-get install socat)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install busybox-static (apt-get install busybox-static)"
command -v ldd >/dev/null || die "ldd not found: install libc-bin"
command -v readelf >/dev/null || die "readelf not found: install binutils"
! readelf -lW "$BUSYBOX" | grep 'Requesting program interpreter' >/dev/null \
    || die "$BUSYBOX is not static: install busybox-static"
case "$out" in ""|/) die "refusing to use '$out' as OUT_DIR" ;; esac

rm -rf -- "$out"
mkdir -p -- "$out"
out=$(cd "$out" && pwd)

# Binaries and their shared libraries, each at the path ldd names.
install -D -m 0755 "$HAPROXY" "$out/usr/sbin/haproxy"
install -D -m 0755 "$SOCAT" "$out/usr/bin/socat"
install -D -m 0755 "$BUSYBOX" "$out/bin/busybox"
for tool in sh mv rm cat sync printf sleep date; do
    ln -s busybox "$out/bin/$tool"
done
libs=$( { ldd "$HAPROXY"; ldd "$SOCAT"; } | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(0x/ { print $1 }' | sort -u)
grep -q 'ld-linux' <<<"$libs" || die "ldd did not list the dynamic loader"
for lib in $libs; do
    install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done

mkdir -p "$out/etc"
cat > "$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
haproxy:x:99:99:haproxy:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$out/etc/group" <<'GROUP'
root:x:0:
haproxy:x:99:
nogroup:x:65534:
GROUP
cat > "$out/etc/nsswitch.conf" <<'NSS'
passwd: files
group:  files
hosts:  files dns
NSS
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"

install -D -m 0644 "$here/haproxy.cfg" "$out/etc/haproxy/haproxy.cfg"
install -D -m 0755 "$here/deckhand-proxy" "$out/usr/local/bin/deckhand-proxy"
mkdir -p "$out/run/haproxy" "$out/tmp" "$out/root"
chmod 1777 "$out/tmp"
chmod 0700 "$out/root"

if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    chroot "$out" /usr/sbin/haproxy -c -f /etc/haproxy/haproxy.cfg >/dev/null 2>&1 \
        || die "haproxy does not run inside the assembled rootfs (chroot $out /usr/sbin/haproxy -c -f /etc/haproxy/haproxy.cfg)"
    chroot "$out" /usr/bin/socat -V >/dev/null 2>&1 || die "socat does not run inside the rootfs"
fi
echo "build-rootfs.sh: $out: $("$HAPROXY" -v | awk 'NR == 1 { print $1, $2, $3 }'), $(wc -w <<<"$libs") libraries, $(du -sh "$out" | cut -f1)"
