#!/usr/bin/env bash
# Assembles the root filesystem of the test proxy image (real nginx, no Docker Hub) from this
# Debian host's nginx: the binary, every shared library ldd lists (the loader included), the
# user/group files nginx's `user` directive needs, its log/temp/pid directories, and a default
# nginx.conf that serves a placeholder. Dockerfile next to this script: FROM scratch + ADD rootfs.
#
#   infrastructure/docker/proxy/build-rootfs.sh OUT_DIR     (OUT_DIR is wiped and rebuilt)
set -euo pipefail

die() { echo "build-rootfs.sh: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUT_DIR"
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NGINX=${NGINX_BIN:-/usr/sbin/nginx}

[ -x "$NGINX" ] || die "$NGINX not found: install nginx-light (apt-get install nginx-light)"
command -v ldd >/dev/null || die "ldd not found: install libc-bin"
[ -f /etc/nginx/mime.types ] || die "/etc/nginx/mime.types not found: install nginx-common"
case "$out" in ""|/) die "refusing to use '$out' as OUT_DIR" ;; esac

rm -rf -- "$out"
mkdir -p -- "$out"
out=$(cd "$out" && pwd)

# The binary and its shared libraries, each at the path ldd names (the dynamic loader searches
# /lib/x86_64-linux-gnu by default, so no ld.so.cache is needed).
install -D -m 0755 "$NGINX" "$out/usr/sbin/nginx"
libs=$(ldd "$NGINX" | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(0x/ { print $1 }' | sort -u)
[ -n "$libs" ] || die "ldd listed no libraries for $NGINX"
grep -q 'ld-linux' <<<"$libs" || die "ldd did not list the dynamic loader for $NGINX"
for lib in $libs; do
    install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done

# Users and groups: nginx's compiled-in default is nobody/nogroup; Debian's configs say
# `user www-data;`, the official image's `user nginx;` (a group named like the user).
mkdir -p "$out/etc"
cat > "$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nginx:x:101:101:nginx:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat > "$out/etc/group" <<'GROUP'
root:x:0:
www-data:x:33:
nginx:x:101:
nogroup:x:65534:
nobody:x:65534:
GROUP
# glibc >= 2.34 has the files and dns NSS modules built in; say which to use.
cat > "$out/etc/nsswitch.conf" <<'NSS'
passwd: files
group:  files
shadow: files
hosts:  files dns
NSS
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"

# Configuration: Debian's mime.types and the usual *_params, our nginx.conf + placeholder server.
mkdir -p "$out/etc/nginx/conf.d"
for f in mime.types proxy_params fastcgi_params fastcgi.conf scgi_params uwsgi_params; do
    [ -f "/etc/nginx/$f" ] && install -m 0644 "/etc/nginx/$f" "$out/etc/nginx/$f"
done
install -m 0644 "$here/nginx.conf" "$out/etc/nginx/nginx.conf"
install -m 0644 "$here/default.conf" "$out/etc/nginx/conf.d/default.conf"
install -D -m 0644 "$here/index.html" "$out/usr/share/nginx/html/index.html"

# Runtime directories. Temp paths compiled in: /var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi}
# (the master creates them at start); pid /run/nginx.pid; lock /var/lock/nginx.lock.
mkdir -p "$out/var/lib/nginx" "$out/var/log/nginx" "$out/var/cache/nginx" "$out/run/lock" \
    "$out/tmp" "$out/var/www" "$out/root"
ln -s /dev/stdout "$out/var/log/nginx/access.log"
ln -s /dev/stderr "$out/var/log/nginx/error.log"
ln -s ../run "$out/var/run"            # for configs that say `pid /var/run/nginx.pid;`
ln -s ../run/lock "$out/var/lock"
chmod 1777 "$out/tmp"
chmod 0700 "$out/root"

# Check what we built can run: the loader resolves every library inside the rootfs.
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    chroot "$out" /usr/sbin/nginx -V >/dev/null 2>&1 \
        || die "nginx does not run inside the assembled rootfs (chroot $out /usr/sbin/nginx -V)"
fi
echo "build-rootfs.sh: $out: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wc -w <<<"$libs") libraries, $(du -sh "$out" | cut -f1)"
