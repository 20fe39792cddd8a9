"""Which weights: the one answer to "what demosaics" for every command and script.

Everything that takes "a method" resolves it here (``demosaic-infer``'s :class:`ModelSource`,
``demosaic-eval`` (:func:`method_from_config`), ``demosaic-export``, the distillation teacher,
the benchmark scripts):

- a **checkpoint** path (``best.pt`` written by ``demosaic-train``);
- nothing: the **packaged** model of the CFA family (:data:`SHIPPED_CHECKPOINTS`, chosen per
  file by its sensor in ``demosaic-infer``);
- a **tag** of the packaged weights, in the style of timm's ``model.tag`` names
  (:data:`TAGS`): ``xtrans.default``, ``bayer.default`` (the packaged default models, as run
  without ``--model``) and ``xtrans.quality`` (the X-Trans quality network as ``quality``
  runs it, 2 views); the tag fixes the CFA family;
- a **baseline** name (LibRaw, demosaicnet, colour-demosaicing:
  :mod:`demosaic.models.baselines`);
- a **parameter-free model** (``bilinear``, or a ``configs/model`` mapping without weights);
- a **named ensemble** (:data:`ENSEMBLES`: ``quality``, the family's packaged quality
  network, or its default model where it has none, run on flips/rotations of the mosaic;
  ``ensemble``: the default model so; :class:`~demosaic.models.ensemble.GeometricEnsemble`).

Exactly one may be given. The result (:class:`Method`) carries the report name, the kind and
the fields every report records about it. The checkpoint file format itself (make, save,
load, release) is :mod:`demosaic.models.checkpoint`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import demosaic
from demosaic.cfa import CANONICAL, get_pattern
from demosaic.devices import resolve_device
from demosaic.errors import CFAError, CheckpointError, ConfigError
from demosaic.models.checkpoint import load_checkpoint, load_model

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------
# Packaged weights
# --------------------------------------------------------------------------------------

_ASSETS = Path(demosaic.__file__).parent / "assets"
#: The X-Trans model shipped inside the package.
DEFAULT_CHECKPOINT = _ASSETS / "default.pt"
#: The models shipped inside the package, by CFA family: ``demosaic-infer`` picks the one that
#: matches each file's sensor, ``demosaic-eval`` the one of its ``cfa`` when no checkpoint is
#: given.
SHIPPED_CHECKPOINTS: dict[str, Path] = {"xtrans": DEFAULT_CHECKPOINT,
                                        "bayer": _ASSETS / "default_bayer.pt"}
#: The quality networks shipped inside the package (issue 16), by CFA family: the base of the
#: ``quality`` ensemble. A family without one (Bayer) uses its default model there.
QUALITY_CHECKPOINTS: dict[str, Path] = {"xtrans": _ASSETS / "quality_xtrans.pt"}
#: The noise-aware models shipped beside the defaults (issue 32), by CFA family: the default's
#: network grown by the noise input and fine-tuned (run v13.0_default_noise), opt-in
#: (``--model xtrans.denoise``) because it lost its rule at ISO 800 (docs/lab/noise-aware.md);
#: the one packaged model that ``--denoise`` acts on.
DENOISE_CHECKPOINTS: dict[str, Path] = {"xtrans": _ASSETS / "denoise_xtrans.pt"}
#: Which packaged models :func:`shipped_checkpoint` knows.
VARIANTS = ("default", "quality", "denoise")
#: Variants that are one packaged checkpoint run as it is (the others are ensembles).
CHECKPOINT_VARIANTS = ("default", "denoise")
#: Named ensembles of trained checkpoints (``demosaic-infer --model quality``,
#: ``demosaic-eval model=quality``): name -> (packaged model variant, default number of
#: views). ``quality``'s 2 views were chosen for the X-Trans quality network by the rule in
#: configs/lineage/experiment/xtrans_quality_gpu.yaml (docs/lab/quality-network.md); a
#: family without a quality network (Bayer) gets ``ensemble`` under that name (8 views of its
#: default, chosen by the earlier rule for the fast model).
ENSEMBLES: dict[str, tuple[str, int]] = {"quality": ("quality", 2), "ensemble": ("default", 8)}
#: Tags of the packaged weights (``family.variant``, as timm's ``resnet50.a1_in1k``) ->
#: ``(CFA family, variant)``. ``default``: the family's packaged model as run without a
#: model; ``quality``: the :data:`ENSEMBLES` entry of that name on that family.
TAGS: dict[str, tuple[str, str]] = {"xtrans.default": ("xtrans", "default"),
                                    "xtrans.quality": ("xtrans", "quality"),
                                    "xtrans.denoise": ("xtrans", "denoise"),
                                    "bayer.default": ("bayer", "default")}
#: Models usable without a checkpoint, built for each file's CFA family: the parameter-free
#: ``bilinear`` and ``quality``, the family's packaged quality network as a geometric
#: self-ensemble (:func:`ensemble_method`: X-Trans 2 views of the quality network, about 11x
#: the default's time on a 24 MP file on a CPU; Bayer 8 views of its default).
BUILTIN_MODELS = ("bilinear", "quality")
#: Every name ``demosaic-infer --model`` takes: the built-in models and the tags.
MODEL_NAMES = (*BUILTIN_MODELS, *TAGS)


def shipped_checkpoint(family: str, variant: str = "default") -> Path:
    """The packaged model for CFA ``family`` (``"xtrans"`` or ``"bayer"``).

    Args:
        variant: ``"default"`` (the fast model), ``"quality"`` (the quality network where the
            family has one, :data:`QUALITY_CHECKPOINTS`; else the default) or ``"denoise"``
            (the noise-aware model, :data:`DENOISE_CHECKPOINTS`; X-Trans only).

    Raises:
        CheckpointError: this installation ships none for that family (the message says what
            to pass instead), or a listed quality network is missing.
    """
    if variant not in VARIANTS:
        raise CheckpointError(f"unknown packaged model {variant!r}; choose one of {VARIANTS}")
    if variant == "quality" and family in QUALITY_CHECKPOINTS:
        path = QUALITY_CHECKPOINTS[family]
        if not path.is_file():
            raise CheckpointError(f"this installation lacks its {family} quality network ({path}); "
                                  "reinstall demosaic, or pass a checkpoint instead")
        return path
    if variant == "denoise":
        path = DENOISE_CHECKPOINTS.get(family)
        if path is None or not path.is_file():
            raise CheckpointError(f"this installation ships no noise-aware {family} model "
                                  f"({path or 'none for this CFA family'}); use the default "
                                  "model, or pass a checkpoint trained with model.noise_input=true")
        return path
    path = SHIPPED_CHECKPOINTS.get(family)
    if path is None or not path.is_file():
        raise CheckpointError(
            f"this installation ships no {family} model ({path or 'none listed'} is missing); "
            "pass a checkpoint of that CFA family (a best.pt written by demosaic-train) or use "
            "the parameter-free bilinear model")
    return path


def family_name(family: str) -> str:
    """``"X-Trans"`` / ``"Bayer"`` for messages (a CFA family's display name)."""
    return {"xtrans": "X-Trans", "bayer": "Bayer"}.get(family, family)


# --------------------------------------------------------------------------------------
# Resolution: a user's choice -> a Method
# --------------------------------------------------------------------------------------


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
                   model: str | Mapping[str, Any] | None = None, cfa: str | None = None,
                   device: str | torch.device = "cpu") -> Method:
    """Resolve a user's choice (see the module docstring).

    Args:
        checkpoint, baseline, model: At most one; none = the shipped model of ``cfa``'s family.
            ``model`` is a name (a registered model, a key of :data:`ENSEMBLES`, a tag of
            :data:`TAGS`) or a mapping with ``name`` and its arguments (``views`` for an
            ensemble or a tag).
        cfa: The CFA of a baseline or parameter-free model, and the family of the shipped model
            (``None``: ``"xtrans"``; a tag's own family, which a given ``cfa`` must match).
        device: Where models run (and demosaicnet).

    Raises:
        ConfigError: more than one given, an unknown name, or a tag of another family than
            ``cfa``.
        CheckpointError: an unreadable checkpoint, or no shipped model for the family.
    """
    from demosaic.models.baselines import build_method

    given = [k for k, v in (("checkpoint", checkpoint), ("baseline", baseline), ("model", model)) if v]
    if len(given) > 1:
        raise ConfigError(f"give only one of a checkpoint, a baseline or a model (got {', '.join(given)})")
    if baseline:
        extra = {"device": device} if baseline == "demosaicnet" else {}
        return Method(build_method(str(baseline), cfa or "xtrans", **extra), str(baseline), "baseline")
    if model:
        spec = {"name": model} if isinstance(model, str) else dict(model)
        if "name" not in spec:
            raise ConfigError("model config has no 'name'; use model=NAME (configs/model/NAME.yaml)")
        name = str(spec.pop("name"))
        if name in TAGS:
            return _resolve_tag(name, spec, cfa, device)
        spec.setdefault("cfa", cfa or "xtrans")
        if name in ENSEMBLES:
            return ensemble_method(name, device=device, **spec)
        return Method(build_method(name, **spec), name, "model", {"model": {"name": name, **spec}})
    path = checkpoint or shipped_checkpoint(get_pattern(cfa or "xtrans").family)
    return from_checkpoint(path, device)


