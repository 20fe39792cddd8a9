"""GPU inference benchmark (issue 15), prepared for a session that is lent a GPU.

For a 24 MP and a 100 MP X-Trans DNG (written once: a synthetic scene through the camera
simulation, Fujifilm X-T3, ISO 400, 14 bits), on ``--device`` (default ``cuda``):

1. **network**: :func:`demosaic.inference.tiling.tiled_demosaic` of the shipped model on the
   canonical mosaic, fp32 and float16 autocast (``--amp``), best of ``--repeat`` after a warm-up,
   with the device synchronised: megapixels per second; and fp32 with ``--batches`` windows of
   one shape per forward pass (``tiled_demosaic(batch=...)``);
2. **whole command**: ``demosaic-infer IN.dng OUT.exr --device DEVICE [--amp]`` as a user runs
   it (a fresh process: imports, model load, read, develop, write), median of ``--repeat``;
3. **memory and stages**: peak device memory (``torch.cuda.max_memory_allocated``) and the
   stage timings (:attr:`~demosaic.inference.run.InferResult.stages`: what the host does around
   the device's network) of one in-process ``infer_file`` per size; ``--stages-only`` runs
   just this, on any device (the host-side stages are the same code on a CPU);
4. **quality of half precision**: PSNR of the ``--amp`` output against the fp32 output
   (whole 24 MP frame), so the speed/quality trade is visible.

Targets of issue 15: network >= 300 MP/s and whole command >= 30 MP/s on the 100 MP frame.
Writes ``OUT/gpu_infer.json`` and prints a Markdown table. ``--device cpu --sizes 2`` is a
smoke test of the script on a machine without a GPU.

Usage::

    python scripts/benchmarks/bench_gpu_infer.py --out OUT_DIR [--device cuda] [--repeat 3] [--sizes 24 100]
    python scripts/benchmarks/bench_gpu_infer.py --out OUT_DIR --device cpu --sizes 100 --stages-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _bench import write_scene_raw


def make_dng(path: Path, megapixels: float) -> Path:
    """A ``megapixels`` X-Trans DNG (3:2, multiples of 6), written once."""
    if path.is_file():
        return path
    h = int((megapixels * 1e6 / 1.5) ** 0.5) // 6 * 6
    w = int(h * 1.5) // 6 * 6
    return write_scene_raw(path, h, w, "xtrans", body="X-T3", model="bench X-T3")


def canonical_mosaic(dng: Path) -> Any:
    """The DNG's mosaic in the canonical phase, as a torch tensor (read once per size)."""
    import torch

    from demosaic.io.raw import read_raw

    return torch.from_numpy(read_raw(dng).canonical_cfa(6).copy())


def network_rate(mosaic: Any, device: str, amp: bool, repeat: int, batch: int = 1) -> float:
    """Megapixels per second of the tiled shipped network alone on ``mosaic`` (device
    synchronised), ``batch`` windows of one shape per forward pass."""
    import torch

    from demosaic.models.zoo import resolve_method
    from demosaic.inference.tiling import tiled_demosaic

    model = resolve_method(device=device).demosaicker
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    tiled_demosaic(model, mosaic[:1200, :1800], device=device, amp=amp, batch=batch)  # warm-up
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        tiled_demosaic(model, mosaic, device=device, amp=amp, batch=batch)
        sync()
        times.append(time.perf_counter() - t0)
    return mosaic.numel() / 1e6 / min(times)


def whole_command(dng: Path, out: Path, device: str, amp: bool, repeat: int) -> float:
    """Median seconds of ``demosaic-infer`` as a user runs it."""
    cmd = ["demosaic-infer", str(dng), str(out), "--device", device, "--no-progress"]
    cmd += ["--amp"] if amp else []
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def memory_and_output(dng: Path, out: Path, device: str, amp: bool, float32: bool = True
                      ) -> tuple[float, Any, dict[str, float]]:
    """Peak device memory (GiB) of one in-process infer_file, its image and its stages
    (seconds: what runs on the host around the device's network, e.g.). ``float32``: a float
    EXR (to compare precisions), else the command's default half EXR."""
    import torch

    from demosaic.inference.run import infer_file
    from demosaic.io.images import read_exr

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    res = infer_file(dng, out, device=device, amp=amp, float32=float32)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return peak, read_exr(out)[0], {k: round(v, 3) for k, v in res.stages.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=float, nargs="+", default=[24.0, 100.0])
    parser.add_argument("--batches", type=int, nargs="*", default=[4],
                        help="also time the network (fp32) with this many windows per pass")
    parser.add_argument("--stages-only", action="store_true",
                        help="only the stages of one in-process infer_file per size, half EXR as "
                             "the command writes (the host-side stages around the network, on "
                             "any device)")
    args = parser.parse_args()
    from demosaic.allocator import keep_freed_memory
    from demosaic.metrics import psnr

    keep_freed_memory()  # as demosaic-infer runs
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for mp in args.sizes:
        dng = make_dng(args.out / f"xtrans_{mp:g}mp.dng", mp)
        if args.stages_only:
            _, _, stages = memory_and_output(dng, args.out / f"stages_{mp:g}.exr", args.device,
                                             False, float32=False)
            print(json.dumps({"megapixels": mp, "device": args.device, "stages_s": stages}),
                  flush=True)
            continue
        mosaic = canonical_mosaic(dng)
        row: dict[str, Any] = {"megapixels": mp}
        outputs = {}
        for amp in (False, True):
            tag = "amp" if amp else "fp32"
            row[f"network_mp_s_{tag}"] = network_rate(mosaic, args.device, amp, args.repeat)
            seconds = whole_command(dng, args.out / f"cmd_{mp:g}_{tag}.exr", args.device, amp,
                                    args.repeat)
            row[f"command_s_{tag}"] = seconds
            row[f"command_mp_s_{tag}"] = mp / seconds
            row[f"peak_gib_{tag}"], outputs[tag], row[f"stages_s_{tag}"] = memory_and_output(
                dng, args.out / f"mem_{mp:g}_{tag}.exr", args.device, amp)
        row["psnr_amp_vs_fp32_db"] = float(psnr(outputs["amp"], outputs["fp32"], border=0))
        for b in args.batches:
            row[f"network_mp_s_fp32_batch{b}"] = network_rate(mosaic, args.device, False, args.repeat, b)
        del mosaic
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.stages_only:
        return 0
    (args.out / "gpu_infer.json").write_text(json.dumps({"device": args.device, "rows": rows},
                                                        indent=1))
    print("\n| MP | network MP/s fp32 / amp | command MP/s fp32 / amp | peak GiB fp32 / amp | "
          "amp vs fp32 PSNR (dB) |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['megapixels']:g} | {r['network_mp_s_fp32']:.1f} / {r['network_mp_s_amp']:.1f} | "
              f"{r['command_mp_s_fp32']:.1f} / {r['command_mp_s_amp']:.1f} | "
              f"{r['peak_gib_fp32']:.2f} / {r['peak_gib_amp']:.2f} | {r['psnr_amp_vs_fp32_db']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
