#!/usr/bin/env bash
# The whole test suite: installs and starts what it needs (scripts/setup.sh), then runs the unit
# and integration tests (real dockerd, sshd, registry and nginx) and the infrastructure linters.
#
#   bash scripts/test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh

echo "test: infrastructure linters"
# Outside the repository, so the linters do not lint the linters.
VENV=${DECKHAND_LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/deckhand/venv-infra}
if ! cmp -s scripts/lint-infra-requirements.txt "$VENV/.installed-requirements"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/lint-infra-requirements.txt
    cp scripts/lint-infra-requirements.txt "$VENV/.installed-requirements"
fi
skip=""
command -v terraform > /dev/null 2>&1 || { skip="terraform"; echo "test: terraform not installed: its fmt check is skipped"; }
PATH="$VENV/bin:$PATH" LINT_INFRA_SKIP="$skip" bash scripts/lint-infra.sh

echo "test: supply chain (cargo-deny: licenses, bans, sources)"
command -v cargo-deny > /dev/null 2>&1 || cargo install --locked --quiet cargo-deny
# The advisory database lives on GitHub, which this machine cannot reach; the GitHub workflow
# checks advisories too.
cargo deny --log-level error check licenses bans sources

echo "test: cargo tests (unit + integration)"
if cargo nextest --version > /dev/null 2>&1; then
    cargo nextest run --workspace --profile ci
else
    cargo test --workspace
fi