def _resolve_tag(tag: str, spec: dict[str, Any], cfa: str | None,
                 device: str | torch.device) -> Method:
    """A tag of :data:`TAGS` (``spec``: its other arguments, ``views`` only) as the
    :class:`Method` the equivalent name runs: the packaged default checkpoint, or the named
    ensemble of that family."""
    family, variant = TAGS[tag]
    wanted = spec.pop("cfa", None) or cfa
    if wanted is not None and get_pattern(wanted).family != family:
        raise ConfigError(f"model={tag} demosaics {family_name(family)} mosaics, not {wanted}; "
                          f"set cfa={CANONICAL[family].name} or pick a tag of that family "
                          f"({', '.join(TAGS)})")
    views = spec.pop("views", None)
    if spec:
        raise ConfigError(f"model={tag} takes only 'views', not {sorted(spec)}")
    if variant in CHECKPOINT_VARIANTS and views in (None, 1):
        return from_checkpoint(shipped_checkpoint(family, variant), device)
    if variant == "denoise":
        return ensemble_method("ensemble", cfa=CANONICAL[family].name, views=views, device=device,
                               checkpoint=shipped_checkpoint(family, variant))
    name = "ensemble" if variant == "default" else variant
    return ensemble_method(name, cfa=CANONICAL[family].name, views=views, device=device)


