"""What demosaics: one function that turns a user's choice into a demosaicker.

Every command and script that takes "a method" resolves it here (``demosaic-eval``, the
inference model source, the distillation teacher, the benchmark scripts):

- a **checkpoint** path (``best.pt`` written by ``demosaic-train``);
- nothing: the **shipped** model of the CFA family (:data:`SHIPPED_CHECKPOINTS`);
- a **baseline** name (LibRaw, demosaicnet, colour-demosaicing:
  :mod:`demosaic.models.baselines`);
- a **parameter-free model** (``bilinear``, or a ``configs/model`` mapping without weights);
- a **named ensemble** (``quality``: the family's packaged quality network, or its default
  model where it has none, run on flips/rotations of the mosaic; ``ensemble``: the default
  model so; :class:`~demosaic.models.ensemble.GeometricEnsemble`).

Exactly one may be given. The result carries the report name, the kind and the fields every
report records about it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from demosaic.cfa import get_pattern
from demosaic.models.checkpoint import (QUALITY_CHECKPOINTS, SHIPPED_CHECKPOINTS, load_checkpoint, load_model,
                                        shipped_checkpoint)
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class Method:
    """A resolved demosaicker.

    Attributes:
        demosaicker: Has ``pattern`` and ``demosaic(cfa)``; a model is on ``device``, in eval mode.
        name: Report name (a checkpoint's run name, else its folder; the baseline's name ...).
        kind: ``"checkpoint"``, ``"baseline"`` or ``"model"``.
        info: ``checkpoint`` (path), ``run_name``, ``step``, ``model`` (spec) for checkpoints;
            ``model`` for parameter-free models; empty for baselines.
    """

    demosaicker: Any
    name: str
    kind: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """One line for output metadata: ``unet from best.pt (step 4652, run v8.3_keep)``."""
        spec = self.info.get("model") or {}
        if self.kind == "model" and "views" in spec:  # an ensemble of a checkpoint
            return (f"{self.name}: {self._weights(spec.get('base') or {})}, x{spec['views']} "
                    "geometric self-ensemble")
        if self.kind != "checkpoint":
            return f"{self.name} ({'parameter-free built-in' if self.kind == 'model' else self.kind})"
        return self._weights(spec)

    def _weights(self, spec: Mapping[str, Any]) -> str:
        """``unet from best.pt (step 4652, run v8.3_keep)``: the network and its checkpoint."""
        run = f", run {self.info['run_name']}" if self.info.get("run_name") else ""
        return (f"{spec.get('name', '?')} from {Path(self.info['checkpoint']).name} "
                f"(step {self.info.get('step', '?')}{run})")


def from_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Method:
    """A checkpoint as a :class:`Method` (raises CheckpointError naming the file)."""
    p = Path(path)
    ckpt = load_checkpoint(p)
    model = load_model(ckpt, device=device)
    run_name = str(ckpt.get("run_name") or "")
    return Method(model, run_name or p.parent.name or p.stem, "checkpoint",
                  {"checkpoint": str(p), "run_name": run_name, "step": ckpt.get("step"),
                   "model": ckpt.get("model")})


def resolve_method(*, checkpoint: str | os.PathLike[str] | None = None, baseline: str | None = None,
                   model: str | Mapping[str, Any] | None = None, cfa: str = "xtrans",
                   device: str | torch.device = "cpu") -> Method:
    """Resolve a user's choice (see the module docstring).

    Args:
        checkpoint, baseline, model: At most one; none = the shipped model of ``cfa``'s family.
        cfa: The CFA of a baseline or parameter-free model, and the family of the shipped model.
        device: Where models run (and demosaicnet).

    Raises:
        ConfigError: more than one given, or an unknown name.
        CheckpointError: an unreadable checkpoint, or no shipped model for the family.
    """
    from demosaic.models.baselines import build_method

    given = [k for k, v in (("checkpoint", checkpoint), ("baseline", baseline), ("model", model)) if v]
    if len(given) > 1:
        raise ConfigError(f"give only one of a checkpoint, a baseline or a model (got {', '.join(given)})")
    if baseline:
        extra = {"device": device} if baseline == "demosaicnet" else {}
        return Method(build_method(str(baseline), cfa, **extra), str(baseline), "baseline")
    if model:
        spec = {"name": model} if isinstance(model, str) else dict(model)
        if "name" not in spec:
            raise ConfigError("model config has no 'name'; use model=NAME (configs/model/NAME.yaml)")
        name = str(spec.pop("name"))
        spec.setdefault("cfa", cfa)
        if name in ENSEMBLES:
            return ensemble_method(name, device=device, **spec)
        return Method(build_method(name, **spec), name, "model", {"model": {"name": name, **spec}})
    path = checkpoint or shipped_checkpoint(get_pattern(cfa).family)
    return from_checkpoint(path, device)


#: Named ensembles of trained checkpoints (``demosaic-infer --model quality``,
#: ``demosaic-eval model=quality``): name -> (packaged model variant, default number of
#: views). ``quality``'s 2 views were chosen for the X-Trans quality network by the rule in
#: configs/experiment/xtrans_quality_gpu.yaml (docs/BENCHMARKS.md, "The quality network"); a
#: family without a quality network (Bayer) gets ``ensemble`` under that name (8 views of its
#: default, chosen by the earlier rule for the fast model).
ENSEMBLES: dict[str, tuple[str, int]] = {"quality": ("quality", 2), "ensemble": ("default", 8)}


def ensemble_method(name: str = "quality", *, cfa: str | None = "xtrans",
                    checkpoint: str | os.PathLike[str] | None = "shipped", views: int | None = None,
                    device: str | torch.device = "cpu") -> Method:
    """A geometric self-ensemble (:class:`~demosaic.models.ensemble.GeometricEnsemble`) of a
    checkpoint as a :class:`Method`.

    Args:
        name: A key of :data:`ENSEMBLES` (``quality``: the packaged quality network of the
            family, 2 views, or where it has none the same as ``ensemble``: its default model,
            8 views).
        cfa: Its CFA family picks the packaged model; ``None`` with a checkpoint path: the
            checkpoint's own.
        checkpoint: ``"shipped"``/``None`` (the name's packaged model of ``cfa``'s family) or a
            path.
        views: 1, 2, 4 or 8 (default: the name's).

    Raises:
        CheckpointError: unreadable checkpoint, or none shipped for the family.
        ConfigError: unknown name, a checkpoint of another family, or a bad ``views``.
    """
    from demosaic.models.ensemble import GeometricEnsemble

    if name not in ENSEMBLES:
        raise ConfigError(f"unknown ensemble {name!r}; choose one of {sorted(ENSEMBLES)}")
    shipped = checkpoint in (None, "shipped")
    if shipped and cfa is None:
        raise ConfigError(f"ensemble {name!r}: give a checkpoint or a CFA (cfa=xtrans|bayer_rggb)")
    family = get_pattern(cfa).family if cfa is not None else None
    variant, default_views = ENSEMBLES[name]
    if shipped and variant == "quality" and family not in QUALITY_CHECKPOINTS:
        variant, default_views = ENSEMBLES["ensemble"]  # no quality network: the default's views
    path = shipped_checkpoint(family, variant) if shipped else Path(checkpoint)  # type: ignore[arg-type]
    base = from_checkpoint(path, device)
    if family is not None and base.demosaicker.pattern.family != family:
        raise ConfigError(f"model.checkpoint={path} demosaics {base.demosaicker.pattern.name} "
                          f"mosaics, not {cfa}; give a checkpoint of that family or set cfa=")
    n = default_views if views is None else int(views)
    ens = GeometricEnsemble(base.demosaicker, n).to(device)
    info = {"checkpoint": str(path), "run_name": base.info.get("run_name", ""),
            "step": base.info.get("step"),
            "model": {"name": name, "views": n, "base": base.info.get("model")}}
    return Method(ens, name, "model", info)


def load_frozen(path: str | os.PathLike[str], pattern: str, device: str | torch.device, what: str
                ) -> torch.nn.Module:
    """A checkpoint's model, frozen and in eval mode, whose CFA must be ``pattern`` (a
    distillation teacher): raises :class:`~demosaic.errors.ConfigError` naming ``what``."""
    method = from_checkpoint(path, device)
    model = method.demosaicker
    if model.pattern.name != pattern:
        raise ConfigError(f"{what}={path} demosaics {model.pattern.name} but {pattern} is needed; "
                          "pick a checkpoint of the same CFA")
    for q in model.parameters():
        q.requires_grad_(False)
    return model.eval()


__all__ = ["ENSEMBLES", "Method", "ensemble_method", "resolve_method", "from_checkpoint", "load_frozen", "SHIPPED_CHECKPOINTS"]
