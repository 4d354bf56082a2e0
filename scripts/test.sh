#!/usr/bin/env bash
# Set up .venv (runtime + test tools) if needed, then run the default (fast) test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh
exec .venv/bin/python -m pytest "$@"