def method_from_config(cfg: Mapping[str, Any], device: str | torch.device = "cpu") -> Method:
    """What ``demosaic-eval``'s config asks to evaluate: :func:`resolve_method` of its keys
    ``ckpt=``, ``baseline=``, ``model=`` and ``cfa=`` (default ``xtrans``).

    Raises:
        ConfigError: more than one of ckpt/baseline/model, or an unknown name.
        CheckpointError: no method given and no packaged model for the CFA family (the message
            says what to pass).
    """
    try:
        return resolve_method(checkpoint=cfg.get("ckpt"), baseline=cfg.get("baseline"),
                              model=cfg.get("model"), cfa=cfg.get("cfa") or "xtrans",
                              device=device)
    except CheckpointError as exc:
        if cfg.get("ckpt"):
            raise
        raise CheckpointError(f"no ckpt= given: {exc} (ckpt=PATH, or baseline=NAME)") from None


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


# --------------------------------------------------------------------------------------
# Per file: the model of each file's CFA family (demosaic-infer)
# --------------------------------------------------------------------------------------


class ModelSource:
    """Where ``demosaic-infer``'s demosaicker comes from: a checkpoint, the packaged models,
    a tag or a built-in model. Resolve once, then ask :meth:`for_family` per file.

    Without a checkpoint the packaged model of each file's CFA family is used
    (:data:`SHIPPED_CHECKPOINTS`: X-Trans and Bayer), loaded on first use, so one folder may
    mix X-Trans and Bayer files. A checkpoint given by the user, or a tag (:data:`TAGS`),
    must match each file's family (:class:`~demosaic.errors.CFAError` otherwise).

    Args:
        checkpoint: Checkpoint ``.pt`` path; ``None`` = the packaged model per family.
        model: A name of :data:`MODEL_NAMES` (``"bilinear"``, ``"quality"``, a tag) instead
            of a checkpoint.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` ...
        views: Run a trained model (checkpoint, packaged, tag or ``quality``) on this many
            flips/rotations of the mosaic and average (1, 2, 4, 8:
            :class:`~demosaic.models.ensemble.GeometricEnsemble`); ``None``: 1, or
            ``quality``'s own (:data:`ENSEMBLES`).

    Raises:
        ConfigError: both or an unknown model given, or ``views`` with ``bilinear``.
        CheckpointError: no checkpoint given and none packaged, or unreadable checkpoint.
    """

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None, model: str | None = None,
                 device: str | torch.device | None = "auto", views: int | None = None) -> None:
        self.device = resolve_device(device)
        if views is not None and model == "bilinear" and views != 1:
            raise ConfigError("--views applies to trained models, not to the parameter-free "
                              "bilinear model")
        self.views = views
        self._models: dict[str, tuple[nn.Module, dict[str, str]]] = {}
        self._fixed: tuple[nn.Module, dict[str, str]] | None = None
        self._builtin: str | None = None
        if model is not None and checkpoint is not None:
            raise ConfigError(f"give either a checkpoint ({checkpoint}) or a built-in model "
                              f"({model!r}), not both")
        if model is not None and model not in MODEL_NAMES:
            raise ConfigError(f"unknown built-in model {model!r}; choose one of {MODEL_NAMES} "
                              "or pass a trained checkpoint with --checkpoint")
        if model in TAGS and TAGS[model][1] in CHECKPOINT_VARIANTS:  # a packaged checkpoint
            checkpoint = shipped_checkpoint(*TAGS[model])
        elif model is not None:
            self._builtin = self.name = model
        if checkpoint is not None:
            self._fixed = self._load(Path(checkpoint))
            self.name = self._fixed[1]["name"]
        elif model is None:
            if not any(p.is_file() for p in SHIPPED_CHECKPOINTS.values()):
                shipped_checkpoint("xtrans")  # raises the explanation
            self.name = "shipped"

    def _load(self, path: Path) -> tuple[nn.Module, dict[str, str]]:
        if self.views is not None and self.views > 1:
            return self._prepare(ensemble_method("ensemble", cfa=None, checkpoint=path,
                                                 views=self.views, device=self.device))
        return self._prepare(from_checkpoint(path, self.device))

    def _prepare(self, method: Method) -> tuple[nn.Module, dict[str, str]]:
        from demosaic.inference.tiling import for_inference  # local: zoo is below inference

        spec = method.info.get("model") or {}
        ckpt = method.info.get("checkpoint")
        return for_inference(method.demosaicker, self.device), {
            "name": str(spec.get("name", "?")),
            "model": json.dumps(spec, sort_keys=True),
            "checkpoint": Path(ckpt).name if ckpt else "",
            "step": str(method.info.get("step") or ""),
            "run_name": method.info.get("run_name", ""),
            "description": method.description,
        }

    def _resolve(self, family: str) -> tuple[nn.Module, dict[str, str]]:
        if family not in self._models:
            if self._builtin is not None:
                name = self._builtin
                spec: dict[str, Any] = {"name": name}
                if self.views is not None and (name in ENSEMBLES or name in TAGS):
                    spec["views"] = self.views
                own = TAGS[name][0] if name in TAGS else family  # a tag keeps its family
                self._models[family] = self._prepare(resolve_method(
                    model=spec, cfa=CANONICAL[own].name, device=self.device))
            elif self._fixed is not None:
                self._models[family] = self._fixed
            else:
                self._models[family] = self._load(shipped_checkpoint(family))
        return self._models[family]

    def for_family(self, family: str, path: Path) -> nn.Module:
        """The model for a file whose sensor is ``family``.

        Raises:
            CFAError: a user checkpoint (or a tag) of another family.
            CheckpointError: no packaged model for ``family``.
        """
        module, info = self._resolve(family)
        pattern = module.pattern
        if pattern.family != family:
            raise CFAError(
                f"{path}: the file has a {family_name(family)} sensor but the model "
                f"{info['description']} is for {family_name(pattern.family)} "
                f"({pattern.name}) mosaics; pass a {family_name(family)} checkpoint with "
                "--checkpoint, or --model bilinear")
        return module

    def info_for(self, family: str) -> dict[str, str]:
        """What :meth:`for_family` uses for ``family``: name, spec, checkpoint, step, run and
        a one-line description (recorded in output metadata)."""
        return self._resolve(family)[1]


__all__ = ["BUILTIN_MODELS", "CHECKPOINT_VARIANTS", "DEFAULT_CHECKPOINT", "DENOISE_CHECKPOINTS", "ENSEMBLES", "MODEL_NAMES", "Method",
           "ModelSource", "QUALITY_CHECKPOINTS", "SHIPPED_CHECKPOINTS", "TAGS", "VARIANTS",
           "ensemble_method", "family_name", "from_checkpoint", "load_frozen",
           "method_from_config", "resolve_method", "shipped_checkpoint"]
