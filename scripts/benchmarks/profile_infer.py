"""Whole-process profile of ``demosaic-infer`` on a 24 MP X-Trans (or Bayer) file, beside LibRaw's.

1. A 6000 x 4000 (24 MP) X-Trans DNG is written once (a synthetic scene through the camera
   simulation: Fujifilm X-T3 matrix and white balance, ISO 400, 14 bits).
2. **Whole processes, alternated**, ``--repeat`` times (median reported): ``demosaic-infer
   IN.dng OUT.exr`` (the packaged model, half EXR, as a user runs it) and LibRaw's whole
   process: a fresh Python that imports rawpy and tifffile, develops the file with
   Markesteijn 3-pass (``AHD``, as-shot white balance, linear 16-bit sRGB) and writes a
   16-bit TIFF. The ratio ours / LibRaw is the figure issue 15 targets (<= 0.8).
3. **Stages** of one ``demosaic-infer`` run: the import time of the command's module (a fresh
   interpreter), then :attr:`demosaic.inference.run.InferResult.stages` of an in-process
   ``infer_file`` (model load, raw read, white balance, clip mask, padding, network tiles,
   highlights, colour, orientation, EXR encode and write).

Usage::

    python scripts/benchmarks/profile_infer.py [--repeat 3] [--out logs/profile_infer] [--cfa bayer]
    python scripts/benchmarks/profile_infer.py --model xtrans.default --model xtrans.denoise  # alternated

``--model NAME`` (repeatable): time ``demosaic-infer ... --model NAME`` for each, alternated
with the others and LibRaw in every round (default: the command without ``--model``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _bench import timed, write_scene_raw

LIBRAW_WHOLE = """
import sys, rawpy, tifffile
with rawpy.imread(sys.argv[1]) as raw:
    rgb = raw.postprocess(rawpy.Params(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
        use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1), no_auto_bright=True,
        output_bps=16, adjust_maximum_thr=0.0))
tifffile.imwrite(sys.argv[2], rgb)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("logs/profile_infer"))
    parser.add_argument("--size", type=int, nargs=2, default=(4000, 6000), metavar=("H", "W"))
    parser.add_argument("--cfa", choices=("xtrans", "bayer"), default="xtrans",
                        help="bayer: an RGGB file from a Sony ILCE-7M3 matrix; LibRaw's AHD "
                             "(quality 3) is then real AHD")
    parser.add_argument("--model", action="append", default=None,
                        help="a --model of demosaic-infer to time (repeatable)")
    args = parser.parse_args()

    from demosaic import cfa
    from demosaic.allocator import keep_freed_memory
    from demosaic.devices import cpu_model
    from demosaic.inference.run import infer_file

    args.out.mkdir(parents=True, exist_ok=True)
    h, w = (v // 6 * 6 for v in args.size)
    pattern, body_name = (cfa.XTRANS, "X-T3") if args.cfa == "xtrans" else (cfa.BAYER_RGGB, "ILCE-7M3")
    dng = args.out / f"{args.cfa}_{w}x{h}.dng"
    if not dng.is_file():
        write_scene_raw(dng, h, w, pattern, body=body_name, model=f"profile {body_name}")
    models = args.model or [None]
    ours_cmds = {m: ["demosaic-infer", str(dng), str(args.out / "ours.exr"), "--overwrite",
                     "--no-progress", *(["--model", m] if m else [])] for m in models}
    libraw_cmd = [sys.executable, "-c", LIBRAW_WHOLE, str(dng), str(args.out / "libraw.tif")]
    times: dict[str | None, list[float]] = {m: [] for m in models}
    libraw = []
    for _ in range(args.repeat):  # alternated, so drifts of the machine hit all
        for m, cmd in ours_cmds.items():
            times[m].append(timed(cmd))
        libraw.append(timed(libraw_cmd))
    ours = times[models[0]]
    imports = [timed([sys.executable, "-c", "import demosaic.cli.infer"]) for _ in range(3)]
    keep_freed_memory()  # the stages as the command runs them
    res = infer_file(dng, args.out / "stages.exr", device="cpu", model=models[-1])
    report = {
        "file": str(dng), "megapixels": round(h * w / 1e6, 2),
        "machine": f"{cpu_model()}, {__import__('os').cpu_count()} cores",
        "ours_whole_s": ours, "libraw_whole_s": libraw,
        "ours_median_s": statistics.median(ours), "libraw_median_s": statistics.median(libraw),
        "ratio_ours_over_libraw": statistics.median(ours) / statistics.median(libraw),
        "models": {str(m or "shipped"): {"whole_s": t, "median_s": statistics.median(t),
                                         "ratio": statistics.median(t) / statistics.median(libraw)}
                   for m, t in times.items()},
        "stages_model": str(models[-1] or "shipped"),
        "import_s_median": statistics.median(imports),
        "stages_s": {k: round(v, 3) for k, v in res.stages.items()},
        "in_process_total_s": round(res.seconds, 3),
    }
    (args.out / "profile.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    rows = [f"| {k} | {v:.2f} |" for k, v in res.stages.items()]
    print("\n| stage (one in-process `infer_file`) | seconds |\n|---|---:|\n"
          f"| import `demosaic.cli.infer` (fresh interpreter, median of 3) | {report['import_s_median']:.2f} |\n"
          + "\n".join(rows))


if __name__ == "__main__":
    main()
