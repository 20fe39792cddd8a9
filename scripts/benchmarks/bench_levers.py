"""The CPU levers of issue 15, measured one by one on a 24 MP frame (``docs/BENCHMARKS.md``,
"Whole process after the speed work", "Levers, one by one").

1. **Network runtime**, the shipped X-Trans model tiled over a random 4008 x 6000 mosaic
   (``tiled_demosaic``, default 2048 px tiles, exact overlap), alternated ``--repeat`` times:
   PyTorch eager with the default memory layout, PyTorch with ``channels_last`` weights
   (:func:`demosaic.inference.tiling.for_inference`, what ``demosaic-infer`` runs), and ONNX
   Runtime on the model exported by ``demosaic-export`` (needs the ``export`` extra). The
   max abs difference of each from the default layout is reported.
2. **Tile size** with ``channels_last``: windows of 1536, 2040 (the default 2048 rounded to
   the model's 24 px grid), 2304 and 3048 px: seconds and the computed area over the frame.
3. **EXR encoding**: a 24 MP half-float image (smooth scene plus noise, as a photograph)
   written with each lossless compression of ``write_exr``: seconds and file size.
4. **Allocator**: the tile sweep of 2. in fresh processes, glibc's default allocator against
   :func:`demosaic.allocator.keep_freed_memory` (what ``demosaic-infer`` sets), alternated
   ``--repeat`` times; median seconds and minor page faults per tile size and mode (the tile
   sizes run in this order in one process, so the first pays the process's first touches).

Sections 1-3 run with the allocator as ``demosaic-infer`` sets it.

Usage::

    python scripts/benchmarks/bench_levers.py [--repeat 2] [--out logs/bench_levers]
                                              [--only network tiles exr allocator]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _bench import machine


class _Runner(torch.nn.Module):
    """Another way to run ``net``, shaped like it for ``tiled_demosaic`` (pattern, size
    multiple and ``net``'s receptive field, so tiling stays exact)."""

    def __init__(self, net: torch.nn.Module, run: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        from demosaic.inference.tiling import receptive_field

        self.pattern, self.size_multiple = net.pattern, net.size_multiple
        self._tiling_receptive_field = receptive_field(net)
        self.run = run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


def _frame() -> torch.Tensor:
    """The random 24 MP mosaic every timing here uses."""
    return torch.rand(4008, 6000, generator=torch.Generator().manual_seed(0)) * 0.5


def _network(repeat: int) -> dict[str, dict[str, float]]:
    from demosaic.models.zoo import DEFAULT_CHECKPOINT
    from demosaic.models.zoo import from_checkpoint
    from demosaic.inference.tiling import for_inference, tiled_demosaic

    net = from_checkpoint(DEFAULT_CHECKPOINT).demosaicker
    cl = for_inference(net, torch.device("cpu"))
    runners = {"torch, default layout": net, "torch, channels_last (shipped path)": cl}
    try:
        from demosaic.export import export_model
        import onnxruntime as ort

        onnx_path = Path(tempfile.mkdtemp()) / "default.onnx"
        export_model(DEFAULT_CHECKPOINT, "onnx", onnx_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        runners[f"onnxruntime {ort.__version__}"] = _Runner(net, lambda x: torch.from_numpy(
            sess.run(["rgb"], {"cfa": x.contiguous().numpy()})[0]))
    except Exception as exc:  # the export extra is optional
        print(f"onnxruntime skipped: {exc}")

    def bf16(x: torch.Tensor) -> torch.Tensor:  # an option measured, not shipped
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl(x).float()

    runners["torch, channels_last, bf16 autocast (not shipped)"] = _Runner(net, bf16)
    x = _frame()
    times: dict[str, list[float]] = {k: [] for k in runners}
    rms: dict[str, float] = {}
    diffs: dict[str, float] = {}
    ref = None
    for _ in range(repeat):
        for name, module in runners.items():
            t0 = time.perf_counter()
            y = tiled_demosaic(module, x, device="cpu")
            times[name].append(time.perf_counter() - t0)
            ref = y if ref is None else ref
            diffs[name] = float((y - ref).abs().max())
            rms[name] = float((y - ref).square().mean().sqrt())
    return {k: {"median_s": statistics.median(v), "runs_s": v, "max_abs_diff": diffs[k],
                "rms_diff": rms[k]} for k, v in times.items()}


def _tiles() -> dict[str, dict[str, float]]:
    from demosaic.models.zoo import DEFAULT_CHECKPOINT
    from demosaic.models.zoo import from_checkpoint
    from demosaic.inference.tiling import auto_overlap, for_inference, plan_tiles, tiled_demosaic

    net = for_inference(from_checkpoint(DEFAULT_CHECKPOINT).demosaicker, torch.device("cpu"))
    x = _frame()
    out = {}
    for tile in (1536, 2040, 2304, 3048):
        plan = plan_tiles(4008, 6000, tile, auto_overlap(net), 24)
        area = sum((r.win_end - r.win_start) * (c.win_end - c.win_start) for r, c in plan)
        f0, t0 = _minor_faults(), time.perf_counter()
        tiled_demosaic(net, x, tile=tile, device="cpu")
        out[str(tile)] = {"seconds": time.perf_counter() - t0, "minor_faults": _minor_faults() - f0,
                          "windows": len(plan), "area_over_frame": area / (4008 * 6000)}
    return out


def _minor_faults() -> int:
    """Minor page faults of this process so far (each first touch of a page the kernel must
    map); -1 where ``resource`` is missing (Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def _exr() -> dict[str, dict[str, float]]:
    from demosaic.io.images import EXR_COMPRESSIONS, write_exr

    h, w = 4000, 6000
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.4 * np.sin(x / 37.0) * np.cos(y / 53.0)
    noise = np.random.default_rng(0).normal(0, 0.01, (3, h, w)).astype(np.float32)
    img = (np.stack([base * 0.8, base, base * 0.6]) + noise).astype(np.float16)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for comp in EXR_COMPRESSIONS:
            path = Path(tmp) / f"{comp}.exr"
            t0 = time.perf_counter()
            write_exr(path, img, compression=comp)
            out[comp] = {"seconds": time.perf_counter() - t0, "mb": path.stat().st_size / 1e6}
    return out


def _allocator(repeat: int) -> dict[str, dict[str, float]]:
    """Section 4: the tile sweep in fresh processes, per allocator mode, alternated."""
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"default": [], "tuned": []}
    for _ in range(repeat):
        for mode in runs:
            proc = subprocess.run([sys.executable, __file__, "--allocator-child", mode],
                                  check=True, capture_output=True, text=True)
            runs[mode].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {mode: {tile: {key: statistics.median(r[tile][key] for r in rs)
                          for key in ("seconds", "minor_faults")} for tile in rs[0]}
            for mode, rs in runs.items()}


SECTIONS = ("network", "tiles", "exr", "allocator")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("logs/bench_levers"))
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--allocator-child", choices=("default", "tuned"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    from demosaic.allocator import keep_freed_memory

    if args.allocator_child:  # one process of section 4
        if args.allocator_child == "tuned":
            keep_freed_memory()
        print(json.dumps(_tiles()))
        return 0
    keep_freed_memory()  # as demosaic-infer runs
    sections = {"network": ("network_24mp", lambda: _network(args.repeat)),
                "tiles": ("tile_size_24mp", _tiles), "exr": ("exr_24mp_half", _exr),
                "allocator": ("allocator_tile_sweep_s", lambda: _allocator(args.repeat))}
    report: dict[str, Any] = {"machine": machine(), "sections": args.only}
    for name in args.only:
        key, run = sections[name]
        report[key] = run()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "levers.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
