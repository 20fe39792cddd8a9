#!/usr/bin/env python
"""Cost of the clip mask (``inference.highlights.clip_mask``) on 24 MP X-Trans frames.

Three synthetic 6000 x 3996 frames, normalised raw (white = 1): ``sparse`` (a grey picture
with 0.1 % of its pixels saturated, scattered), ``flat`` (its top 30 % clipped exactly at
white, as most cameras write it) and ``noisy`` (the same top 30 % clipped with ISO-3200 noise
added after the clip, the case the noisy-plateau rule is for). Median of ``--repeat`` calls,
with the plain threshold mask beside it::

    python scripts/benchmarks/bench_clip_mask.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _bench import machine_line


def frames(rng: np.random.Generator) -> dict[str, np.ndarray]:
    from demosaic.sim.camera import NoiseModel

    h, w = 3996, 6000
    grey = np.full((h, w), 0.4, np.float32)
    sparse = grey.copy()
    sparse.ravel()[rng.choice(h * w, h * w // 1000, replace=False)] = 1.0
    flat = grey.copy()
    flat[: int(0.3 * h)] = 1.0
    noisy = np.minimum(NoiseModel().sample(flat, 3200.0, rng), 1.0).astype(np.float32)
    return {"sparse": sparse, "flat": flat, "noisy": noisy}


def main() -> None:
    from demosaic.cfa import XTRANS
    from demosaic.inference.highlights import clip_mask, clip_threshold, raw_clip_mask

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine_line()}")
    print("| frame | clipped px (threshold) | added by the plateau rule | threshold mask, s | clip_mask, s |")
    print("|---|---:|---:|---:|---:|")
    for name, a in frames(np.random.default_rng(0)).items():
        plain, full = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            base = raw_clip_mask(a, clip_threshold(a))
            t1 = time.perf_counter()
            mask = clip_mask(a, XTRANS.array)
            t2 = time.perf_counter()
            plain.append(t1 - t0)
            full.append(t2 - t1)
        print(f"| {name} | {int(base.sum()):,} | {int(mask.sum() - base.sum()):,} | "
              f"{np.median(plain):.3f} | {np.median(full):.3f} |")


if __name__ == "__main__":
    main()
