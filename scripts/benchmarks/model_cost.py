#!/usr/bin/env python
"""Parameters and GMAC per megapixel of demosaicking models, side by side.

Usage::

    python scripts/benchmarks/model_cost.py                       # packaged default + every configs/model
    python scripts/benchmarks/model_cost.py --checkpoint best.pt --demosaicnet

Rows: the packaged default model (``demosaic/assets/default.pt``), each ``--checkpoint``,
each X-Trans/Bayer model config of ``configs/model/`` (randomly initialised: cost does not
depend on weights) and, with ``--demosaicnet``, Gharbi et al.'s pretrained X-Trans network
(needs the ``baselines`` extra). Counted by :func:`demosaic.models.cost.model_cost` on a
``--size`` square input. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], help="a checkpoint (repeatable)")
    parser.add_argument("--demosaicnet", action="store_true", help="add demosaicnet's X-Trans network")
    parser.add_argument("--size", type=int, default=288, help="square input side in px (multiple of 48)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import torch
    from omegaconf import OmegaConf

    from demosaic.models.checkpoint import load_model
    from demosaic.models.zoo import DEFAULT_CHECKPOINT
    from demosaic.models import MODELS, build_model
    from demosaic.models.cost import ModelCost, model_cost

    torch.manual_seed(0)
    rows: list[tuple[str, ModelCost]] = []
    shape = (1, 1, args.size, args.size)
    for ckpt in ([str(DEFAULT_CHECKPOINT)] if DEFAULT_CHECKPOINT.is_file() else []) + args.checkpoint:
        rows.append((f"checkpoint `{Path(ckpt).parent.name}/{Path(ckpt).name}`", model_cost(load_model(ckpt).eval(), shape)))
    for cfg_file in sorted((ROOT / "configs" / "model").glob("*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(cfg_file))
        if cfg.get("name") not in MODELS.names():  # a named method (quality), not an architecture
            continue
        model = build_model(cfg).eval()
        rows.append((f"config `{cfg_file.stem}`", model_cost(model, shape)))
    if args.demosaicnet:
        import demosaicnet  # noqa: PLC0415 - optional extra

        net = demosaicnet.XTransDemosaick(pretrained=True, pad=True).eval()
        rows.append(("demosaicnet X-Trans (pretrained)", model_cost(net, (1, 3, args.size, args.size))))
    lines = [f"| model ({args.size} px input) | parameters | GMAC / MP |", "|---|---:|---:|"]
    lines += [f"| {name} | {cost.params / 1e6:.3f} M | {cost.gmac_per_mp:.2f} |" for name, cost in rows]
    print("\n".join(lines))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
