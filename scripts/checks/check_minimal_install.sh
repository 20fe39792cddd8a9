#!/usr/bin/env bash
# The suite with the test extra alone: pip install -e ".[test]" in a fresh virtual environment,
# then pytest. Tests of optional extras (export, baselines, metadata, plots) must skip with
# their reason, never fail at import. Usage: bash scripts/checks/check_minimal_install.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${1:-/tmp/demosaic-minimal-venv}
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0 -e ".[test]"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs tests
