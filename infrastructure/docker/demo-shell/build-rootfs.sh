#!/usr/bin/env bash
# Assembles the root filesystem of the demo-with-a-shell test image (no Docker Hub): the static
# demo binary plus this Debian host's dash as /bin/sh, with every shared library ldd lists (the
# loader included). The console's `s` key is tested against it (the plain demo image has no
# shell). Dockerfile next to this script: FROM scratch + ADD rootfs.
#
#   infrastructure/docker/demo-shell/build-rootfs.sh DEMO_BINARY OUT_DIR   (OUT_DIR is rebuilt)
set -euo pipefail

die() { echo "build-rootfs.sh: error: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 DEMO_BINARY OUT_DIR"
demo=$1 out=$2
SH=${SHELL_BIN:-/bin/dash}
[ -x "$demo" ] || die "$demo is not an executable"
[ -x "$SH" ] || die "$SH not found: install dash (apt-get install dash)"
command -v ldd >/dev/null || die "ldd not found: install libc-bin"
case "$out" in ""|/) die "refusing to use '$out' as OUT_DIR" ;; esac

rm -rf -- "$out"
mkdir -p -- "$out"
out=$(cd "$out" && pwd)

install -D -m 0755 "$demo" "$out/deckhand-demo"
install -D -m 0755 "$SH" "$out/bin/sh"
libs=$(ldd "$SH" | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(0x/ { print $1 }' | sort -u)
grep -q 'ld-linux' <<<"$libs" || die "ldd did not list the dynamic loader for $SH"
for lib in $libs; do
    install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done
mkdir -p "$out/etc" "$out/tmp"
chmod 1777 "$out/tmp"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$out/etc/group"
