#!/usr/bin/env python
"""Inference benchmark: megapixels/s of the default model vs LibRaw's Markesteijn 3-pass,
tiled-vs-whole exactness, and peak memory of a 40-megapixel tiled run.

Usage (results go to stdout as JSON and a Markdown table for docs/BENCHMARKS.md)::

    python scripts/benchmarks/bench_infer.py                       # all parts, torch/OpenMP threads = cores
    python scripts/benchmarks/bench_infer.py --threads 1 --skip-big
    python scripts/benchmarks/bench_infer.py --checkpoint best.pt --size 2064 3096

Parts:

1. **speed**: a synthetic X-Trans mosaic (``--size``, canonical phase) is written as a DNG
   with :func:`demosaic.io.dng.write_dng`. Ours: ``read_raw`` + ``tiled_demosaic`` (default tile,
   automatic exact overlap) of the model as ``demosaic-infer`` runs it (``channels_last`` copy,
   :func:`demosaic.allocator.keep_freed_memory`), the model's own time reported separately. LibRaw: ``rawpy.imread``
   + ``postprocess`` with ``demosaic_algorithm=AHD`` (LibRaw runs Markesteijn 3-pass for any
   quality >= 3 on X-Trans) and with ``LINEAR`` (bilinear) as the pipeline-overhead floor. Both
   read the same file in the same process; the best of ``--repeat`` runs counts.
2. **exactness**: max |tiled - whole image| for the model on a ``--exact-size`` mosaic with
   small tiles, at the automatic overlap and at a few smaller ones.
3. **big**: a fresh subprocess runs :func:`demosaic.inference.run.infer_file` on a
   ``--big`` (default 5152 x 7728 = 39.8 MP) X-Trans DNG to a half EXR and reports its peak
   resident memory (``VmHWM``), the memory right after importing torch, and the time.

The model: the checkpoint given, else the packaged default (``demosaic/assets/default.pt``),
else a **randomly initialised** default-config U-Net (speed does not depend on weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import machine


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover
        return 0.0


def _peak_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this program's own address
    space. ``getrusage().ru_maxrss`` is not used there because Linux carries it across
    ``execve``: a child started from a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _default_config_model() -> Any:
    """A randomly initialised model of the default config, ``configs/model/xtrans_unet.yaml``."""
    import torch
    from omegaconf import OmegaConf

    from demosaic.models import build_model

    torch.manual_seed(0)
    cfg = OmegaConf.load(Path(__file__).resolve().parents[2] / "configs" / "model" / "xtrans_unet.yaml")
    return build_model(OmegaConf.to_container(cfg)).eval()


def _load_model(checkpoint: str | None) -> tuple[Any, str]:
    from demosaic.models.zoo import DEFAULT_CHECKPOINT
    from demosaic.models.zoo import resolve_method

    if checkpoint:
        return resolve_method(checkpoint=checkpoint).demosaicker, f"checkpoint {checkpoint}"
    if DEFAULT_CHECKPOINT.is_file():
        return resolve_method().demosaicker, f"packaged default {DEFAULT_CHECKPOINT.name}"
    return (_default_config_model(),
            "randomly initialised configs/model/xtrans_unet.yaml (no trained default model exists yet)")


def _write_mosaic_dng(path: Path, height: int, width: int, seed: int = 0) -> Path:
    """A synthetic X-Trans DNG, canonical phase; the scene is tiled from a 1024 px render.

    A plain mosaic (no camera simulation: no noise, no colour matrix), on purpose and not
    :func:`demosaic.sim.raw_files.write_camera_raw`: a speed and memory test needs a fixed
    file, and the recorded numbers of docs/BENCHMARKS.md were measured on this one.
    """
    import numpy as np

    from demosaic import cfa as C
    from demosaic.sim.scenes import synthetic_scene
    from demosaic.io.dng import write_dng

    block = synthetic_scene(1024, 1024, seed) * np.float32(0.7)
    reps = (1, -(-height // 1024), -(-width // 1024))
    scene = np.tile(block, reps)[:, :height, :width]
    mosaic = C.mosaic(scene, C.XTRANS)[0]
    del scene
    return write_dng(path, mosaic, C.XTRANS, black_level=1024, white_level=16383,
                     make="demosaic", model="bench")


def bench_speed(model: Any, size: tuple[int, int], repeat: int, folder: Path) -> dict[str, Any]:
    import numpy as np
    import rawpy
    import torch

    from demosaic.inference.tiling import DEFAULT_TILE, auto_overlap, for_inference, tiled_demosaic
    from demosaic.io.libraw import libraw_params
    from demosaic.io.raw import read_raw

    h, w = size
    dng = _write_mosaic_dng(folder / "speed.dng", h, w)
    mp = h * w / 1e6
    overlap = auto_overlap(model)
    model = for_inference(model, torch.device("cpu"))  # what demosaic-infer runs
    ours, ours_net, libraw_m3, libraw_lin = [], [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw = read_raw(dng)
        t1 = time.perf_counter()
        rgb = tiled_demosaic(model, torch.from_numpy(raw.cfa.copy()), device="cpu")
        t2 = time.perf_counter()
        ours.append(t2 - t0)
        ours_net.append(t2 - t1)
        del rgb, raw
        for algo, store in (("AHD", libraw_m3), ("LINEAR", libraw_lin)):
            t0 = time.perf_counter()
            with rawpy.imread(str(dng)) as r:
                out = r.postprocess(params=libraw_params(algo))
            store.append(time.perf_counter() - t0)
            assert out.shape[:2] == (h, w), out.shape
            del out
    best = {k: min(v) for k, v in (("ours", ours), ("ours_net", ours_net),
                                   ("m3", libraw_m3), ("lin", libraw_lin))}
    return {
        "size": [h, w], "megapixels": round(mp, 2), "tile": DEFAULT_TILE, "overlap": overlap,
        "ours_s": round(best["ours"], 3), "ours_mp_s": round(mp / best["ours"], 3),
        "ours_model_only_s": round(best["ours_net"], 3),
        "ours_model_only_mp_s": round(mp / best["ours_net"], 3),
        "libraw_markesteijn3_s": round(best["m3"], 3),
        "libraw_markesteijn3_mp_s": round(mp / best["m3"], 3),
        "libraw_linear_s": round(best["lin"], 3),
        "libraw_linear_mp_s": round(mp / best["lin"], 3),
        "ratio_ours_vs_markesteijn3": round(best["m3"] / best["ours"], 4),
        "runs": {"ours": [round(t, 3) for t in ours], "markesteijn3": [round(t, 3) for t in libraw_m3]},
        "numpy": np.__version__,
    }


def bench_exactness(model: Any, size: int, tile: int) -> dict[str, Any]:
    import torch

    from demosaic.inference.tiling import alignment_multiple, auto_overlap, receptive_field, tiled_demosaic

    m = alignment_multiple(model)
    size = size // m * m
    g = torch.Generator().manual_seed(0)
    cfa = torch.rand(1, 1, size, size, generator=g)
    with torch.inference_mode():
        whole = model.demosaic(cfa)[0]
    auto = auto_overlap(model)
    result: dict[str, Any] = {"size": size, "tile": tile, "receptive_field_px": receptive_field(model),
                              "auto_overlap": auto, "max_abs_diff": {}}
    scale = whole.abs().max().item()
    for ov in sorted({auto, 96, 48, 24}, reverse=True):
        t = max(tile, 3 * ov)
        tiled = tiled_demosaic(model, cfa, tile=t, overlap=ov, device="cpu")
        result["max_abs_diff"][f"overlap {ov} (tile {t // m * m})"] = float(
            f"{(tiled - whole).abs().max().item():.3g}")
    result["output_scale"] = round(scale, 3)
    return result


def bench_big(size: tuple[int, int], checkpoint: str | None, folder: Path, threads: int | None
              ) -> dict[str, Any]:
    h, w = size
    dng = _write_mosaic_dng(folder / "big.dng", h, w)
    ckpt = checkpoint
    if ckpt is None:
        from demosaic.models.zoo import DEFAULT_CHECKPOINT

        if DEFAULT_CHECKPOINT.is_file():
            ckpt = str(DEFAULT_CHECKPOINT)
        else:  # a random default-config unet, saved so the child loads it like a user would
            from demosaic.models.checkpoint import make_checkpoint, save_checkpoint

            model = _default_config_model()
            ckpt = str(save_checkpoint(make_checkpoint(model, "unet", model.spec["kwargs"],
                                                       cfa="xtrans", run_name="random-init"),
                                       folder / "random.pt"))
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = folder / "big.exr"
    proc = subprocess.run([sys.executable, __file__, "--child", str(dng), str(out), ckpt],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"40 MP child failed:\n{proc.stderr[-3000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    child.update({"size": [h, w], "megapixels": round(h * w / 1e6, 2),
                  "exr_mb": round(out.stat().st_size / 2**20, 1)})
    return child


def _child(dng: str, out: str, ckpt: str) -> None:
    """Runs in a fresh process: full infer_file, then prints memory figures as JSON."""
    import torch  # noqa: F401 - measured baseline includes torch

    from demosaic.allocator import keep_freed_memory
    from demosaic.inference.run import infer_file

    keep_freed_memory()  # as demosaic-infer does
    base = _rss_mb()
    t0 = time.perf_counter()
    res = infer_file(dng, out, checkpoint=ckpt, device="cpu")
    elapsed = time.perf_counter() - t0
    print(json.dumps({"peak_rss_mb": round(_peak_mb(), 1), "rss_after_imports_mb": round(base, 1),
                      "seconds": round(elapsed, 1), "mp_s": round(res.megapixels / elapsed, 3),
                      "output_size": list(res.size)}))


def markdown(res: dict[str, Any]) -> str:
    s = res.get("speed")
    lines = []
    if s:
        lines += [
            f"| {s['size'][1]}x{s['size'][0]} ({s['megapixels']} MP) | MP/s | seconds |",
            "|---|---:|---:|",
            f"| demosaic {res['model_kind']} (read + tiled model) | {s['ours_mp_s']} | {s['ours_s']} |",
            f"| demosaic model only (tile {s['tile']}, overlap {s['overlap']}) | "
            f"{s['ours_model_only_mp_s']} | {s['ours_model_only_s']} |",
            f"| LibRaw Markesteijn 3-pass (rawpy postprocess) | {s['libraw_markesteijn3_mp_s']} | "
            f"{s['libraw_markesteijn3_s']} |",
            f"| LibRaw LINEAR (pipeline floor) | {s['libraw_linear_mp_s']} | {s['libraw_linear_s']} |",
            "", f"Speed ratio ours / Markesteijn 3-pass: **{s['ratio_ours_vs_markesteijn3']}x**", ""]
    b = res.get("big")
    if b:
        lines += [f"{b['megapixels']} MP ({b['size'][1]}x{b['size'][0]}) tiled `infer_file` to half "
                  f"EXR: peak RSS "
                  f"**{b['peak_rss_mb']} MiB** (after imports {b['rss_after_imports_mb']} MiB), "
                  f"{b['seconds']} s ({b['mp_s']} MP/s)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--size", type=int, nargs=2, default=(2064, 3096), metavar=("H", "W"))
    p.add_argument("--big", type=int, nargs=2, default=(5152, 7728), metavar=("H", "W"))
    p.add_argument("--exact-size", type=int, default=1032)
    p.add_argument("--exact-tile", type=int, default=384)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for torch and LibRaw")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-exact", action="store_true")
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--json-out", default=None, help="also write the results to this JSON file")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch/rawpy load OpenMP
    if args.child:
        _child(*args.child)
        return 0
    import logging

    from demosaic.allocator import keep_freed_memory

    logging.basicConfig(level=logging.WARNING)
    keep_freed_memory()  # as demosaic-infer runs
    model, kind = _load_model(args.checkpoint)
    res: dict[str, Any] = {"command": "python scripts/benchmarks/bench_infer.py " + " ".join(argv or sys.argv[1:]),
                           "machine": machine(), "model_kind": kind,
                           "model_parameters": sum(p.numel() for p in model.parameters())}
    with tempfile.TemporaryDirectory(prefix="bench_infer_") as tmp:
        folder = Path(tmp)
        if not args.skip_speed:
            res["speed"] = bench_speed(model, tuple(args.size), args.repeat, folder)
            print(json.dumps({"speed": res["speed"]}), file=sys.stderr)
        if not args.skip_exact:
            res["exactness"] = bench_exactness(model, args.exact_size, args.exact_tile)
            print(json.dumps({"exactness": res["exactness"]}), file=sys.stderr)
        if not args.skip_big:
            res["big"] = bench_big(tuple(args.big), args.checkpoint, folder, args.threads)
    res["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res, indent=2))
    print(markdown(res))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
