#!/usr/bin/env bash
# The demo on a fresh machine: installs and starts what it needs (scripts/setup.sh), then
# `deckhand demo` deploys three releases of the demo service blue/green on the local Docker
# engine and shows them.
#
#   bash scripts/demo.sh [--port 3001]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
cargo run --quiet --bin deckhand -- demo "$@"
