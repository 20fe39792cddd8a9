"""Raw-noise estimator on camera-simulated photographs: estimated / true std at mid-grey.

For the first ``--count`` CBSD68 images (``../shared/data/cbsd68/*.png`` by default) it
simulates a daylight capture (X-Trans, or Bayer with ``--bayer``; no white-balance error,
14 bit; rng seeded by the image index) at each ISO, runs the chosen estimator and prints the
ratio of the estimated to the true standard deviation at mid-grey (green, and the mean over
the 3 channels; the definition of ``tests/noise/test_estimate.py``), per image and summarised,
with the time per call. ``--clean`` also runs it on the noise-free mosaic and prints its
variance at green mid-grey over the ISO-800 true variance (texture/grain of the source);
``--whiteness`` (X-Trans) adds how white that grain is: on the green tiles the current
estimator keeps, the 2x2 green checker's reading over the current filter's, and the ratio
``sqrt(1 + grain * min(1, checker/current))`` an estimator that relies on the noise being
white (and the grain not) could at best reach at ISO 800. ``--whiteness`` reads the
estimator's private tile selection (a research diagnostic, unlike the other scripts).

Usage (one thread; the CPU is shared)::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python scripts/research/noise_estimate_photos.py \
        --method current --isos 800 3200 [--bayer] [--clean [--whiteness]] [--count 20]
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import numpy as np

from demosaic.cfa import BAYER_RGGB, XTRANS
from demosaic.io.images import read_image_linear
import demosaic.noise.estimate as E
from demosaic.noise.profile import NoiseProfile
from demosaic.sim.camera import CameraSimConfig
from demosaic.sim.raw_files import capture_scene

LAYOUTS = {"xtrans": XTRANS.shifted(1, 2), "bayer": BAYER_RGGB.shifted(1, 0)}


def _estimator(method: str):
    """``current`` (:func:`demosaic.noise.estimate.estimate_noise`) or ``module:function``
    of any estimator with its signature (``new`` is an alias to fill in once one exists)."""
    spec = {"current": "demosaic.noise.estimate:estimate_noise"}.get(method, method)
    if ":" not in spec:
        raise SystemExit(f"--method {method}: use 'current' or 'module:function'")
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def _kept_green_tiles(cfa: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(tiles (n, T, T), mean_variance)``: the centre tiles the current estimator keeps
    for green in its last pass, and their mean ``r^2 / g`` (its green filter's reading)."""
    lay = np.asarray(grid, np.int64)
    period, key = lay.shape[0], np.ascontiguousarray(lay).tobytes()
    tile = E._TILE[period]
    lo, hi = E._clip_levels(cfa, 1.0)
    tiles, centre = E._tile_grid(cfa, tile, E.MAX_PIXELS)
    groups = E._groups(E._tile_stats(tiles, E._filters(key, period), period, lo, hi), centre)
    law = E._noise_law(key, period, tile)
    prof, _ = E._fit_groups(groups, law, lo, hi)
    model = np.array([prof.scale, prof.offset])
    z = E._flatness(groups, model)[1]
    ok = np.isfinite(z) & E._usable(groups, 1, model, lo, hi)
    cut = max(np.quantile(z[ok], max(E._KEEP, min(1.0, E._MIN_KEEP / ok.sum()))),
              E._null_quantile(law[0], tuple(float(v) for v in groups.count))[1])
    keep = ok & (z <= cut)
    kept = tiles[np.flatnonzero(centre), 1:tiles.shape[1] - 1].reshape(-1, tile, tile)[keep]
    return kept.astype(np.float64), float(groups.var[1][keep].mean())


