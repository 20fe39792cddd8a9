#!/usr/bin/env bash
# Alias kept for the run book (docs/BENCHMARKS.md names it): the GPU lease script now lives in
# scripts/gpu/lease.sh. Usage, from the repository root: scripts/gpu_lease.sh OUT [BUDGET_S] [overrides...]
exec "$(dirname "$0")/gpu/lease.sh" "$@"
