#!/usr/bin/env bash
# Soak of the audit log under concurrency: two services on one SSH host deploy at the same time,
# ROUNDS times (default 30); every line of the host's audit log must parse and none may be lost.
# CI runs the same test with 3 rounds (tests/integration/audit_log.rs).
#   bash scripts/audit-soak.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-30}"
start=$(date +%s)
DECKHAND_AUDIT_ROUNDS="$rounds" cargo nextest run --test integration --no-capture \
  -E 'test(=audit_log::two_services_on_one_host_deploying_at_once_lose_no_audit_line)' 2>&1 \
  | grep -E 'audit under concurrency|PASS|FAIL|panicked' || true
echo "audit soak: $rounds rounds in $(( $(date +%s) - start ))s"
