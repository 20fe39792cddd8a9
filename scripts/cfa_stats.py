"""Compare the CFA statistics of training datasets (synthetic vs raw-teacher), as PNG plots.

Each positional argument is ``LABEL=PRESET`` (a file of configs/dataset/, its ``train`` node)
or ``LABEL=PATH`` to a raw-teacher shard folder. Datasets are built with augmentation and
exposure changes as configured by the preset (``--no-augment`` turns them off).

Usage::

    python scripts/cfa_stats.py synthetic=cbsd432 raw_teacher=$DEMOSAIC_DATA/raw_teacher \
        --out logs/research/cfa_stats --items 64

Writes ``cfa_stats.json``, ``histograms.png``, ``spectra.png`` and ``phase_means.png`` in
``--out`` and prints a Markdown summary table (docs/RESEARCH.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


def _dataset_cfg(spec: str, patch: int, no_augment: bool) -> dict:
    path = Path(spec)
    if path.is_dir():
        cfg = {"name": "raw_teacher", "root": str(path), "patch_size": patch, "samples_per_epoch": 10**6}
    else:
        node = OmegaConf.load(ROOT / "configs" / "dataset" / f"{spec}.yaml")
        cfg = OmegaConf.to_container(node.train, resolve=True)
        cfg["patch_size"] = patch
    if no_augment:
        for key, value in (("augment", False), ("exposure_range", [1.0, 1.0]), ("highlight_prob", 0.0)):
            if key in cfg:
                cfg[key] = value
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="LABEL=PRESET or LABEL=SHARD_FOLDER")
    parser.add_argument("--out", default="logs/research/cfa_stats")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--pattern", default="xtrans")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from demosaic.cfa import get_pattern
    from demosaic.data import DATASETS
    from demosaic.research.cfa_stats import compare_cfa_statistics, summary_table

    datasets = {}
    for spec in args.datasets:
        label, _, value = spec.partition("=")
        if not value:
            sys.exit(f"argument {spec!r}: expected LABEL=PRESET or LABEL=FOLDER")
        cfg = _dataset_cfg(value, args.patch, args.no_augment)
        datasets[label] = DATASETS.build(cfg, where=label, pattern=args.pattern, split="train", seed=args.seed)
    period = get_pattern(args.pattern).period
    stats = compare_cfa_statistics(datasets, args.out, period=period, max_items=args.items)
    sys.stdout.write(summary_table(stats))
    sys.stdout.write("plots: " + ", ".join(stats["plots"]) + "\n")


if __name__ == "__main__":
    main()
