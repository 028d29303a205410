#!/usr/bin/env bash
# The pure tests: state, views (snapshots), plans, rules, the runner's request rules, property
# tests. No dockerd, sshd, registry or tmux needed; seconds, not minutes. The whole suite is
# scripts/test.sh.
#
#   bash scripts/test-fast.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo nextest run --workspace --lib --test props --test tui -E 'not test(/^e2e/)' "$@"
