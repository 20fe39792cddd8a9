"""The methods a comparison runs, each through the path its command uses.

- networks (``default``, ``quality``, ``bilinear``, a tag such as ``xtrans.default``, or
  ``ckpt:PATH``): :class:`demosaic.models.zoo.ModelSource` and
  :func:`demosaic.inference.develop.develop`, as ``demosaic-infer`` (as-shot white balance on
  the mosaic, highlights ``clip``, the tiling with the model's own overlap);
- LibRaw (``markesteijn3`` = AHD, ``markesteijn1`` = PPG on X-Trans, ``vng``, ``dht``,
  ``aahd``, ``dcb``, ``linear``): :func:`demosaic.io.libraw.develop` with the file's as-shot
  multipliers (a mosaic under 512 px goes through :func:`~demosaic.io.libraw.develop_mosaic`,
  which pads it for Markesteijn).

Both give balanced camera RGB; the file's colour plan (camera -> linear sRGB,
:func:`demosaic.inference.colour.plan_colour`) and orientation then make each method's image
upright linear sRGB, exactly as ``demosaic-infer`` writes an sRGB EXR.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demosaic.errors import ConfigError
from demosaic.inference.colour import ColourPlan, apply_matrix_chunked, plan_colour
from demosaic.inference.develop import develop
from demosaic.inference.tiling import DEFAULT_TILE, auto_overlap
from demosaic.io.libraw import develop_raw
from demosaic.io.raw import RawImage, apply_orientation
from demosaic.models.zoo import MODEL_NAMES, ModelSource

log = logging.getLogger(__name__)

#: LibRaw's demosaickers by the name ``--methods`` takes -> ``rawpy.DemosaicAlgorithm``
#: (on X-Trans LibRaw runs Markesteijn 3-pass for AHD/DCB/DHT/AAHD and 1-pass for PPG).
LIBRAW_METHODS = {"markesteijn3": "AHD", "markesteijn1": "PPG", "vng": "VNG", "dht": "DHT",
                  "aahd": "AAHD", "dcb": "DCB", "linear": "LINEAR"}
#: The networks by name (besides ``ckpt:PATH``): the packaged default per CFA family and the
#: names of :data:`demosaic.models.zoo.MODEL_NAMES`.
NETWORK_METHODS = ("default", *MODEL_NAMES)
#: What ``demosaic-compare`` runs without ``--methods``.
DEFAULT_METHODS = ("markesteijn3", "default", "quality")
#: The prefix of a checkpoint method.
CHECKPOINT_PREFIX = "ckpt:"


@dataclass
class MethodSpec:
    """One method of a comparison, resolved once for all files.

    Attributes:
        name: As the user wrote it (``markesteijn3``, ``default``, ``ckpt:best.pt`` ...).
        algorithm: LibRaw's algorithm, or ``None`` for a network.
        source: The network's :class:`ModelSource`, or ``None`` for LibRaw.
        checkpoint: The checkpoint path of ``ckpt:PATH``.
    """

    name: str
    algorithm: str | None = None
    source: ModelSource | None = None
    checkpoint: Path | None = None


@dataclass
class MethodImage:
    """One method's result on one file.

    Attributes:
        name: The method's name.
        rgb: ``(3, H, W)`` float32 upright linear sRGB (white 1.0, unclamped).
        info: What it is: ``description``, ``checkpoint``, ``run``, ``step``.
        settings: How it ran (white balance, highlights, tiling, device ...).
        seconds: Wall time of the demosaicking and colour steps.
    """

    name: str
    rgb: np.ndarray
    info: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def parse_method(name: str, device: str | torch.device | None = "auto") -> MethodSpec:
    """Resolve a ``--methods`` name.

    Raises:
        ConfigError: an unknown name, or a ``ckpt:`` path that is not a file (the message
            names the method and lists the choices).
        CheckpointError: an unreadable checkpoint.
    """
    if name in LIBRAW_METHODS:
        return MethodSpec(name, algorithm=LIBRAW_METHODS[name])
    if name.startswith(CHECKPOINT_PREFIX):
        path = Path(name[len(CHECKPOINT_PREFIX):]).expanduser()
        if not path.is_file():
            raise ConfigError(f"method {name!r}: checkpoint {path} is not a file; give "
                              "ckpt:PATH of a checkpoint written by demosaic-train")
        return MethodSpec(name, source=ModelSource(checkpoint=path, device=device),
                          checkpoint=path)
    if name in NETWORK_METHODS:
        model = None if name == "default" else name
        return MethodSpec(name, source=ModelSource(model=model, device=device))
    raise ConfigError(f"unknown method {name!r}; choose LibRaw's {', '.join(LIBRAW_METHODS)}, "
                      f"a network {', '.join(NETWORK_METHODS)}, or ckpt:PATH")


def parse_methods(names: list[str] | tuple[str, ...], device: str | torch.device | None = "auto"
                  ) -> list[MethodSpec]:
    """:func:`parse_method` of each name; at most 9 methods (keys 1-9), no repeats.

    Raises:
        ConfigError: no method, too many, a repeat, or an unknown one.
    """
    if not names:
        raise ConfigError("no method to compare; give --methods, e.g. markesteijn3 default")
    if len(names) > 9:
        raise ConfigError(f"{len(names)} methods ({', '.join(names)}): at most 9 (keys 1-9)")
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise ConfigError(f"method(s) {', '.join(repeated)} given twice in --methods")
    return [parse_method(n, device) for n in names]


def _libraw_rgb(raw: RawImage, algorithm: str) -> torch.Tensor:
    """LibRaw's balanced camera RGB of ``raw`` (its as-shot multipliers), padded for
    Markesteijn when a side is under :data:`demosaic.io.libraw.MIN_SIDE`."""
    rgb = develop_raw(raw, algorithm, [float(v) for v in raw.wb_multipliers])
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))


def _network_rgb(raw: RawImage, source: ModelSource, colour: ColourPlan
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
    """The network's balanced camera RGB through ``demosaic-infer``'s develop."""
    net = source.for_family(raw.family, raw.path).to(source.device)
    overlap = auto_overlap(net)
    rgb = develop(raw, net, device=source.device, tile=DEFAULT_TILE, overlap=overlap,
                  highlights="clip", colour=colour)
    return rgb, {"tile": DEFAULT_TILE, "overlap": overlap, "device": str(source.device)}


def run_method(spec: MethodSpec, raw: RawImage, colour: ColourPlan | None = None) -> MethodImage:
    """Develop ``raw`` with one method into upright linear sRGB (:class:`MethodImage`).

    Raises:
        RawReadError: LibRaw cannot develop the file.
        CFAError: a checkpoint or tag of another CFA family than the file's.
    """
    colour = colour or plan_colour(raw, "srgb", "as_shot")
    t0 = time.perf_counter()
    settings: dict[str, Any] = {"white_balance": "as_shot (on the mosaic)",
                                "highlights": "clip", "color_space": "linear sRGB"}
    if spec.algorithm is not None:
        rgb = _libraw_rgb(raw, spec.algorithm)
        settings["libraw_algorithm"] = spec.algorithm
        info = {"description": f"LibRaw {spec.algorithm} ({spec.name})", "checkpoint": "",
                "run": "", "step": ""}
    elif spec.source is not None:
        rgb, extra = _network_rgb(raw, spec.source, colour)
        settings.update(extra)
        got = spec.source.info_for(raw.family)
        info = {"description": got.get("description", spec.name),
                "checkpoint": got.get("checkpoint", ""), "run": got.get("run_name", ""),
                "step": got.get("step", "")}
    else:
        raise ConfigError(f"method {spec.name!r} has neither a LibRaw algorithm nor a model; "
                          "build it with parse_method")
    img = apply_orientation(apply_matrix_chunked(rgb, colour.matrix, np.float32),
                            raw.orientation)
    seconds = time.perf_counter() - t0
    log.info("%s: %s in %.2f s", raw.path.name, spec.name, seconds)
    return MethodImage(spec.name, np.ascontiguousarray(img, dtype=np.float32), info, settings,
                       seconds)


__all__ = ["CHECKPOINT_PREFIX", "DEFAULT_METHODS", "LIBRAW_METHODS", "MethodImage",
           "MethodSpec", "NETWORK_METHODS", "parse_method", "parse_methods", "run_method"]
