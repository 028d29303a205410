#!/usr/bin/env bash
# Builds deckhand's test images without Docker Hub and pushes them to the local test registry
# (start it first: scripts/test-services.sh). Everything is FROM scratch:
#
#   REGISTRY/deckhand/demo:a000001 ... a000007   good releases, distinct images, built in this
#                                                order at least 1 s apart (prune sorts by Created)
#   REGISTRY/deckhand/demo:bad0001               always unhealthy (DEMO_UNHEALTHY=1)
#   REGISTRY/deckhand/demo:5100001               slow: listens only after 600 s
#   REGISTRY/deckhand/demo:e000001               exits with code 3 300 ms after start
#   REGISTRY/deckhand/demo:fa15001               healthy /health, every page 500 (DEMO_PAGES_FAIL=1)
#   REGISTRY/deckhand/nginx:stable               real nginx (this host's Debian nginx on scratch):
#                                                the earlier proxy, for tests of hosts set up with it
#   REGISTRY/deckhand/haproxy:2.6                deckhand's proxy: Debian's HAProxy + socat on scratch
#   REGISTRY/deckhand/demo-shell:a0005e1         the demo plus Debian's dash as /bin/sh
#   REGISTRY/deckhand/busybox:1                  Debian's static busybox on scratch: a shell for
#                                                log tests (local only, not pushed)
#
# The tags stay in the local image store too. Docker's layer cache keeps a re-run fast and the
# images (and their Created times) unchanged when nothing changed.
#
#   bash scripts/build-test-images.sh
#
# Environment: DECKHAND_TEST_REGISTRY (default 127.0.0.1:5000), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REGISTRY=${DECKHAND_TEST_REGISTRY:-127.0.0.1:5000}
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/$TARGET/release/deckhand-demo
DEMO_REPO=$REGISTRY/deckhand/demo
NGINX_IMAGE=$REGISTRY/deckhand/nginx:stable
HAPROXY_IMAGE=$REGISTRY/deckhand/haproxy:2.6

# "TAG [KNOB=VALUE]", in build (= Created) order; a knob is a build-arg of
# infrastructure/docker/demo/Dockerfile that ends up in the image's ENV.
DEMO_SPECS=(a000001 a000002 a000003 a000004 a000005 a000006 a000007
    "bad0001 DEMO_UNHEALTHY=1" "5100001 DEMO_START_DELAY_MS=600000" "e000001 DEMO_EXIT_AFTER_MS=300"
    "fa15001 DEMO_PAGES_FAIL=1")

say() { echo "build-test-images: $*"; }
die() { echo "build-test-images: error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"; }

started=$(date +%s)
need docker "install docker.io (apt-get install docker.io)"
need cargo "install Rust (rustup, https://rustup.rs) with the $TARGET target"
need curl "install curl (apt-get install curl)"
need ldd "install libc-bin"
need readelf "install binutils (apt-get install binutils)"
[ -x /usr/sbin/nginx ] || die "/usr/sbin/nginx not found: install nginx-light (apt-get install nginx-light)"
[ -x /usr/sbin/haproxy ] || die "/usr/sbin/haproxy not found: install haproxy (apt-get install haproxy)"
[ -x /usr/bin/socat ] || die "/usr/bin/socat not found: install socat (apt-get install socat)"
[ -x /bin/busybox ] || die "/bin/busybox not found: install busybox-static (apt-get install busybox-static)"
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || die "static glibc not found: install libc6-dev (apt-get install libc6-dev)"
docker info >/dev/null 2>&1 || die "dockerd does not answer: run scripts/test-services.sh (as root)"
curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY/v2/" \
    || die "no registry answers at http://$REGISTRY/v2/: run scripts/test-services.sh"

