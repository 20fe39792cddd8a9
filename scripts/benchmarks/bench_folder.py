"""Folder-mode throughput of ``demosaic-infer`` (issue 15): ten 24 MP files in one command
against the same files one command each.

1. One 24 MP X-Trans DNG is written (or reused: the file of ``scripts/benchmarks/profile_infer.py``) and
   linked ``--files`` times into a folder.
2. **Single files**: ``demosaic-infer FILE OUT.exr`` for ``--singles`` of them, one process
   each (imports, model load, read, develop, write): median seconds per file.
3. **Folder**: ``demosaic-infer FOLDER/ OUT/`` once (the model loaded once; the next file read
   and the previous output written on their own threads while the network runs).
4. Files per minute of both and the ratio (issue 15's target: >= 1.3x); the folder's first
   output is compared with the single-file output of the same file (must be identical).

Usage::

    python scripts/benchmarks/bench_folder.py [--files 10] [--singles 3] [--out logs/bench_folder]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

from _bench import timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--singles", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("logs/bench_folder"))
    parser.add_argument("--source", type=Path, default=Path("logs/profile_infer/xtrans_6000x3996.dng"),
                        help="a 24 MP raw file (scripts/benchmarks/profile_infer.py writes this one)")
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"{args.source} is missing: run python scripts/benchmarks/profile_infer.py first", file=sys.stderr)
        return 2
    import numpy as np

    from demosaic.devices import cpu_model
    from demosaic.io.images import read_exr

    raws, singles_out, folder_out = args.out / "raws", args.out / "singles", args.out / "folder"
    for d in (raws, singles_out, folder_out):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    files = []
    for i in range(args.files):
        f = raws / f"DSCF{i:04d}.dng"
        os.link(args.source, f) if args.source.stat().st_dev == raws.stat().st_dev else shutil.copy(args.source, f)
        files.append(f)
    single = [timed(["demosaic-infer", str(f), str(singles_out / f"{f.stem}.exr"), "--no-progress"])
              for f in files[: args.singles]]
    folder = timed(["demosaic-infer", str(raws), str(folder_out), "--no-progress"])
    same = np.array_equal(read_exr(singles_out / f"{files[0].stem}.exr")[0],
                          read_exr(folder_out / f"{files[0].stem}.exr")[0])
    per_single = statistics.median(single)
    report = {
        "machine": f"{cpu_model()}, {os.cpu_count()} cores", "source": str(args.source),
        "files": args.files, "single_s": single, "single_median_s": per_single,
        "single_files_per_min": 60.0 / per_single, "folder_s": folder,
        "folder_files_per_min": 60.0 * args.files / folder,
        "ratio_folder_over_single": (args.files / folder) / (1.0 / per_single),
        "first_output_identical": bool(same),
    }
    (args.out / "bench_folder.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
