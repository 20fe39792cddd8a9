"""Demosaicking models: a registry of named constructors, each with a config dataclass.

Every model is a :class:`~demosaic.models.base.DemosaicModel`: ``forward`` maps a mosaic
``(N, 1, H, W)`` in the canonical phase of its CFA to linear RGB ``(N, 3, H, W)``,
unclamped; ``demosaic`` accepts any size. Build one with::

    create_model("unet", cfa="xtrans", width=32)
    build_model({"name": "unet", "cfa": "bayer_rggb"})   # e.g. a Hydra model group node

Each registered config dataclass has exactly the constructor's keyword arguments, so a
misspelt key or wrong type fails with a :class:`~demosaic.errors.ConfigError`. A model built
through the registry (``create_model``, ``build_model`` or ``MODELS.build``) carries
``model.spec = {"name": ..., "kwargs": {...}}`` (all arguments, defaults filled in), which is
what :func:`demosaic.models.checkpoint.make_checkpoint` should store.

Registered: ``unet`` (:class:`~demosaic.models.unet.UNetDemosaic`) and ``bilinear``
(:class:`~demosaic.models.bilinear.BilinearDemosaic`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from demosaic.models.base import DemosaicModel
from demosaic.models.bilinear import BilinearDemosaic
from demosaic.models.unet import UNetDemosaic
from demosaic.registry import Registry

log = logging.getLogger(__name__)

MODELS: Registry[DemosaicModel] = Registry("model")


@dataclass
class UNetConfig:
    """Arguments of :class:`~demosaic.models.unet.UNetDemosaic` (see there)."""

    cfa: str = "xtrans"
    packing: Optional[int] = None  # noqa: UP007 - OmegaConf needs typing.Optional
    width: int = 32
    depth: int = 3
    blocks: Any = 1  # an int for every level, or one int per level (list of `depth` ints)
    keep_samples: bool = True
    residual: bool = True
    expand: int = 0  # > 0: over-parameterised 3x3 convolutions for training (folded for use)
    noise_input: bool = False  # the noise level as a second input (demosaic.noise)


@dataclass
class BilinearConfig:
    """Arguments of :class:`~demosaic.models.bilinear.BilinearDemosaic` (see there)."""

    cfa: str = "xtrans"
    radius: int = 1
    keep_samples: bool = True


def _factory(name: str, cls: type[DemosaicModel]) -> Callable[..., DemosaicModel]:
    """Constructor that also records ``model.spec`` (so ``MODELS.build`` sets it too)."""

    def make(**kwargs: Any) -> DemosaicModel:
        model = cls(**kwargs)
        model.spec = {"name": name, "kwargs": dict(kwargs)}
        return model

    make.__name__ = f"make_{name}"
    make.__doc__ = f"Build :class:`{cls.__module__}.{cls.__qualname__}` and record its spec."
    return make


MODELS.register("unet", UNetConfig)(_factory("unet", UNetDemosaic))
MODELS.register("bilinear", BilinearConfig)(_factory("bilinear", BilinearDemosaic))


def build_model(cfg: Mapping[str, Any], where: str = "model") -> DemosaicModel:
    """Build a model from a mapping with a ``name`` key plus constructor arguments.

    Args:
        cfg: e.g. ``{"name": "unet", "width": 32}`` (a dict or an OmegaConf node).
        where: Config path used in error messages.

    Raises:
        ConfigError: unknown model name, unknown key or wrong value type (the message names
            the key and lists the valid ones).
    """
    model = MODELS.build(cfg, where)
    log.info("built model %s (%d parameters)", model.spec, sum(p.numel() for p in model.parameters()))
    return model


def create_model(name: str, **kwargs: Any) -> DemosaicModel:
    """Build a registered model by name (timm style), validating ``kwargs``."""
    return build_model({"name": name, **kwargs})


__all__ = ["MODELS", "DemosaicModel", "UNetDemosaic", "BilinearDemosaic", "UNetConfig",
           "BilinearConfig", "build_model", "create_model"]
