#!/usr/bin/env bash
# Deploys one release to one environment with deckhand, smoke-tests it and rolls back
# automatically when either fails. Used by .github/workflows/ci-cd.yml (staging, production).
#
# 1. `deckhand status` records the SHA live before the deploy (the rollback target);
# 2. `deckhand deploy REF --yes` (host by host; deckhand itself keeps the old color serving
#    when a host's new color is unhealthy);
# 3. smoke test: every host reports REF live and healthy, and PUBLIC_URL/health answers
#    "healthy" (through the load balancer) several times in a row;
# 4. on a failed deploy (exit 1, 4, 5) or a failed smoke test: `deckhand rollback PREVIOUS --yes`
#    on every host, then fail the job. Exit 2 (usage/config) and 3 (locked by someone else)
#    changed nothing: no rollback.
#
# Environment:
#   DECKHAND_ENV (required)      deckhand environment, e.g. staging
#   DECKHAND_REF (required)      image tag / git SHA to deploy
#   DECKHAND_SERVICE=api         service name in deckhand.toml
#   DECKHAND_CONFIG=deckhand.toml
#   DECKHAND_TIMEOUT             health timeout of the new release (default: the service's
#                                health_timeout in deckhand.toml)
#   DECKHAND_LOCK_WAIT=5m        how long to wait for another operator's lock
#   PUBLIC_URL                   base URL for the external smoke test (optional)
#   SMOKE_ATTEMPTS=6             consecutive healthy answers required from PUBLIC_URL
#   DECKHAND_BIN=deckhand        (tests point this at a stub)
# Registry credentials and the webhook come from the environment (DECKHAND_REGISTRY_*,
# DECKHAND_WEBHOOK_URL); this script never prints them.
set -euo pipefail

env_name=${DECKHAND_ENV:?set DECKHAND_ENV}
ref=${DECKHAND_REF:?set DECKHAND_REF}
service=${DECKHAND_SERVICE:-api}
config=${DECKHAND_CONFIG:-deckhand.toml}
lock_wait=${DECKHAND_LOCK_WAIT:-5m}
action_args=(--yes --lock-wait "$lock_wait")
if [ -n "${DECKHAND_TIMEOUT:-}" ]; then action_args+=(--timeout "$DECKHAND_TIMEOUT"); fi
public_url=${PUBLIC_URL:-}
attempts=${SMOKE_ATTEMPTS:-6}
bin=${DECKHAND_BIN:-deckhand}
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

say() { echo "deckhand-release: $*"; }
deckhand() { "$bin" --config "$config" --env "$env_name" --service "$service" "$@"; }

# Live SHAs of the service, one per host ("-" for a host without one), from status JSON.
live_shas() {
    jq -r --arg s "$service" \
        '.hosts[] | ((.services // [])[] | select(.name == $s) | .live_sha) // "-"' "$1"
}

# 0 if every host is reachable and serves a SHA matching REF (either is a prefix of the other).
all_on_ref() {
    jq -e --arg s "$service" --arg ref "$ref" '
        [.hosts[] | .reachable and (
            [(.services // [])[] | select(.name == $s) | .live_sha // ""
             | select(. != "" and (startswith($ref) or ($ref | startswith(.))))]
            | length == 1)]
        | length > 0 and all' "$1" > /dev/null
}

smoke_test() {
    say "smoke test: deckhand status"
    local rc=0
    deckhand status --output json > "$work/after.json" || rc=$?
    if [ "$rc" -ne 0 ]; then
        say "deckhand status exited $rc after the deploy"
        return 1
    fi
    if ! all_on_ref "$work/after.json"; then
        say "not every host serves $ref:"
        jq -r '.hosts[] | "  \(.name): reachable=\(.reachable)"' "$work/after.json"
        live_shas "$work/after.json" | sed 's/^/  live: /'
        return 1
    fi
    [ -n "$public_url" ] || { say "PUBLIC_URL not set: skipping the external check"; return 0; }
    local i body
    for i in $(seq 1 "$attempts"); do
        if ! body=$(curl -fsS --max-time 5 "${public_url%/}/health"); then
            say "GET ${public_url%/}/health failed (answer $i of $attempts)"
            return 1
        fi
        if ! jq -e '.status == "healthy"' <<<"$body" > /dev/null 2>&1; then
            say "GET ${public_url%/}/health did not say healthy (answer $i of $attempts)"
            return 1
        fi
        sleep 2
    done
    say "smoke test passed: $attempts healthy answers from ${public_url%/}/health"
}

# --- 1. what serves now ---------------------------------------------------------------------
rc=0
deckhand status --output json > "$work/before.json" || rc=$?
case "$rc" in
    0 | 5) ;; # 5: something is unhealthy already; deploying a fix must stay possible
    *) say "deckhand status exited $rc before the deploy: nothing changed"; exit "$rc" ;;
esac
mapfile -t before < <(live_shas "$work/before.json" | sort -u)
previous=""
if [ "${#before[@]}" -eq 1 ] && [ "${before[0]}" != "-" ]; then
    previous=${before[0]}
    say "live before the deploy: $previous on every host"
else
    say "hosts disagree on the live release (${before[*]:-none}): a rollback would use each host's previous color"
fi

# --- 2. deploy ------------------------------------------------------------------------------
say "deploying $ref to $env_name ($service)"
deploy_rc=0
deckhand deploy "$ref" "${action_args[@]}" || deploy_rc=$?

failed=""
case "$deploy_rc" in
    0) smoke_test || failed="the smoke test failed" ;;
    2) say "usage or configuration error (exit 2): nothing was deployed"; exit 2 ;;
    3) say "locked by someone else (exit 3): nothing was deployed; see docs/runbooks/incident-stale-lock.md"; exit 3 ;;
    *) failed="deckhand deploy exited $deploy_rc" ;;
esac

if [ -z "$failed" ]; then
    printf '### %s: %s deployed\n\nPrevious release: %s\n' "$env_name" "$ref" "${previous:-unknown}" >> "$summary"
    say "done: $ref serves on $env_name"
    exit 0
fi

# --- 3. roll back ---------------------------------------------------------------------------
say "$failed: rolling back"
rollback_rc=0
if [ -n "$previous" ] && [ "$previous" != "$ref" ]; then
    deckhand rollback "$previous" "${action_args[@]}" || rollback_rc=$?
else
    deckhand rollback "${action_args[@]}" || rollback_rc=$?
fi
deckhand status --output json > "$work/final.json" || true
if [ "$rollback_rc" -eq 0 ]; then
    say "rolled back to ${previous:-the previous release of each host}"
    printf '### %s: %s FAILED, rolled back\n\n%s. Live again: %s\n' \
        "$env_name" "$ref" "$failed" "${previous:-previous releases}" >> "$summary"
else
    say "ROLLBACK FAILED (exit $rollback_rc): follow docs/runbooks/rollback.md now"
    printf '### %s: %s FAILED and the rollback FAILED (exit %s)\n\nFollow docs/runbooks/rollback.md.\n' \
        "$env_name" "$ref" "$rollback_rc" >> "$summary"
fi
if [ -s "$work/final.json" ]; then
    say "hosts now:"
    jq -r --arg s "$service" '.hosts[] | "  \(.name): \(((.services // [])[] | select(.name == $s) | "\(.live_color // "-") \(.live_sha // "-")") // "unknown")"' "$work/final.json" || true
fi
exit 1
