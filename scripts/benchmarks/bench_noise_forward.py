"""What the noise input costs in one window: the network's forward pass on a ``--size`` px
X-Trans window (the default tile is 3048 px), the default model against the noise-aware one,
and the noise map alone (``demosaic.noise.noise_map.packed_noise_map``).

Usage::

    python scripts/benchmarks/bench_noise_forward.py [--size 3048] [--repeat 5] [--threads 2]

Prints the best of ``--repeat`` timings in seconds (``channels_last`` copies, as
``demosaic-infer`` runs them on the CPU).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=3048)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from demosaic.inference.tiling import for_inference
    from demosaic.models.checkpoint import load_model
    from demosaic.models.zoo import DEFAULT_CHECKPOINT, DENOISE_CHECKPOINTS
    from demosaic.noise.noise_map import packed_noise_map

    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    plain = for_inference(load_model(DEFAULT_CHECKPOINT), cpu)
    noisy = for_inference(load_model(DENOISE_CHECKPOINTS["xtrans"]), cpu)
    x = torch.rand(1, 1, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 0.3
    level = torch.tensor([[1e-3, 5e-4, 8e-4], [1e-7, 1e-7, 1e-7]])
    with torch.inference_mode():
        packed = noisy.pack(x)
        colours = noisy.packed_colours(packed)
        rows = {
            "default model": best(lambda: plain(x), args.repeat),
            "noise-aware model, with the level": best(lambda: noisy(x, level), args.repeat),
            "noise map alone": best(lambda: packed_noise_map(packed, colours, level), args.repeat),
        }
    print(f"| {args.size} px window, {args.threads} threads | seconds |\n|---|---:|")
    for name, sec in rows.items():
        print(f"| {name} | {sec:.3f} |")


if __name__ == "__main__":
    main()