def _checker_over_current(cfa: np.ndarray, grid: np.ndarray) -> float:
    """X-Trans only: on the kept green tiles, the variance of the 2x2 green blocks' checker
    ``(a - b - c + d) / 2`` (the highest frequency the mosaic resolves; noise gain 1) over
    the current filter's ``r^2 / g``. White data: 1; texture falling with frequency: < 1."""
    kept, current = _kept_green_tiles(cfa, grid)
    t, p = kept.shape[-1], grid.shape[0]
    g = np.tile(np.asarray(grid), (t // p, t // p)) == 1
    ys, xs = np.nonzero(g[:-1, :-1] & g[1:, :-1] & g[:-1, 1:] & g[1:, 1:])
    ck = (kept[:, ys, xs] - kept[:, ys + 1, xs] - kept[:, ys, xs + 1] + kept[:, ys + 1, xs + 1])
    return float((ck ** 2).mean() / 4.0 / max(current, 1e-30))


def _true_var(cap, x: float) -> float:
    a, b = cap.noise
    q = 1.0 / (cap.white - cap.black)
    return a * x + b * b + q * q / 12.0


def _ratios(profile: NoiseProfile, cap) -> np.ndarray:
    """(3,) estimated / true std at each channel's mid-grey."""
    return np.array([profile.std(0.126 * float(cap.body.neutral[c]), c)
                     / np.sqrt(_true_var(cap, 0.126 * float(cap.body.neutral[c])))
                     for c in range(3)])


def _clean_mosaic(cap, grid: np.ndarray) -> np.ndarray:
    h, w = cap.raw.shape
    p = grid.shape[0]
    tiled = np.tile(grid, (-(-h // p), -(-w // p)))[:h, :w]
    clean = cap.target / cap.multipliers[:, None, None]
    return np.take_along_axis(clean, tiled[None], axis=0)[0].astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="../shared/data/cbsd68", help="folder of PNG photographs")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--isos", type=float, nargs="+", default=[800, 3200])
    ap.add_argument("--bayer", action="store_true")
    ap.add_argument("--clean", action="store_true")
    ap.add_argument("--method", default="current")
    ap.add_argument("--whiteness", action="store_true",
                    help="with --clean (X-Trans): the clean mosaic's grain read by the 2x2 green "
                         "checker over the current filter, and the ratio floor it implies")
    ap.add_argument("--quiet", action="store_true", help="summary only")
    args = ap.parse_args()
    est = _estimator(args.method)
    fam = "bayer" if args.bayer else "xtrans"
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[14])
    photos = sorted(Path(args.root).glob("*.png"))[: args.count]
    res: dict[float, list[np.ndarray]] = {iso: [] for iso in args.isos}
    clean_rel, floors, times = [], [], []
    for i, photo in enumerate(photos):
        rgb = read_image_linear(photo)
        line = [f"{i:2d} {photo.stem:>8s}"]
        for iso in args.isos:
            grid, cap = capture_scene(rgb, LAYOUTS[fam], iso=iso, cfg=cfg,
                                      rng=np.random.default_rng(i))
            cfa = (cap.raw.astype(np.float32) - cap.black) / np.float32(cap.white - cap.black)
            t0 = time.perf_counter()
            prof = est(cfa, grid)
            times.append(time.perf_counter() - t0)
            r = _ratios(prof, cap)
            res[iso].append(r)
            line.append(f"ISO{iso:.0f} G {r[1]:.3f} all {r.mean():.3f}")
            if args.clean and iso == args.isos[0]:
                grid8, cap8 = capture_scene(rgb, LAYOUTS[fam], iso=800, cfg=cfg,
                                            rng=np.random.default_rng(i))
                cp = est(_clean_mosaic(cap8, grid8), grid8)
                x = 0.126 * float(cap8.body.neutral[1])
                rel = cp.std(x, 1) ** 2 / _true_var(cap8, x)
                clean_rel.append(rel)
                line.append(f"clean var/ISO800 {rel:.2f}")
                if args.whiteness and grid8.shape[0] == 6:
                    ratio = _checker_over_current(_clean_mosaic(cap8, grid8), grid8)
                    floors.append(np.sqrt(1.0 + rel * min(1.0, ratio)))
                    line.append(f"checker/current {ratio:.2f} floor {floors[-1]:.3f}")
        if not args.quiet:
            print("  ".join(line), flush=True)
    print(f"method={args.method} family={fam} n={len(photos)} "
          f"time/call mean {np.mean(times):.3f} s")
    for iso in args.isos:
        r = np.array(res[iso])
        print(f"ISO {iso:5.0f}  green mean {r[:, 1].mean():.3f} median {np.median(r[:, 1]):.3f}"
              f" max {r[:, 1].max():.3f} min {r[:, 1].min():.3f} | 3-ch mean "
              f"{r.mean():.3f} median {np.median(r.mean(1)):.3f} max {r.mean(1).max():.3f}")
    if clean_rel:
        c = np.array(clean_rel)
        print(f"clean mosaic var / ISO800 var: mean {c.mean():.2f} median {np.median(c):.2f} "
              f"max {c.max():.2f}")
    if floors:
        f = np.array(floors)
        print(f"ISO 800 green ratio floor of a whiteness test (grain at the checker's frequency):"
              f" mean {f.mean():.3f} median {np.median(f):.3f} max {f.max():.3f}")


if __name__ == "__main__":
    main()
