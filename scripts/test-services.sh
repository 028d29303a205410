#!/usr/bin/env bash
# Makes sure the services deckhand's integration tests need are up on this machine:
#   1. dockerd answers (`docker info`); if not, starts `dockerd` in the background
#      (log: /var/log/dockerd.log) and waits up to 60 s;
#   2. a local registry (Debian's docker-registry) answers on 127.0.0.1:5000
#      (config + storage: /var/lib/deckhand-test-registry, log: /var/log/deckhand-test-registry.log).
# Idempotent: whatever already runs is left alone. Run as root.
#
#   bash scripts/test-services.sh
#
# Environment: DECKHAND_TEST_REGISTRY (default 127.0.0.1:5000; a registry on another address is
# only checked, not started).
set -euo pipefail

REGISTRY=${DECKHAND_TEST_REGISTRY:-127.0.0.1:5000}
REGISTRY_DIR=/var/lib/deckhand-test-registry
REGISTRY_LOG=/var/log/deckhand-test-registry.log
REGISTRY_BIN=/usr/bin/docker-registry
DOCKERD_LOG=/var/log/dockerd.log

say() { echo "test-services: $*"; }
die() { echo "test-services: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"; }

[ "$(id -u)" = 0 ] || die "run as root (it may start dockerd and a registry)"
need docker "install docker.io (apt-get install docker.io)"
need curl "install curl (apt-get install curl)"
need setsid "install util-linux"

# --- 1. dockerd ---------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    say "dockerd: already answering (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
else
    dockerd_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$dockerd_pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$dockerd_pid/cmdline" | grep -q dockerd; then
        say "dockerd: process $dockerd_pid exists but does not answer yet; waiting for it"
    else
        need dockerd "install docker.io (apt-get install docker.io)"
        say "dockerd: not running; starting it in the background (log: $DOCKERD_LOG)"
        setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if ! docker info >/dev/null 2>&1; then
        echo "--- last lines of $DOCKERD_LOG:" >&2
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        die "dockerd did not answer within 60 s"
    fi
    say "dockerd: up (server $(docker version --format '{{.Server.Version}}'))"
fi

# --- 2. registry --------------------------------------------------------------------------
registry_answers() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY/v2/" 2>/dev/null; }
# The process in pidfile $1 is a live docker-registry (a zombie or a reused pid is not).
registry_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q docker-registry
}

if registry_answers; then
    say "registry: already answering at http://$REGISTRY/v2/"
else
    [[ "$REGISTRY" == *:* ]] || die "DECKHAND_TEST_REGISTRY=$REGISTRY: expected HOST:PORT"
    host=${REGISTRY%:*}
    port=${REGISTRY##*:}
    case "$host" in
        127.0.0.1 | localhost) ;;
        *) die "no registry answers at http://$REGISTRY/v2/ and only a local one (127.0.0.1:PORT) is started here" ;;
    esac
    [ -x "$REGISTRY_BIN" ] || die "$REGISTRY_BIN not found: install docker-registry (apt-get install docker-registry)"
    mkdir -p "$REGISTRY_DIR/data"
    # Our own config: Debian's /etc/docker/registry/config.yml turns on htpasswd auth and listens
    # on every interface. No blob-descriptor cache: tests delete and re-push.
    config="$REGISTRY_DIR/config.yml"
    cat >"$config.new" <<EOF
version: 0.1
log:
  level: warn   # the access log (one line per request) stays on
  fields:
    service: deckhand-test-registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: deckhand-test-registry   # one instance only; silences the "no HTTP secret" warning
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    mv "$config.new" "$config"
    pidfile="$REGISTRY_DIR/registry.pid"
    # A registry we started before that is still starting (or stopping): give it a moment.
    if registry_alive "$pidfile"; then
        say "registry: process $(cat "$pidfile") exists but does not answer yet; waiting up to 5 s"
        for _ in $(seq 1 25); do
            registry_answers || ! registry_alive "$pidfile" && break
            sleep 0.2
        done
    fi
    if ! registry_answers; then
        if registry_alive "$pidfile"; then
            die "registry process $(cat "$pidfile") runs but http://$REGISTRY/v2/ does not answer; see $REGISTRY_LOG (stop it and run this again)"
        fi
        say "registry: starting $REGISTRY_BIN serve $config (storage: $REGISTRY_DIR/data, log: $REGISTRY_LOG)"
        setsid nohup "$REGISTRY_BIN" serve "$config" >>"$REGISTRY_LOG" 2>&1 </dev/null &
        echo $! >"$pidfile"
        for _ in $(seq 1 100); do
            registry_answers && break
            if ! registry_alive "$pidfile"; then
                echo "--- last lines of $REGISTRY_LOG:" >&2
                tail -n 20 "$REGISTRY_LOG" >&2 || true
                die "the registry exited (is port $port taken by something else? see $REGISTRY_LOG)"
            fi
            sleep 0.2
        done
        registry_answers || die "registry started (pid $(cat "$pidfile")) but http://$REGISTRY/v2/ does not answer after 20 s; see $REGISTRY_LOG"
    fi
    say "registry: up at http://$REGISTRY/v2/ (pid $(cat "$pidfile"))"
fi

say "ready: docker ($(docker version --format '{{.Server.Version}}')), registry $REGISTRY"
