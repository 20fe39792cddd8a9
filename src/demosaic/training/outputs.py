"""What a training run writes and restores: validation metrics, snapshots, TensorBoard and
JSONL scalars, the run's config, ``last.pt`` with every RNG state. Used by the trainer and
its hooks (:mod:`.hooks`); it imports neither (only :mod:`.state` and :mod:`.ema`).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.training.ema import EMA
from demosaic.training.state import TrainState

log = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _noise(item: Mapping[str, Any], device: torch.device) -> torch.Tensor | None:
    """An item's ``(1, 2, 3)`` noise coefficients on ``device`` (``None`` when it has none)."""
    noise = item.get("noise")
    return None if noise is None else noise[None].to(device)


def save_last(s: TrainState) -> None:
    """Write ``last.pt``: weights, EMA, optimizer, schedule, scaler, RNG and the hooks' state."""
    if not s.is_main:
        return
    train_state = {"optimizer": s.optimizer.state_dict(), "scheduler": s.scheduler.state_dict(),
                   "rng": rng_state(), "best": s.best,
                   "scaler": s.scaler.state_dict() if s.scaler is not None else None}
    for hook in s.hooks:
        train_state.update(hook.state(s))
    save_checkpoint(make_checkpoint(s.model, s.model_name, s.model_kwargs, cfa=s.pattern,
                                    config=s.full_config, step=s.step,
                                    metrics={"best_val_psnr": s.best}, run_name=s.t.run_name,
                                    ema_state_dict=s.ema.state_dict() if s.ema else None,
                                    train_state=train_state), s.last_path)


def eval_model(model: nn.Module, ema: EMA | None) -> nn.Module:
    """The model to validate/save as best: a copy with EMA weights when EMA is on."""
    if ema is None:
        return model
    import copy

    shadow = copy.deepcopy(model)
    shadow.load_state_dict(ema.state_dict())
    return shadow


@torch.no_grad()
def validate(model: nn.Module, val_set: Dataset, device: torch.device, max_images: int = 0
             ) -> dict[str, float]:
    """Mean PSNR (linear), SSIM and periodic-artifact score of the error
    (:func:`demosaic.metrics.periodic_artifact_score` at the CFA period; NaN for images too
    small to measure it) of ``model`` over full validation images, all without
    :data:`demosaic.metrics.REPORT_BORDER` px on each side: the border reports use."""
    from demosaic import metrics

    model.eval()
    period = model.pattern.period
    n = len(val_set) if max_images <= 0 else min(max_images, len(val_set))
    psnrs, ssims, periodic = [], [], []
    for i in range(n):
        item = val_set[i]
        pred = model.demosaic(item["cfa"][None].to(device), _noise(item, device))[0].float().cpu()
        b = metrics.REPORT_BORDER
        psnrs.append(float(metrics.psnr(pred, item["target"], border=b)))
        ssims.append(float(metrics.ssim(pred, item["target"], border=b)))
        err = (pred - item["target"])[..., b:-b, b:-b]
        periodic.append(float(metrics.periodic_artifact_score(err, period=period)))
    finite = [v for v in periodic if math.isfinite(v)]
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "periodic_artifact": float(np.mean(finite)) if finite else math.nan}


def fixed_crop(val_set: Dataset, size: int, period: int) -> dict[str, torch.Tensor] | None:
    if len(val_set) == 0:
        return None
    item = val_set[0]
    h, w = item["cfa"].shape[-2:]
    s = max(period, min(size, h, w) // period * period)
    y0 = ((h - s) // 2) // period * period
    x0 = ((w - s) // 2) // period * period
    return {k: item[k][..., y0:y0 + s, x0:x0 + s] for k in ("cfa", "target")}


@torch.no_grad()
def save_snapshot(model: nn.Module, crop: Mapping[str, torch.Tensor], device, path: Path) -> float:
    """Write ``output | truth`` of the fixed crop as PNG; return the periodic-artifact score
    of its error (NaN for crops under 4 periods)."""
    from demosaic import metrics
    from demosaic.io.images import write_png

    model.eval()
    out = model.demosaic(crop["cfa"][None].to(device), _noise(crop, device))[0].float().cpu()
    write_png(path, torch.cat([out, crop["target"]], dim=-1).numpy())
    return float(metrics.periodic_artifact_score(out - crop["target"], period=model.pattern.period))


def _display(x: torch.Tensor) -> torch.Tensor:
    from demosaic.color import linear_to_srgb

    return linear_to_srgb(x.clamp(0, 1))


@torch.no_grad()
def log_images(writer, model: nn.Module, val_set: Dataset, device, step: int) -> None:
    """TensorBoard grid of mosaic | output | target | 4x error for the first validation image."""
    if writer is None or len(val_set) == 0:
        return
    from demosaic.cfa import masked_mosaic

    item = val_set[0]
    out = model.demosaic(item["cfa"][None].to(device), _noise(item, device))[0].float().cpu()
    mosaic_rgb = masked_mosaic(item["cfa"], model.pattern)
    err = (out - item["target"]).abs() * 4
    grid = torch.cat([_display(mosaic_rgb), _display(out), _display(item["target"]), err.clamp(0, 1)], dim=-1)
    writer.add_image("val/mosaic|output|target|error_x4", grid, step)


def log_scalars(writer, metrics_file: Path, step: int, scalars: Mapping[str, float]) -> None:
    if writer is not None:
        for k, v in scalars.items():
            writer.add_scalar(k, v, step)
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    with metrics_file.open("a") as fh:
        fh.write(json.dumps({"step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    from omegaconf import OmegaConf

    from demosaic.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(dict(config))))


__all__ = ["validate", "eval_model", "fixed_crop", "save_snapshot", "log_images", "log_scalars",
           "write_config", "save_last", "rng_state", "set_rng_state"]
