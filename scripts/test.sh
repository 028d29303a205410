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
if [ ! -x .venv-infra/bin/yamllint ]; then
    python3 -m venv .venv-infra
    .venv-infra/bin/pip install -q --disable-pip-version-check -r scripts/lint-infra-requirements.txt
fi
skip=""
command -v terraform > /dev/null 2>&1 || { skip="terraform"; echo "test: terraform not installed: its fmt check is skipped"; }
PATH="$ROOT/.venv-infra/bin:$PATH" LINT_INFRA_SKIP="$skip" bash scripts/lint-infra.sh

echo "test: cargo tests (unit + integration)"
if cargo nextest --version > /dev/null 2>&1; then
    cargo nextest run --workspace --profile ci
else
    cargo test --workspace
fi
