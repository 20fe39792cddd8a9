"""The camera protocol through the command a user runs: ``demosaic-infer`` (a fresh process,
``--color-space camera --highlights none --float``) on the protocol's own DNGs, scored against
the protocol's target, beside ``scripts/benchmarks/bench_camera.py``'s number for the same image.

Both sides must agree: the protocol claims to run "the code ``demosaic-infer`` runs", and this
checks that claim on whole processes. The DNGs are the cached ones of ``bench_camera.py``
(same truth crop, seeds and camera), written first if missing; run that script for a method
before comparing with it.

Usage::

    python scripts/benchmarks/bench_cli_camera.py [--set kodak24] [--iso 800] [--images kodim01 kodim05]
    python scripts/benchmarks/bench_cli_camera.py --set cbsd68 --iso 3200 --illuminant tungsten \
        --out logs/stress/tungsten --images 101085 101087 102061   # a harder capture's DNGs

``--illuminant``, ``--wb-error``, ``--bits`` and ``--exposure`` must be those the
``bench_camera.py`` run in ``--out`` used (they pick its cached DNGs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench_camera import conditions, iso_tag, load_images, raw_cache, result_dir

#: Report name in bench_camera's results -> extra demosaic-infer arguments.
METHODS = {"default": [], "quality": ["--model", "quality"]}


def main() -> int:
    from demosaic import metrics
    from demosaic.evaluation.capture import CameraProtocol, prepare_case
    from demosaic.io.images import read_exr

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default="kodak24")
    p.add_argument("--iso", type=float, default=800.0)
    p.add_argument("--images", nargs="+", default=["kodim01", "kodim05", "kodim19"])
    p.add_argument("--data-root", default=os.environ.get("DEMOSAIC_DATA", "../shared/data"))
    p.add_argument("--out", default="logs/bench_camera")
    p.add_argument("--tmp", default="logs/bench_cli_camera")
    p.add_argument("--illuminant", default="daylight")
    p.add_argument("--wb-error", type=float, default=0.0)
    p.add_argument("--bits", type=int, default=14)
    p.add_argument("--exposure", type=float, default=1.0)
    args = p.parse_args()

    protocol = CameraProtocol(family="xtrans", iso=args.iso, camera=None, seed=0,
                              conditions=conditions(args))
    cache = raw_cache(Path(args.out), args.set, args.iso)
    cases = {}
    for index, (name, rgb, *_) in enumerate(load_images(Path(args.data_root), args.set, "xtrans", None)):
        case = prepare_case(name, rgb, index, protocol, cache)  # index = position, as bench_camera
        if name in args.images:
            cases[name] = case
    Path(args.tmp).mkdir(parents=True, exist_ok=True)
    print("| method | image | demosaic-infer PSNR (dB) | bench_camera PSNR (dB) |\n|---|---|---:|---:|")
    for method, extra in METHODS.items():
        js = result_dir(Path(args.out), method, args.set, args.iso) / "results.json"
        ref = ({im["name"]: im["metrics"]["psnr"] for im in json.loads(js.read_text())["images"]}
               if js.is_file() else {})
        for name, case in cases.items():
            out = Path(args.tmp) / f"{method}_{name}_iso{iso_tag(args.iso)}.exr"
            subprocess.run(["demosaic-infer", str(case.dng), str(out), "--color-space", "camera",
                            "--highlights", "none", "--float", "--no-progress", "--overwrite", *extra],
                           check=True, capture_output=True)
            rgb, _ = read_exr(out)
            got = metrics.psnr(rgb, case.target, peak=1.0, border=12)
            known = f"{ref[name]:.3f}" if name in ref else "-"
            print(f"| {method} | {name} | {got:.3f} | {known} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
