#!/usr/bin/env bash
# Whole-command time of demosaic-infer, this tree against another checkout of the package,
# alternated run by run on the same 24 MP X-Trans DNG (the benchmarks' synthetic camera file).
#
#   git worktree add /tmp/ref_tree <commit>
#   bash scripts/checks/whole_command_ab.sh /tmp/ref_tree [REPEAT]
#
# Prints one line per run ("ref SECONDS" / "new SECONDS") and the medians.
set -euo pipefail
ref=$(cd "$1" && pwd); repeat=${2:-3}
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$here/scripts/benchmarks" && python -c "
from pathlib import Path
from _bench import write_scene_raw
write_scene_raw(Path('$work/in.dng'), 4000, 6000)")
for i in $(seq "$repeat"); do
  for side in ref new; do
    src=$([ "$side" = ref ] && echo "$ref/src" || echo "$here/src")
    s=$(date +%s.%N)
    PYTHONPATH=$src python -c "from demosaic.cli.infer import run; run()" \
      "$work/in.dng" "$work/$side.exr" --no-progress >/dev/null 2>&1
    echo "$side $(echo "$(date +%s.%N) - $s" | bc)"
  done
done | tee "$work/times"
for side in ref new; do
  echo "median $side: $(grep "^$side " "$work/times" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s"
done
