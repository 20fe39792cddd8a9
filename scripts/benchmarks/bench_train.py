"""Training throughput (samples/s) of the trainer's inner step on this machine.

Runs the real composed config (default: the default model on the bundled synthetic data)
through ``demosaic-train``'s own code path for a few steps and reads the throughput the
trainer logs, so the number is what a training run reports.

Usage::

    python scripts/benchmarks/bench_train.py                       # default model, batch 16, 96 px
    python scripts/benchmarks/bench_train.py model=xtrans_unet_small --steps 60
    python scripts/benchmarks/bench_train.py --threads 1
    python scripts/benchmarks/bench_train.py --threads 2 --bare trainer.device_batches=true

Prints a Markdown table row per configuration. ``--bare`` adds a row for the bare step of the
same model, loss and precision (forward, loss, backward, gradient clipping, AdamW, on one
fixed random batch: no data, EMA, logging or schedule), so the trainer's own overhead is the
difference between the rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=xtrans_unet_small")
    parser.add_argument("--steps", type=int, default=60, help="steps to time (after 10 warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--workers", type=int, default=0, help="trainer.num_workers (DataLoader worker processes)")
    parser.add_argument("--bare", action="store_true", help="also time the bare step (see above)")
    parser.add_argument("--keep-malloc-defaults", action="store_true",
                        help="leave glibc's allocator as it is (demosaic-train keeps freed memory)")
    args = parser.parse_args()

    import torch
    from hydra import compose, initialize_config_module

    from demosaic.allocator import keep_freed_memory
    from demosaic.cli.train import register_schemas, run_training

    if not args.keep_malloc_defaults:
        keep_freed_memory()  # as demosaic-train's main() does

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    register_schemas()
    warmup = 10
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            *args.overrides,
            f"trainer.max_steps={warmup + args.steps}", f"trainer.batch_size={args.batch_size}",
            f"dataset.train.patch_size={args.patch_size}", f"trainer.num_workers={args.workers}",
            f"trainer.log_every={warmup}", f"trainer.val_every={10**9}", f"trainer.save_every={10**9}",
            f"trainer.snapshot_every={10**9}", "trainer.val_max_images=1", "trainer.device=cpu",
            f"trainer.checkpoint_dir={tmp}/ckpt", f"trainer.log_dir={tmp}/logs", "trainer.run_name=bench",
        ]
        with initialize_config_module("demosaic.configs", version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        run_training(cfg)
        rows = [json.loads(line) for line in Path(tmp, "logs", "metrics_bench.jsonl").read_text().splitlines()]
    rates = [r["throughput/samples_per_s"] for r in rows if "throughput/samples_per_s" in r][1:]  # skip warm-up
    model = cfg.model
    rate = sum(rates) / len(rates)
    print(f"| {model.get('name')} width={model.get('width')} depth={model.get('depth')} "
          f"packing={model.get('packing')} | {args.batch_size} x {args.patch_size} px | "
          f"{torch.get_num_threads()} | {rate:.1f} | {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores |")
    if args.bare:
        bare = bare_rate(cfg, args.batch_size, args.patch_size, args.steps)
        print(f"| bare step, same model, loss and precision | {args.batch_size} x {args.patch_size} px "
              f"| {torch.get_num_threads()} | {bare:.1f} | |")


def bare_rate(cfg, batch: int, patch: int, steps: int) -> float:
    """Samples/s of forward + loss + backward + clip + AdamW on one random batch (mean step, as
    the trainer's logged rate is a mean)."""
    import time

    import torch
    from omegaconf import OmegaConf

    from demosaic.devices import resolve_device
    from demosaic.losses import build_loss
    from demosaic.models import build_model
    from demosaic.models.base import call_model
    from demosaic.training.runtime import autocast_for, make_optimizer

    model = build_model(OmegaConf.to_container(cfg.model, resolve=True)).train()
    criterion = build_loss(OmegaConf.to_container(cfg.loss, resolve=True))
    cpu = resolve_device("cpu")
    opt = make_optimizer(list(model.parameters()), cpu, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0)
    autocast, _ = autocast_for(cpu, str(cfg.trainer.precision))
    x, target = torch.rand(batch, 1, patch, patch), torch.rand(batch, 3, patch, patch)
    noise = torch.full((batch, 2, 3), 1e-4)
    times = []
    for i in range(10 + steps):
        t0 = time.perf_counter()
        with autocast():
            pred = call_model(model, x, noise)
        loss, _ = criterion(pred.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 10:
            times.append(time.perf_counter() - t0)
    return batch * len(times) / sum(times)


if __name__ == "__main__":
    sys.exit(main())
