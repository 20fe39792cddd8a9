"""Self-describing checkpoints: plain dicts that load with ``torch.load(weights_only=True)``.

A checkpoint carries everything needed to rebuild its model (registry name and keyword
arguments, CFA pattern) plus the resolved config, step, metrics and package versions, so
inference needs no config files. ``last.pt`` additionally holds ``train_state`` (optimizer,
scheduler, RNG states) for exact resume; ``best.pt`` does not need it. This module is the file
format only (make, save, load, rebuild the model); which packaged weights exist and which one
a command uses is :mod:`demosaic.models.zoo`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import demosaic
from demosaic.errors import CheckpointError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

FORMAT = "demosaic-checkpoint/1"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (a checkpoint's identity: milliseconds for a few MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_checkpoint(
    model: nn.Module,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    *,
    cfa: str,
    config: Mapping[str, Any] | None = None,
    step: int = 0,
    metrics: Mapping[str, float] | None = None,
    run_name: str = "",
    ema_state_dict: Mapping[str, torch.Tensor] | None = None,
    train_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a checkpoint dict (tensors are detached CPU copies)."""
    def cpu(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu").clone() for k, v in sd.items()}

    return {
        "format": FORMAT,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "cfa": cfa,
        "state_dict": cpu(model.state_dict()),
        "ema_state_dict": cpu(ema_state_dict) if ema_state_dict is not None else None,
        "config": dict(config or {}),
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "versions": {"demosaic": demosaic.__version__, "torch": str(torch.__version__)},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_name": run_name,
        "train_state": dict(train_state) if train_state is not None else None,
    }


def save_checkpoint(ckpt: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``ckpt`` atomically and durably (temporary file flushed to the disk, then
    renamed): a save killed at any moment, or a power cut, leaves the previous checkpoint
    loadable, and the next save into the folder removes the killed save's partial file."""
    path = Path(path)
    with atomic_path(path, durable=True) as tmp:
        torch.save(dict(ckpt), tmp)
    log.info("saved checkpoint %s (step %s)", path, ckpt.get("step"))
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no code execution).

    Raises:
        CheckpointError: when the file is missing, unreadable or not a demosaic checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing .pt file "
                              "(training writes checkpoints/experiments/<run>/best.pt)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); "
                              "it is corrupt or not a torch file") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a demosaic checkpoint (expected format {FORMAT!r})")
    return ckpt


def inference_form(name: str, state: Mapping[str, torch.Tensor], kwargs: Mapping[str, Any]
                   ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and constructor arguments a model runs with for inference: a U-Net trained
    with over-parameterised convolutions (``expand > 0``) folded into the plain U-Net that
    computes the same (:func:`demosaic.models.unet.fold_expanded_state`); anything else as is."""
    if name == "unet" and kwargs.get("expand"):
        from demosaic.models.unet import fold_expanded_state  # local: models import engine utilities

        return fold_expanded_state(state, kwargs)
    return dict(state), dict(kwargs)


def release_checkpoint(ckpt: Mapping[str, Any], *, half: bool = False,
                       receptive_radius: int | None = None) -> dict[str, Any]:
    """The checkpoint to ship for a trained one: the weights inference uses (the EMA weights
    where present) as ``state_dict``, no EMA copy, no ``train_state``; everything else (model
    spec, CFA, config, step, metrics, run name) kept. ``half`` stores floating-point tensors
    as float16 (they load into the float32 model unchanged in shape). ``receptive_radius``
    (measured by :func:`demosaic.inference.tiling.receptive_field`) is stored as
    ``"receptive_field"`` so that loading the release does not measure it again (a forward and
    backward pass of a probe in every ``demosaic-infer`` run)."""
    out = dict(ckpt)
    if receptive_radius is not None:
        out["receptive_field"] = int(receptive_radius)
    spec = ckpt["model"]
    state, kwargs = inference_form(spec["name"], ckpt.get("ema_state_dict") or ckpt["state_dict"],
                                   spec["kwargs"])
    out["model"] = {"name": spec["name"], "kwargs": kwargs}  # over-parameterised layers folded
    out["state_dict"] = {k: (v.half() if half and v.is_floating_point() else v.clone())
                         for k, v in state.items()}
    out["ema_state_dict"] = None
    out["train_state"] = None
    out["release"] = {"weights": "float16" if half else "float32",
                      "from_ema": bool(ckpt.get("ema_state_dict"))}
    return out


def load_model(source: str | os.PathLike[str] | Mapping[str, Any], device: str | torch.device = "cpu",
               use_ema: bool = True) -> nn.Module:
    """Rebuild the model a checkpoint describes, in eval mode on ``device``.

    Args:
        source: Checkpoint path or an already loaded checkpoint dict.
        use_ema: Prefer the EMA weights when the checkpoint has them.
    """
    from demosaic.models import MODELS  # local: models import engine utilities

    ckpt = load_checkpoint(source) if not isinstance(source, Mapping) else dict(source)
    spec = ckpt["model"]
    state = ckpt.get("ema_state_dict") if use_ema and ckpt.get("ema_state_dict") else ckpt["state_dict"]
    state, kwargs = inference_form(spec["name"], state, spec["kwargs"])
    model = MODELS.rebuild(spec["name"], kwargs, "checkpoint model")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights do not fit model {spec['name']!r} "
                              f"{spec['kwargs']}: {str(exc).splitlines()[0]}") from None
    radius = ckpt.get("receptive_field")
    if isinstance(radius, int) and not isinstance(radius, bool) and radius >= 0:
        from demosaic.inference.tiling import remember_receptive_field  # local: tiling is heavier

        remember_receptive_field(model, radius)  # measured when the release was made
    return model.to(device).eval()


__all__ = ["FORMAT", "file_sha256", "inference_form", "load_checkpoint", "load_model",
           "make_checkpoint", "release_checkpoint", "save_checkpoint"]