work=$(mktemp -d /tmp/deckhand-test-images.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
source_url=$(git -C "$ROOT" remote get-url origin 2>/dev/null || echo deckhand)

# --- 1. the static demo binary --------------------------------------------------------------
say "building the static demo binary (cargo build --release -p deckhand-demo --target $TARGET)"
t0=$(date +%s)
# crt-static only for the target (build scripts and proc-macros stay dynamic host binaries).
(cd "$ROOT" && env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p deckhand-demo --target "$TARGET")
[ -x "$BIN" ] || die "cargo did not produce $BIN"
# glibc static-pie: ldd says "statically linked" (a non-PIE one: "not a dynamic executable").
if ldd "$BIN" 2>&1 | grep -E 'not a dynamic executable|statically linked' >/dev/null \
    && ! readelf -lW "$BIN" | grep 'Requesting program interpreter' >/dev/null \
    && ! readelf -dW "$BIN" | grep '(NEEDED)' >/dev/null; then
    say "binary is static: $BIN ($(ldd "$BIN" 2>&1 | xargs)), $(($(date +%s) - t0)) s"
else
    ldd "$BIN" >&2 || true
    die "$BIN is not a static binary (a scratch image has no libc)"
fi

mkdir -p "$work/demo"
if command -v strip >/dev/null; then
    strip -o "$work/demo/deckhand-demo" "$BIN"
else
    cp "$BIN" "$work/demo/deckhand-demo"
fi

# --- 2. the nginx rootfs --------------------------------------------------------------------
mkdir -p "$work/proxy"
bash "$ROOT/infrastructure/docker/proxy/build-rootfs.sh" "$work/proxy/rootfs" | sed 's/^/  /'
nginx_version=$(/usr/sbin/nginx -v 2>&1 | sed 's|^nginx version: nginx/||')
mkdir -p "$work/haproxy"
bash "$ROOT/infrastructure/docker/haproxy/build-rootfs.sh" "$work/haproxy/rootfs" | sed 's/^/  /'
# awk reads all of haproxy's output: `head -1` would close the pipe early, and under pipefail
# haproxy's SIGPIPE fails the whole script (exit 141), now and then.
haproxy_version=$(/usr/sbin/haproxy -v | awk 'NR == 1 { print $3 }')

# --- 3. images ------------------------------------------------------------------------------
created_epoch() { date -d "$(docker image inspect -f '{{.Created}}' "$1")" +%s.%N; }
now_epoch() { date +%s.%N; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

stamp=$( (sha256sum "$work/demo/deckhand-demo" "$ROOT/infrastructure/docker/demo/Dockerfile" | cut -c1-64
    printf '%s\n' "${DEMO_SPECS[@]}") | sha256sum | cut -c1-16)

# build_demo TAG [KNOB=VALUE]: one demo image, VERSION and GIT_SHA = TAG. Always from scratch
# (--no-cache): Docker's cache would hand back an older image with its older Created time.
build_demo() {
    local tag=$1 knob=${2:-} image=$DEMO_REPO:$1 old id
    local args=(--no-cache --build-arg "VERSION=$tag" --build-arg "GIT_SHA=$tag"
        --build-arg "SOURCE=$source_url" --build-arg "BUILD_STAMP=$stamp")
    if [ -n "$knob" ]; then args+=(--build-arg "$knob"); fi
    old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    if ! id=$(docker build -q "${args[@]}" -t "$image" \
        -f "$ROOT/infrastructure/docker/demo/Dockerfile" "$work/demo" 2>"$work/build.err"); then
        cat "$work/build.err" >&2
        die "docker build of $image failed"
    fi
    remove_if_untagged "$old" "$id"
}

# The image a tag pointed to before a rebuild: removed if no tag and no container uses it.
remove_if_untagged() {
    local old=$1 new=$2
    if [ -n "$old" ] && [ "$old" != "$new" ] \
        && [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ]; then
        docker rmi "$old" >/dev/null 2>&1 || true
    fi
}

# All demo images present, built from this binary/Dockerfile/knobs, Created in order >= 1 s apart?
demo_up_to_date() {
    local prev=0 spec tag c s v
    for spec in "${DEMO_SPECS[@]}"; do
        read -r tag _ <<<"$spec"
        read -r s v c < <(docker image inspect -f \
            '{{index .Config.Labels "dev.deckhand.test-image.stamp"}} {{index .Config.Labels "org.opencontainers.image.version"}} {{.Created}}' \
            "$DEMO_REPO:$tag" 2>/dev/null) || return 1
        [ "$s" = "$stamp" ] && [ "$v" = "$tag" ] || return 1
        c=$(date -d "$c" +%s.%N)
        gt "$c" "$(awk -v p="$prev" 'BEGIN { printf "%.3f", p + 0.999 }')" || return 1
        prev=$c
    done
}

if demo_up_to_date; then
    say "demo images are up to date (stamp $stamp): not rebuilding"
else
    say "building demo images (${DEMO_SPECS[*]%% *}), >= 1 s apart"
    t0=$(date +%s)
    last=0
    for spec in "${DEMO_SPECS[@]}"; do
        read -r tag knob <<<"$spec"
        # Start only once the previous image's Created time is more than 1 s in the past.
        while ! gt "$(now_epoch)" "$(awk -v l="$last" 'BEGIN { printf "%.3f", l + 1.05 }')"; do
            sleep 0.1
        done
        build_demo "$tag" "$knob"
        last=$(created_epoch "$DEMO_REPO:$tag")
        env=$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$DEMO_REPO:$tag")
        grep -qx "DEMO_VERSION=$tag" <<<"$env" || die "$DEMO_REPO:$tag lacks DEMO_VERSION=$tag"
        [ -z "$knob" ] || grep -qx "$knob" <<<"$env" || die "$DEMO_REPO:$tag lacks $knob"
    done
    demo_up_to_date || die "demo images' Created times are not increasing 1 s apart (clock?)"
    say "demo images built in $(($(date +%s) - t0)) s"
fi

say "building $NGINX_IMAGE (nginx $nginx_version)"
old=$(docker image inspect -f '{{.Id}}' "$NGINX_IMAGE" 2>/dev/null || true)
if ! docker build -q -t "$NGINX_IMAGE" \
    --build-arg "NGINX_VERSION=$nginx_version" --build-arg "GIT_SHA=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --build-arg "SOURCE=$source_url" \
    -f "$ROOT/infrastructure/docker/proxy/Dockerfile" "$work/proxy" >/dev/null 2>"$work/build.err"; then
    cat "$work/build.err" >&2
    die "docker build of $NGINX_IMAGE failed"
fi
remove_if_untagged "$old" "$(docker image inspect -f '{{.Id}}' "$NGINX_IMAGE")"
say "building $HAPROXY_IMAGE (HAProxy $haproxy_version)"
old=$(docker image inspect -f '{{.Id}}' "$HAPROXY_IMAGE" 2>/dev/null || true)
if ! docker build -q -t "$HAPROXY_IMAGE" \
    --build-arg "HAPROXY_VERSION=$haproxy_version" --build-arg "GIT_SHA=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --build-arg "SOURCE=$source_url" \
    -f "$ROOT/infrastructure/docker/haproxy/Dockerfile" "$work/haproxy" >/dev/null 2>"$work/build.err"; then
    cat "$work/build.err" >&2
    die "docker build of $HAPROXY_IMAGE failed"
fi
remove_if_untagged "$old" "$(docker image inspect -f '{{.Id}}' "$HAPROXY_IMAGE")"
# Smoke tests: the demo binary runs in its image; nginx's config parses inside its image.
docker run --rm "$DEMO_REPO:${DEMO_SPECS[0]}" --version >/dev/null 2>"$work/demo.err" || {
    cat "$work/demo.err" >&2
    die "deckhand-demo does not run inside $DEMO_REPO:${DEMO_SPECS[0]}"
}
docker run --rm "$NGINX_IMAGE" nginx -t >/dev/null 2>"$work/nginx-t.err" || {
    cat "$work/nginx-t.err" >&2
    die "nginx -t fails inside $NGINX_IMAGE"
}

docker run --rm "$HAPROXY_IMAGE" haproxy -c -f /etc/haproxy/haproxy.cfg >/dev/null 2>"$work/haproxy-c.err" || {
    cat "$work/haproxy-c.err" >&2
    die "haproxy -c fails inside $HAPROXY_IMAGE"
}

# A shell for tests that need a container to print hostile or huge logs (`deckhand logs`):
# Debian's static busybox on scratch, no Docker Hub. Local only (tests create containers from it).
BUSYBOX_IMAGE=$REGISTRY/deckhand/busybox:1
[ -x /bin/busybox ] || die "/bin/busybox not found: install busybox-static (apt-get install busybox-static)"
mkdir -p "$work/busybox"
cp /bin/busybox "$work/busybox/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sh"]\n' \
    > "$work/busybox/Dockerfile"
old=$(docker image inspect -f '{{.Id}}' "$BUSYBOX_IMAGE" 2>/dev/null || true)
docker build -q -t "$BUSYBOX_IMAGE" "$work/busybox" >/dev/null 2>"$work/build.err" || {
    cat "$work/build.err" >&2
    die "docker build of $BUSYBOX_IMAGE failed"
}
remove_if_untagged "$old" "$(docker image inspect -f '{{.Id}}' "$BUSYBOX_IMAGE")"
docker run --rm "$BUSYBOX_IMAGE" sh -c 'printf ok' | grep -qx ok || die "sh does not run inside $BUSYBOX_IMAGE"

# --- 4. push --------------------------------------------------------------------------------
say "pushing to $REGISTRY"
t0=$(date +%s)
images=()
for spec in "${DEMO_SPECS[@]}"; do
    read -r tag _ <<<"$spec"
    images+=("$DEMO_REPO:$tag")
done
images+=("$NGINX_IMAGE" "$HAPROXY_IMAGE")
for image in "${images[@]}"; do
    docker push "$image" >"$work/push.log" 2>&1 || {
        cat "$work/push.log" >&2
        die "docker push $image failed"
    }
done
tags=$(curl -fsS "http://$REGISTRY/v2/deckhand/demo/tags/list")
for spec in "${DEMO_SPECS[@]}"; do
    read -r tag _ <<<"$spec"
    grep -q "\"$tag\"" <<<"$tags" || die "the registry does not list deckhand/demo:$tag ($tags)"
done
say "pushed ${#images[@]} images in $(($(date +%s) - t0)) s"

# --- 5. the demo with a shell (a NEW repository; the images above are untouched) ------------
# REGISTRY/deckhand/demo-shell:a0005e1: the demo binary plus Debian's dash as /bin/sh, for the
# console's shell test (the scratch demo has no shell).
SHELL_IMAGE=$REGISTRY/deckhand/demo-shell:a0005e1
say "building $SHELL_IMAGE"
bash "$ROOT/infrastructure/docker/demo-shell/build-rootfs.sh" "$work/demo/deckhand-demo" \
    "$work/demo-shell/rootfs" | sed 's/^/  /'
old=$(docker image inspect -f '{{.Id}}' "$SHELL_IMAGE" 2>/dev/null || true)
docker build -q -t "$SHELL_IMAGE" --build-arg VERSION=a0005e1 --build-arg "SOURCE=$source_url" \
    -f "$ROOT/infrastructure/docker/demo-shell/Dockerfile" "$work/demo-shell" >/dev/null \
    2>"$work/build.err" || { cat "$work/build.err" >&2; die "docker build of $SHELL_IMAGE failed"; }
remove_if_untagged "$old" "$(docker image inspect -f '{{.Id}}' "$SHELL_IMAGE")"
[ "$(docker run --rm --entrypoint /bin/sh "$SHELL_IMAGE" -c 'echo $((6*7))')" = 42 ] \
    || die "/bin/sh does not run inside $SHELL_IMAGE"
docker push "$SHELL_IMAGE" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; die "docker push $SHELL_IMAGE failed"; }
images+=("$SHELL_IMAGE")

# --- summary --------------------------------------------------------------------------------
echo
printf '%-40s %-19s %-30s %s\n' IMAGE ID CREATED SIZE
for image in "${images[@]}"; do
    read -r id created size < <(docker image inspect -f '{{.Id}} {{.Created}} {{.Size}}' "$image")
    id=${id#sha256:}
    printf '%-40s %-19s %-30s %s\n' "$image" "${id:0:12}" "$created" \
        "$(awk -v s="$size" 'BEGIN { printf "%.2f MB", s / 1000000 }')"
done
echo
say "done in $(($(date +%s) - started)) s"
