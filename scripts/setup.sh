#!/usr/bin/env bash
# Prepares a fresh Debian machine (as root) for deckhand's demo and tests:
#   1. installs Docker, OpenSSH server, Debian's registry, HAProxy, socat and busybox-static (the
#      proxy image is built from them; nginx for the earlier proxy; busybox also makes a shell
#      image for log tests), wrk (benchmarks), prometheus (promtool checks the metrics
#      exposition), tmux, curl and jq;
#   2. starts dockerd and the local registry when they are not running (scripts/test-services.sh);
#   3. builds the demo app and test images without Docker Hub (scripts/build-test-images.sh).
# Idempotent; each step says what it does.
#
#   bash scripts/setup.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "setup: $*"; }

if [ "$(id -u)" != 0 ]; then
    echo "setup: error: run as root (installs packages, starts dockerd)" >&2
    exit 1
fi

packages=(docker.io openssh-server openssh-client docker-registry nginx-light haproxy socat
    busybox-static wrk prometheus iptables
    iproute2 ca-certificates curl jq tmux procps util-linux)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's docker.io and nginx try to start services; in a container without init that fails
    # harmlessly, so tell invoke-rc.d not to.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/deckhand-apt.log 2>&1 \
        || { tail -30 /tmp/deckhand-apt.log; exit 1; }
    rm -f /usr/sbin/policy-rc.d
else
    say "packages already installed"
fi
mkdir -p /run/sshd

bash "$ROOT/scripts/test-services.sh"
bash "$ROOT/scripts/build-test-images.sh"
say "ready"
