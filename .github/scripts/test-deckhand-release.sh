#!/usr/bin/env bash
# Tests deckhand-release.sh's decisions (deploy, smoke test, rollback or not) against a stub
# deckhand that records its calls. Needs bash, jq, curl and python3; no network but loopback.
#   bash .github/scripts/test-deckhand-release.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2> /dev/null || true; fi
    rm -rf -- "$work"
}
trap cleanup EXIT

# --- the stub: STUB_DIR/live holds one live SHA per host; STUB_* choose the outcome ---------
cat > "$work/deckhand" << 'STUB'
#!/usr/bin/env bash
set -euo pipefail
dir=${STUB_DIR:?}
echo "$*" >> "$dir/calls"
while [ "$#" -gt 0 ]; do
    case "$1" in --config | --env | --service) shift 2 ;; *) break ;; esac
done
cmd=$1; shift
status_json() {
    local first=1
    printf '{"env":"staging","hosts":['
    while read -r name sha; do
        [ "$first" = 1 ] || printf ','
        first=0
        printf '{"name":"%s","reachable":true,"error":null,"services":[{"name":"api","live_color":"blue","live_sha":"%s"}]}' "$name" "$sha"
    done < "$dir/live"
    printf ']}\n'
}
case "$cmd" in
    status)
        status_json
        exit "${STUB_STATUS_RC:-0}" ;;
    deploy)
        ref=$1
        case "${STUB_DEPLOY:-ok}" in
            ok) awk -v r="$ref" '{print $1, r}' "$dir/live" > "$dir/live.new" ;;
            first-host-only) awk -v r="$ref" 'NR==1 {print $1, r; next} {print}' "$dir/live" > "$dir/live.new" ;;
            fail) cp "$dir/live" "$dir/live.new"; mv "$dir/live.new" "$dir/live"; exit "${STUB_DEPLOY_RC:-1}" ;;
        esac
        mv "$dir/live.new" "$dir/live"
        [ "${STUB_DEPLOY:-ok}" = ok ] || exit "${STUB_DEPLOY_RC:-1}" ;;
    rollback)
        if [ "$#" -gt 0 ] && [ "${1#--}" = "$1" ]; then
            awk -v r="$1" '{print $1, r}' "$dir/live" > "$dir/live.new" && mv "$dir/live.new" "$dir/live"
        fi
        exit "${STUB_ROLLBACK_RC:-0}" ;;
esac
STUB
chmod +x "$work/deckhand"

# --- a loopback /health for the external smoke test ------------------------------------------
mkdir -p "$work/www-good" "$work/www-bad"
echo '{"status":"healthy"}' > "$work/www-good/health"
echo '{"status":"unhealthy"}' > "$work/www-bad/health"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work" > /dev/null 2>&1 &
server_pid=$!
for _ in $(seq 1 50); do
    curl -fsS --max-time 1 "http://127.0.0.1:$port/www-good/health" > /dev/null 2>&1 && break
    sleep 0.1
done

passed=0
failed=0
# run NAME EXPECTED_RC LIVE_BEFORE(host:sha,...) EXPECT_ROLLBACK(none|bare|SHA) [VAR=value ...]
run() {
    local name=$1 expected=$2 live=$3 rollback=$4
    shift 4
    local dir="$work/case-$name"
    mkdir -p "$dir"
    tr ',' '\n' <<< "$live" | tr ':' ' ' > "$dir/live"
    : > "$dir/calls"
    local rc=0
    env STUB_DIR="$dir" DECKHAND_BIN="$work/deckhand" DECKHAND_ENV=staging DECKHAND_REF=bbb2222 \
        SMOKE_ATTEMPTS=2 GITHUB_STEP_SUMMARY="$dir/summary" "$@" \
        bash "$here/deckhand-release.sh" > "$dir/out" 2>&1 || rc=$?
    local got_rollback
    got_rollback=$(awk '{for (i=1;i<=NF;i++) if ($i=="rollback") { if (i<NF && $(i+1) !~ /^--/) print $(i+1); else print "bare"; }}' "$dir/calls")
    got_rollback=${got_rollback:-none}
    if [ "$rc" = "$expected" ] && [ "$got_rollback" = "$rollback" ]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc (want $expected), rollback '$got_rollback' (want '$rollback')"
        sed 's/^/     | /' "$dir/out"
    fi
}

run success 0 "h1:aaa1111,h2:aaa1111" none
run success-public-url 0 "h1:aaa1111,h2:aaa1111" none PUBLIC_URL="http://127.0.0.1:$port/www-good"
run deploy-fails 1 "h1:aaa1111,h2:aaa1111" aaa1111 STUB_DEPLOY=fail STUB_DEPLOY_RC=1
run partial-deploy 1 "h1:aaa1111,h2:aaa1111" aaa1111 STUB_DEPLOY=first-host-only STUB_DEPLOY_RC=1
run unreachable-mid-deploy 1 "h1:aaa1111,h2:aaa1111" aaa1111 STUB_DEPLOY=first-host-only STUB_DEPLOY_RC=4
run public-url-unhealthy 1 "h1:aaa1111,h2:aaa1111" aaa1111 PUBLIC_URL="http://127.0.0.1:$port/www-bad"
run locked 3 "h1:aaa1111,h2:aaa1111" none STUB_DEPLOY=fail STUB_DEPLOY_RC=3
run config-error 2 "h1:aaa1111,h2:aaa1111" none STUB_DEPLOY=fail STUB_DEPLOY_RC=2
run status-unreachable 4 "h1:aaa1111,h2:aaa1111" none STUB_STATUS_RC=4
run hosts-disagree 1 "h1:aaa1111,h2:ccc3333" bare STUB_DEPLOY=fail STUB_DEPLOY_RC=5
run rollback-fails 1 "h1:aaa1111,h2:aaa1111" aaa1111 STUB_DEPLOY=fail STUB_ROLLBACK_RC=1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
