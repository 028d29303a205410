#!/usr/bin/env bash
# Bounded random-input run of every parser that reads host data (health JSON, metrics, df,
# meminfo, proxy config, audit lines, env files, alert book, Docker names, the sanitizer and the
# redactor): random bytes, hostile text, health-shaped JSON and mutations of the saved corpus
# (tests/props/corpus/). Prints, per generator, the inputs tried and the panics (goal: 0), and
# exits non-zero on any panic. CI runs the same test, the properties and the corpus at a
# smaller size (`cargo nextest run --test props`).
#
#   bash scripts/fuzz.sh [CASES_PER_GENERATOR]   (default 20000)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cases=${1:-20000}
started=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
FUZZ_CASES=$cases cargo test --test props -- --exact \
    hostile::fuzz_every_host_parser --nocapture >"$log" 2>&1
rc=$?
grep -E '^fuzz:|panicked|error(\[|:)' "$log" || true
if [ "$rc" -eq 0 ]; then
    echo "fuzz: OK, 0 panics ($cases inputs per generator, $(($(date +%s) - started)) s)"
else
    tail -n 20 "$log"
    echo "fuzz: FAILED (exit $rc)"
    exit 1
fi
