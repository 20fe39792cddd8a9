"""Demosaic camera raw files end to end: raw in, linear EXR, 16-bit TIFF or linear DNG out.

Pipeline of :func:`infer_file`::

    read_raw(path)                   visible area, (H, W) float32 linear, observed CFA phase
    family check                     model.pattern.family must equal the file's (else CFAError)
    tiled_demosaic                   window by window, bounded memory:
      canonical phase                  (P - dy) % P rows / (P - dx) % P columns prepended,
                                       copied one period inwards, so the window is canonical
      white balance (mosaic)           as-shot multipliers x each pixel's colour, BEFORE the
                                       network (LibRaw's order; the space it was trained in)
      network                          (3, H, W) balanced camera RGB: the cores of the
                                       windows, back in the file's full visible area
    highlights                       clipped raw channels made neutral (inference.highlights)
    colour matrix                    one 3x3 per pixel, applied in row chunks (no clamp)
    apply_orientation                upright as the file says (LibRaw ``flip``)
    write                            .exr: half (default) or float, ``chromaticities``, the
                                     capture's standard attributes (ISO, exposure ...);
                                     .tif/.tiff: 16-bit sRGB-encoded or linear (clipped to
                                     [0, 1]) with a matching ICC profile and the EXIF;
                                     .dng: LinearRaw DNG of unbalanced camera RGB, sensor
                                     orientation, the source's colour tags, EXIF, a preview

Output size = the raw file's visible area (LibRaw's ``raw_image_visible``), turned by the
orientation; no rows or columns are cropped for CFA alignment: the rows prepended to reach the
canonical phase are real pixels of the same colours from one period further in, and are
removed again after demosaicking.

Colour: ``color_space="srgb"`` (default) writes **linear** Rec.709/sRGB primaries with D65,
``"rec2020"`` linear Rec.2020, ``"acescg"`` linear AP1 (ACES white), all through
:func:`demosaic.color.camera_to_output_matrix` of the file's colour matrix;
``"camera"`` writes the camera's own RGB (white-balanced unless ``white_balance="none"``),
labelled with the camera's primaries. Nothing clamps in EXR output: highlights above 1.0 (and
small negatives) survive. Metadata: :mod:`demosaic.io.metadata`.

Failure safety: every writer goes through :func:`demosaic.io.atomic.atomic_path`, and the
raw file is fully read before anything is written, so a corrupt input raises
:class:`~demosaic.errors.RawReadError` and leaves no output (an older output stays intact).
"""

from __future__ import annotations

import glob
import inspect
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

import demosaic
from demosaic.color import (
    ACESCG_TO_XYZ,
    REC2020_TO_XYZ,
    SRGB_TO_XYZ,
    camera_to_output_matrix,
    chromaticities,
    normalize_multipliers,
)
from demosaic.models.checkpoint import DEFAULT_CHECKPOINT, SHIPPED_CHECKPOINTS, shipped_checkpoint
from demosaic.models.zoo import (
    ENSEMBLES,
    Method,
    ensemble_method,
    from_checkpoint,
    resolve_method,
)
from demosaic.inference.tiling import (
    DEFAULT_TILE,
    auto_overlap,
    Span,
    canonical_prepend,
    for_inference,
    frame_window,
    resolve_device,
    tiled_demosaic,
)
from demosaic.inference.highlights import (
    HIGHLIGHT_MODES,
    apply_highlights,
    clip_in_place,
    clip_mask,
)
from demosaic.errors import CFAError, ConfigError, DemosaicError, RawReadError, WriteError, one_line
from demosaic.io.atomic import sweep_stale_temporaries
from demosaic.io.clash import check_outputs
from demosaic.io.dng import FLIP_TO_TIFF_ORIENTATION, PREVIEW_SIDE, preview_image, write_linear_dng
from demosaic.io.icc import TRANSFERS, matrix_trc_profile
from demosaic.io.images import (
    EXR_COMPRESSIONS,
    half_range_exceeded,
    srgb_icc_profile,
    write_exr,
    write_tiff16,
)
from demosaic.io.raw import RawImage, apply_orientation, read_raw
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

COLOR_SPACES = ("camera", "srgb", "rec2020", "acescg")
#: Named values of ``white_balance`` (besides three multipliers ``"R,G,B"``).
WHITE_BALANCES = ("as_shot", "daylight", "none")
OUTPUT_EXTENSIONS = (".exr", ".tif", ".tiff", ".dng")
#: Models usable without a checkpoint, built for each file's CFA family: the parameter-free
#: ``bilinear`` and ``quality``, the family's packaged quality network as a geometric
#: self-ensemble (:func:`demosaic.models.zoo.ensemble_method`: X-Trans 2 views of the
#: quality network, about 11x the default's time on a 24 MP file on a CPU; Bayer 8 views of
#: its default).
BUILTIN_MODELS = ("bilinear", "quality")
#: Rows per chunk of the colour step: 32 rows of a 6000 px frame (2.3 MB of float32 RGB) stay
#: in the caches while they are multiplied, range-checked and converted.
_CHUNK_ROWS = 32
#: infer_file's output settings (what prepare_output reads; infer_batch's keyword arguments).
_SETTINGS = ("tile", "overlap", "color_space", "white_balance", "highlights", "float32",
             "exr_compression", "tiff_encoding", "amp", "progress")


# --------------------------------------------------------------------------------------
# Model source
# --------------------------------------------------------------------------------------


class ModelSource:
    """Where the demosaicker comes from: a checkpoint, the packaged models, or a built-in
    parameter-free model. Resolve once, then ask :meth:`for_family` per file.

    Without a checkpoint the packaged model of each file's CFA family is used
    (:data:`demosaic.models.checkpoint.SHIPPED_CHECKPOINTS`: X-Trans and Bayer), loaded on
    first use, so one folder may mix X-Trans and Bayer files. A checkpoint given by the user
    must match each file's family (:class:`~demosaic.errors.CFAError` otherwise).

    Args:
        checkpoint: Checkpoint ``.pt`` path; ``None`` = the packaged model per family.
        model: A name of :data:`BUILTIN_MODELS` (``"bilinear"``, ``"quality"``) instead of a
            checkpoint.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` ...
        views: Run a trained model (checkpoint, packaged or ``quality``) on this many
            flips/rotations of the mosaic and average (1, 2, 4, 8:
            :class:`~demosaic.models.ensemble.GeometricEnsemble`); ``None``: 1, or
            ``quality``'s own (:data:`demosaic.models.zoo.ENSEMBLES`).

    Raises:
        ConfigError: both or an unknown built-in model given, or ``views`` with ``bilinear``.
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
        if model is not None:
            if model not in BUILTIN_MODELS:
                raise ConfigError(f"unknown built-in model {model!r}; choose one of {BUILTIN_MODELS} "
                                  "or pass a trained checkpoint with --checkpoint")
            self._builtin = self.name = model
        elif checkpoint is not None:
            self._fixed = self._load(Path(checkpoint))
            self.name = self._fixed[1]["name"]
        else:
            if not any(p.is_file() for p in SHIPPED_CHECKPOINTS.values()):
                shipped_checkpoint("xtrans")  # raises the explanation
            self.name = "shipped"

    def _load(self, path: Path) -> tuple[nn.Module, dict[str, str]]:
        if self.views is not None and self.views > 1:
            return self._prepare(ensemble_method("ensemble", cfa=None, checkpoint=path,
                                                 views=self.views, device=self.device))
        return self._prepare(from_checkpoint(path, self.device))

    def _prepare(self, method: Method) -> tuple[nn.Module, dict[str, str]]:
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
                from demosaic.cfa import CANONICAL

                spec: dict[str, Any] = {"name": self._builtin}
                if self.views is not None and self._builtin in ENSEMBLES:
                    spec["views"] = self.views
                self._models[family] = self._prepare(resolve_method(
                    model=spec, cfa=CANONICAL[family].name, device=self.device))
            elif self._fixed is not None:
                self._models[family] = self._fixed
            else:
                self._models[family] = self._load(shipped_checkpoint(family))
        return self._models[family]

    def for_family(self, family: str, path: Path) -> nn.Module:
        """The model for a file whose sensor is ``family``.

        Raises:
            CFAError: a user checkpoint of another family.
            CheckpointError: no packaged model for ``family``.
        """
        module, info = self._resolve(family)
        pattern = module.pattern
        if pattern.family != family:
            raise CFAError(
                f"{path}: the file has a {_family_name(family)} sensor but the model "
                f"{info['description']} is for {_family_name(pattern.family)} "
                f"({pattern.name}) mosaics; pass a {_family_name(family)} checkpoint with "
                "--checkpoint, or --model bilinear")
        return module

    def info_for(self, family: str) -> dict[str, str]:
        """What :meth:`for_family` uses for ``family``: name, spec, checkpoint, step, run and
        a one-line description (recorded in output metadata)."""
        return self._resolve(family)[1]


def _family_name(family: str) -> str:
    return {"xtrans": "X-Trans", "bayer": "Bayer"}.get(family, family)


# --------------------------------------------------------------------------------------
# Single file
# --------------------------------------------------------------------------------------


class StageTimer:
    """Wall time per stage of one file: :meth:`lap` charges the time since the previous lap
    (or creation) to ``name``; :attr:`seconds` keeps them in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._t
        self._t = now


def _lap(timer: StageTimer | None, name: str) -> None:
    if timer is not None:
        timer.lap(name)


@dataclass
class InferResult:
    """One processed file.

    Attributes:
        input, output: Paths.
        size: ``(H, W)`` of the written image (after orientation).
        seconds: Wall time (read to write).
        skipped: ``True`` when the output existed and was left alone (batch mode).
        stages: Seconds per stage (read, white balance, pad, tiles, highlights, colour,
            orientation, write ...), in order.
    """

    input: Path
    output: Path
    size: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    skipped: bool = False
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def megapixels(self) -> float:
        return self.size[0] * self.size[1] / 1e6


def output_kind(path: Path) -> Literal["exr", "tiff", "dng"]:
    """``"exr"``, ``"tiff"`` or ``"dng"`` from the extension; ConfigError for anything else."""
    ext = path.suffix.lower()
    if ext == ".exr":
        return "exr"
    if ext in (".tif", ".tiff"):
        return "tiff"
    if ext == ".dng":
        return "dng"
    raise ConfigError(f"output {path}: unsupported extension {path.suffix!r}; use one of "
                      f"{OUTPUT_EXTENSIONS} (.exr keeps highlights above 1.0)")


def check_white_balance(value: str, key: str = "white_balance") -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``value`` is one of
    :data:`WHITE_BALANCES` or three positive multipliers ``"R,G,B"``."""
    _custom_multipliers(value, key)


def _custom_multipliers(value: str, key: str = "white_balance") -> np.ndarray | None:
    """``(3,)`` multipliers (G = 1) of a ``"R,G,B"`` white balance; ``None`` for a named one."""
    if value in WHITE_BALANCES:
        return None
    try:
        parts = [float(v) for v in str(value).split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or not all(np.isfinite(v) and v > 0 for v in parts):
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {list(WHITE_BALANCES)} "
                          "or three positive multipliers R,G,B (e.g. 2.1,1,1.5)")
    return normalize_multipliers(parts)


def output_multipliers(raw: RawImage, white_balance: str) -> np.ndarray:
    """``(3,)`` the white balance the output carries (G = 1): the file's as-shot multipliers,
    its camera's daylight (D65) ones, ``(1, 1, 1)`` for ``"none"`` (unbalanced camera RGB) or
    the given ``"R,G,B"``."""
    custom = _custom_multipliers(white_balance)
    if custom is not None:
        return custom
    if white_balance == "daylight":
        return normalize_multipliers(raw.daylight_multipliers)
    if white_balance == "none":
        return np.ones(3)
    return normalize_multipliers(raw.wb_multipliers)


def output_gain(raw: RawImage, white_balance: str) -> np.ndarray | None:
    """``(3,)`` per-channel factor from the as-shot-balanced output of the network to the
    balance asked for (:func:`output_multipliers` over the as-shot multipliers); ``None`` when
    that is the as-shot balance itself (within 1e-6)."""
    gain = output_multipliers(raw, white_balance) / normalize_multipliers(raw.wb_multipliers)
    return None if np.allclose(gain, 1.0, rtol=1e-6, atol=0.0) else gain


def color_transform(raw: RawImage, color_space: str, white_balance: str) -> np.ndarray | None:
    """The single ``(3, 3)`` matrix applied to the output of :func:`develop` (``None`` =
    identity).

    White balance is no longer part of it: :func:`develop` balances the **mosaic** before the
    network (LibRaw's order) and, for another ``white_balance``, rescales the output to it
    afterwards (``"none"``: the multipliers divided out again). ``color_space`` ``"srgb"``/``"rec2020"`` maps camera RGB to linear
    sRGB / Rec.2020 (D65); without white balance that matrix meets unbalanced camera RGB
    (neutral surfaces keep the sensor's colour cast, as LibRaw does with unit multipliers).
    """
    check_choice(color_space, COLOR_SPACES, "color_space")
    check_white_balance(white_balance)
    if color_space == "camera":
        return None
    try:
        return camera_to_output_matrix(raw.xyz_to_cam, color_space)
    except DemosaicError as exc:
        raise RawReadError(f"{raw.path}: cannot build the camera->{color_space} matrix: {exc}; "
                           "use --color-space camera") from None


def develop(
    raw: RawImage,
    net: nn.Module,
    *,
    device: torch.device,
    tile: int | None = DEFAULT_TILE,
    overlap: int | None = None,
    white_balance: str = "as_shot",
    highlights: str = "clip",
    amp: bool = False,
    progress: bool = False,
    timer: StageTimer | None = None,
) -> torch.Tensor:
    """The demosaicking part of :func:`infer_file`: raw mosaic in, camera RGB out.

    Every path that demosaics a raw file (``demosaic-infer``, the camera protocol of
    ``demosaic-eval``) goes through here, so the network always sees what it was trained on:

    1. the mosaic (observed phase, white = 1) times the file's as-shot multipliers (G = 1),
       each pixel by its filter colour: **balanced camera RGB**, as LibRaw balances before
       demosaicking; this happens whatever ``white_balance`` says;
    2. padded to canonical phase, demosaicked tile by tile, cropped back;
    3. clipped raw pixels handled by ``highlights`` (:mod:`demosaic.inference.highlights`):
       ``clip`` sets them to ``S = min(w)`` before the network (so a clipped area is neutral
       for the network too) and limits the output near them to ``S`` after it;
    4. another ``white_balance`` than ``"as_shot"`` (:func:`output_multipliers` ``t``): each
       channel times ``t_c / w_c``, exact for linear data; ``"none"`` (``t = 1``) gives
       unbalanced camera RGB; for ``"daylight"`` or ``"R,G,B"`` with ``clip``, the channels
       near clipped pixels are limited again to ``S min_c(t_c / w_c)``, so a clipped area
       stays neutral under the new balance (LibRaw clips at its multipliers' minimum too).

    Args:
        raw: From :func:`demosaic.io.raw.read_raw`.
        net: A demosaicker of the file's CFA family (canonical phase in, ``(1, 3, H, W)`` out).
        device, tile, overlap, amp, progress: See :func:`infer_file`.
        white_balance: ``"as_shot"``, ``"daylight"``, ``"none"`` or ``"R,G,B"``.
        highlights: One of :data:`demosaic.inference.highlights.HIGHLIGHT_MODES`.
        timer: Records the time of each step (:class:`StageTimer`), if given.

    Returns:
        ``(3, H, W)`` float32 CPU tensor in the file's visible area and sensor orientation;
        balanced camera RGB (green = 1 at the white level), values above 1.0 kept. Steps 1-2
        run window by window (:func:`_balance_window`): no balanced or padded copy of the
        mosaic is made.
    """
    check_white_balance(white_balance)
    check_choice(highlights, HIGHLIGHT_MODES, "highlights")
    mult = normalize_multipliers(raw.wb_multipliers)
    if tile and overlap is None:
        overlap = auto_overlap(net)
    # highlights="none" uses no mask (its noisy-plateau rule took 1.5 s on a noisy 24 MP frame)
    clipped = clip_mask(raw.cfa, raw.layout) if highlights != "none" else None
    _lap(timer, "clip mask")
    prepend = canonical_prepend(raw.alignment)
    device = resolve_device(device)  # the windows' device, where the balance runs
    prepare = _balance_window(raw, mult, clipped if highlights == "clip" else None, prepend, device)
    rgb = tiled_demosaic(net, raw.cfa, tile=tile, overlap=overlap, device=device,
                         amp=amp, progress=progress, prepend=prepend, prepare=prepare)
    _lap(timer, "white balance + tiles (network)")
    with torch.inference_mode():  # the tiled output is an inference tensor; clip works in place
        rgb = apply_highlights(rgb, clipped, raw.layout, mult, highlights)
        rgb = _rebalance(rgb, clipped, raw, mult, white_balance, highlights)
    _lap(timer, "highlights")
    return rgb


def _balance_window(raw: RawImage, mult: np.ndarray, clipped: torch.Tensor | None,
                    prepend: tuple[int, int], device: torch.device
                    ) -> Callable[[torch.Tensor, Span, Span], torch.Tensor]:
    """Steps 1 and 3 (input side) of :func:`develop`, window by window inside the tiling: each
    pixel times its colour's multiplier (:func:`~demosaic.color.white_balance_mosaic`'s
    float32 product) and, given ``clipped`` (the ``clip`` mode), clipped raw pixels set to
    ``min(mult)`` (:func:`~demosaic.inference.highlights.clip_mosaic`). The same numbers as
    balancing the whole mosaic first, without a balanced copy of it."""
    pattern = raw.alignment.pattern
    p = pattern.period
    gain = torch.from_numpy(mult[pattern.array].astype(np.float32))  # canonical: 0, 1, 2 only
    gain = gain.to(device).view(1, p, 1, p)
    level = float(np.float32(np.min(mult)))
    mask = clipped.to(device) if clipped is not None and bool(clipped.any()) else None

    def prepare(x: torch.Tensor, rows: Span, cols: Span) -> torch.Tensor:
        h, w = x.shape  # whole periods: windows are on the tiling's grid, in canonical phase
        x.view(h // p, p, w // p, p).mul_(gain)
        if mask is not None:
            x[frame_window(mask, rows, cols, prepend, p)] = level
        return x

    return prepare


def _rebalance(rgb: torch.Tensor, clipped: torch.Tensor | None, raw: RawImage, mult: np.ndarray,
               white_balance: str, highlights: str) -> torch.Tensor:
    """Step 4 of :func:`develop`: the as-shot-balanced output rescaled to
    :func:`output_multipliers` (``rgb`` itself when they are the as-shot ones)."""
    gain = output_gain(raw, white_balance)
    if gain is None:
        return rgb
    rgb = rgb * torch.from_numpy(gain.astype(np.float32)).view(3, 1, 1)
    if highlights == "clip" and white_balance != "none" and clipped is not None and bool(clipped.any()):
        level = float(np.min(mult)) * float(np.min(gain))
        rgb = clip_in_place(rgb, clipped, level, int(np.asarray(raw.layout).shape[0]))
    return rgb


def output_rgb_to_xyz(raw: RawImage, color_space: str, white_balance: str) -> np.ndarray | None:
    """``(3, 3)`` linear RGB -> XYZ of what :func:`infer_file` writes: Rec.709 / Rec.2020
    primaries with D65 for ``srgb`` / ``rec2020``, AP1 with the ACES white for ``acescg``;
    for ``camera``, the camera's own primaries (balanced camera RGB -> XYZ, white D65; with
    another ``white_balance`` the white moves with it: the camera's neutral for ``"none"``). ``None`` when the
    file's matrix cannot give them (logged)."""
    if color_space == "srgb":
        return SRGB_TO_XYZ
    if color_space == "rec2020":
        return REC2020_TO_XYZ
    if color_space == "acescg":
        return ACESCG_TO_XYZ
    try:
        to_xyz = camera_to_output_matrix(raw.xyz_to_cam, "xyz")
        gain = output_gain(raw, white_balance)
        if gain is not None:  # camera RGB balanced otherwise
            to_xyz = to_xyz @ np.diag(1.0 / gain)
        chromaticities(to_xyz)  # raises for a degenerate matrix
        return to_xyz
    except DemosaicError as exc:
        log.warning("%s: no primaries for camera RGB (%s); the output will not carry them",
                    raw.path, exc)
        return None


def output_chromaticities(raw: RawImage, color_space: str, white_balance: str
                          ) -> tuple[float, ...] | None:
    """The OpenEXR ``chromaticities`` of :func:`output_rgb_to_xyz` (``None`` without it)."""
    to_xyz = output_rgb_to_xyz(raw, color_space, white_balance)
    return None if to_xyz is None else chromaticities(to_xyz)


def output_icc_profile(raw: RawImage, color_space: str, white_balance: str,
                       transfer: str) -> bytes | None:
    """The ICC profile of a TIFF :func:`infer_file` writes: the output primaries and the
    TIFF's encoding (``"srgb"`` or ``"linear"``); ``None`` when the primaries are unknown."""
    if color_space == "srgb" and transfer == "srgb":
        return srgb_icc_profile()
    to_xyz = output_rgb_to_xyz(raw, color_space, white_balance)
    if to_xyz is None:
        return None
    names = {"srgb": "sRGB (Rec.709 primaries, D65)", "rec2020": "Rec.2020 (D65)",
             "acescg": "ACEScg (AP1)", "camera": f"{raw.make} {raw.model} camera RGB".strip()}
    label = ("Linear " if transfer == "linear" else "sRGB-encoded ") + names[color_space]
    return matrix_trc_profile(to_xyz, transfer, label)


def _apply_matrix_chunked(rgb: torch.Tensor, matrix: np.ndarray | None, dtype: np.dtype
                          ) -> np.ndarray:
    """``matrix @ rgb`` per pixel for a ``(3, H, W)`` float32 CPU tensor (any strides), in
    row chunks, into a new numpy array of ``dtype`` (float16 halves the memory of the EXR half
    path). torch's product and conversion: the same float32 sums as ``numpy.einsum`` in
    256-row chunks, whose colour stage took 0.40 s of a 24 MP frame against 0.05 s now
    (docs/BENCHMARKS.md, "Whole process after the speed work")."""
    if matrix is None and dtype == np.float32:
        return rgb.numpy()
    out = torch.empty(rgb.shape, dtype=torch.float16 if dtype == np.float16 else torch.float32)
    m = None if matrix is None else torch.from_numpy(np.asarray(matrix, dtype=np.float32))
    overflow = False
    for r0 in range(0, rgb.shape[1], _CHUNK_ROWS):
        chunk = rgb[:, r0:r0 + _CHUNK_ROWS]
        if m is not None:
            chunk = torch.einsum("ck,khw->chw", m, chunk)
        if dtype == np.float16 and not overflow:
            overflow = half_range_exceeded(chunk.numpy())
        out[:, r0:r0 + _CHUNK_ROWS] = chunk  # beyond +-65504 -> inf, warned about below
    if overflow:
        log.warning("values beyond the half-float range (+-65504) become inf; use --float")
    return out.numpy()


def _metadata(raw: RawImage, source: ModelSource, settings: dict[str, Any]) -> dict[str, str]:
    info = source.info_for(raw.family)
    return {
        "demosaic:version": demosaic.__version__,
        "demosaic:source": raw.path.name,
        "demosaic:camera": f"{raw.make} {raw.model}".strip(),
        "demosaic:model": info["description"],
        "demosaic:modelSpec": info["model"],
        "demosaic:checkpoint": info["checkpoint"],
        "demosaic:step": info["step"],
        "demosaic:colorSpace": settings["color_space"] + {
            "camera": "", "acescg": " linear (AP1, ACES white)"}.get(settings["color_space"],
                                                                    " linear D65"),
        "demosaic:whiteBalance": (
            f"{settings['white_balance']}: multipliers {settings['wb_multipliers']} applied to "
            "the mosaic before demosaicking" + {
                "as_shot": "",
                "none": ", divided out of the output (unbalanced camera RGB)",
            }.get(settings["white_balance"],
                  f"; output rebalanced to {settings['output_multipliers']}")),
        "demosaic:highlights": settings["highlights"],
        "demosaic:sourceOrientation": (f"TIFF orientation "
                                       f"{FLIP_TO_TIFF_ORIENTATION[raw.orientation]}, applied "
                                       "to the pixels"),
        "demosaic:settings": json.dumps(settings, sort_keys=True),
    }


def infer_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    model: str | None = None,
    source: ModelSource | None = None,
    device: str | torch.device | None = "auto",
    views: int | None = None,
    tile: int | None = DEFAULT_TILE,
    overlap: int | None = None,
    color_space: str = "srgb",
    white_balance: str = "as_shot",
    highlights: str = "clip",
    float32: bool = False,
    exr_compression: str = "piz",
    tiff_encoding: str = "srgb",
    amp: bool = False,
    progress: bool = False,
) -> InferResult:
    """Demosaic one raw file and write the result.

    Args:
        input_path: Camera raw LibRaw reads (RAF, DNG, NEF ...), X-Trans or Bayer.
        output_path: ``.exr`` (linear, unclamped; half unless ``float32``; standard
            ``chromaticities`` and capture attributes), ``.tif``/``.tiff`` (16-bit, encoded
            per ``tiff_encoding``, clipped to [0, 1], with a matching ICC profile and the
            source's EXIF) or ``.dng`` (a LinearRaw DNG for raw converters: unbalanced camera
            RGB, the source's colour matrices, as-shot neutral, orientation and EXIF, and an
            sRGB preview; ``color_space``/``white_balance`` do not apply).
            Replaced atomically if it exists, unless it is the input (or the checkpoint):
            that raises :class:`~demosaic.io.clash.OutputClashError` before any work.
        checkpoint: Checkpoint path (default: the packaged model, when shipped).
        model: ``"quality"`` (the packaged quality model, :data:`BUILTIN_MODELS`) or
            ``"bilinear"`` (parameter-free) instead of a checkpoint.
        source: An already resolved :class:`ModelSource` (batch use); overrides the above.
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"`` ...
        views: Geometric self-ensemble of a trained model (:class:`ModelSource`).
        tile, overlap: Window side and discarded context in px (see
            :func:`demosaic.inference.tiling.tiled_demosaic`); ``tile=None``/0: whole image;
            ``overlap=None``: the model's receptive field (tiled = whole-image output).
        color_space: ``"srgb"`` (default: linear Rec.709 primaries, D65), ``"rec2020"``,
            ``"acescg"`` or ``"camera"`` (the camera's own RGB), all linear.
        white_balance: ``"as_shot"`` (default) or ``"none"``. The network always sees the
            mosaic balanced with the as-shot multipliers (see :func:`develop`); ``"none"``
            divides them out of the output again (unbalanced camera RGB).
        highlights: ``"clip"`` (default: clipped areas neutral, unclipped values above 1.0
            kept), ``"reconstruct"`` or ``"none"`` (:mod:`demosaic.inference.highlights`).
        float32: EXR with 32-bit floats instead of half.
        exr_compression: Lossless EXR compression, one of
            :data:`demosaic.io.images.EXR_COMPRESSIONS` (default ``"piz"``).
        tiff_encoding: ``"srgb"`` (default) or ``"linear"`` values in a TIFF.
        amp: float16 autocast on CUDA/MPS.
        progress: tqdm bar over tiles.

    Returns:
        :class:`InferResult`.

    Raises:
        RawReadError: unreadable/corrupt input (no output written).
        CFAError: model and file CFA families differ (no output written).
        ConfigError / CheckpointError: bad settings or checkpoint.
    """
    t0 = time.perf_counter()
    timer = StageTimer()
    inp, out = Path(input_path), Path(output_path)
    settings = dict(tile=tile, overlap=overlap, color_space=color_space,
                    white_balance=white_balance, highlights=highlights, float32=float32,
                    exr_compression=exr_compression, tiff_encoding=tiff_encoding, amp=amp,
                    progress=progress)
    check_output_settings(out, settings)
    check_outputs(_inputs_of([inp], checkpoint), [out], hint=CLASH_HINT)
    sweep_stale_temporaries(out.parent)
    if source is None:
        source = ModelSource(checkpoint, model, device, views)
    _lap(timer, "model")
    raw = read_raw(inp)
    _lap(timer, "read raw")
    size, write = prepare_output(raw, out, source, settings, timer)
    write()
    _lap(timer, "write")
    result = InferResult(inp, out, size, time.perf_counter() - t0, stages=timer.seconds)
    log.info("wrote %s (%dx%d, %.1f s)", out, result.size[1], result.size[0], result.seconds)
    log.debug("stages: %s", ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items()))
    return result


def check_output_settings(out: Path, settings: dict[str, Any]) -> None:
    """Validate the output name and the choices of :func:`infer_file` before any work."""
    output_kind(out)
    check_choice(settings["color_space"], COLOR_SPACES, "color_space")
    check_white_balance(settings["white_balance"])
    check_choice(settings["highlights"], HIGHLIGHT_MODES, "highlights")
    check_choice(settings["tiff_encoding"], TRANSFERS, "tiff_encoding")
    check_choice(settings["exr_compression"], EXR_COMPRESSIONS, "exr_compression")


def prepare_output(raw: RawImage, out: Path, source: ModelSource, settings: dict[str, Any],
                   timer: StageTimer | None = None) -> tuple[tuple[int, int], Callable[[], Any]]:
    """Everything :func:`infer_file` does between reading and writing: demosaic ``raw`` and
    build the output image and its metadata.

    Args:
        settings: :func:`infer_file`'s ``tile``, ``overlap``, ``color_space``,
            ``white_balance``, ``highlights``, ``float32``, ``tiff_encoding``, ``amp``,
            ``progress``.

    Returns:
        ``(upright (H, W), write)``: calling ``write()`` writes ``out`` atomically (the batch
        runs it on a writer thread while the next file is demosaicked).
    """
    kind = output_kind(out)
    net = source.for_family(raw.family, raw.path).to(source.device)
    tile, overlap = settings["tile"], settings["overlap"]
    if tile and overlap is None:
        overlap = auto_overlap(net)
    _lap(timer, "model")  # loaded on first use of the family (and its receptive field)
    mult = normalize_multipliers(raw.wb_multipliers)
    h, w = raw.cfa.shape
    log.info("%s: %s %s, %s %dx%d, phase offset (%d, %d), as-shot multipliers %s",
             raw.path.name, raw.make, raw.model, _family_name(raw.family), w, h,
             raw.alignment.dy, raw.alignment.dx, np.round(mult, 4).tolist())
    run = dict(device=source.device, tile=tile, overlap=overlap, highlights=settings["highlights"],
               amp=settings["amp"], progress=settings["progress"], timer=timer)
    if kind == "dng":  # a raw converter's input: unbalanced camera RGB, sensor orientation
        wb = settings["white_balance"]
        neutral = 1.0 / (mult if wb == "none" else output_multipliers(raw, wb))
        return _linear_dng_output(out, raw, develop(raw, net, white_balance="none", **run), neutral)
    color_space, white_balance = settings["color_space"], settings["white_balance"]
    matrix = color_transform(raw, color_space, white_balance)
    rgb = develop(raw, net, white_balance=white_balance, **run)
    float32 = settings["float32"]
    dtype = np.float16 if kind == "exr" and not float32 else np.float32
    h, w = int(rgb.shape[1]), int(rgb.shape[2])
    size = (w, h) if raw.orientation & 4 else (h, w)

    def finish() -> np.ndarray:
        """Colour and orientation: part of the write, so a batch runs them on its writer thread."""
        img = _apply_matrix_chunked(rgb, matrix, dtype)
        _lap(timer, "colour")
        img = apply_orientation(img, raw.orientation)
        _lap(timer, "orientation")
        return img

    if kind == "exr":
        record = {
            "color_space": color_space, "white_balance": white_balance,
            "white_balance_applied": "mosaic before the network" + (
                "" if white_balance == "as_shot" else ", output rescaled after"),
            "wb_multipliers": [round(float(v), 6) for v in raw.wb_multipliers],
            "output_multipliers": [round(float(v), 6)
                                   for v in output_multipliers(raw, white_balance)],
            "highlights": settings["highlights"], "tile": tile, "overlap": overlap,
            "device": str(source.device), "amp": settings["amp"],
            "orientation_flip": raw.orientation,
            "cfa_phase_offset": [raw.alignment.dy, raw.alignment.dx],
            "format": "exr float32" if float32 else "exr half",
            "compression": settings["exr_compression"],
        }
        meta = _metadata(raw, source, record)
        chroma = output_chromaticities(raw, color_space, white_balance)
        attributes = raw.metadata.exr_attributes()
        return size, lambda: write_exr(out, finish(), half=not float32, metadata=meta,
                                       chromaticities=chroma, attributes=attributes,
                                       compression=settings["exr_compression"])
    encoding = settings["tiff_encoding"]
    icc = output_icc_profile(raw, color_space, white_balance, encoding)
    exif = raw.metadata.exif(orientation=1)
    return size, lambda: write_tiff16(out, finish(), srgb=encoding == "srgb", icc_profile=icc,
                                      exif=exif)


def _linear_dng_output(out: Path, raw: RawImage, rgb: torch.Tensor, neutral: np.ndarray
                       ) -> tuple[tuple[int, int], Callable[[], Any]]:
    """:func:`develop`'s unbalanced camera RGB as a linear DNG with an sRGB preview and the
    source's EXIF (and DNG colour tags): the upright ``(H, W)`` a converter shows, and the
    function that writes it. ``neutral``: its ``AsShotNeutral`` (the as-shot one, or the
    white balance asked for)."""
    arr = rgb.numpy()
    preview = None
    try:
        to_srgb = (camera_to_output_matrix(raw.xyz_to_cam, "srgb")
                   @ np.diag(1.0 / neutral)).astype(np.float32)
        k = max(1, -(-max(arr.shape[1:]) // PREVIEW_SIDE))
        preview = preview_image(np.einsum("ck,khw->chw", to_srgb, arr[:, ::k, ::k]))
    except DemosaicError as exc:
        log.warning("%s: no DNG preview (%s)", raw.path, exc)
    exif = raw.metadata.exif()
    exif.update({f"Exif.Image.{tag}": value for tag, value in raw.metadata.dng_colour.items()})
    h, w = int(arr.shape[1]), int(arr.shape[2])
    return ((w, h) if raw.orientation & 4 else (h, w)), lambda: write_linear_dng(
        out, arr, xyz_to_cam=raw.xyz_to_cam, as_shot_neutral=neutral, make=raw.make,
        model=raw.model, orientation=FLIP_TO_TIFF_ORIENTATION[raw.orientation],
        preview=preview, exif=exif)


# --------------------------------------------------------------------------------------
# Batch
# --------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """Outcome of :func:`infer_batch`: written, skipped (output existed) and failed files."""

    done: list[InferResult] = field(default_factory=list)
    skipped: list[InferResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _raw_extensions() -> tuple[str, ...]:
    from demosaic.data.shards import RAW_EXTENSIONS

    return RAW_EXTENSIONS


def is_glob(spec: str) -> bool:
    """Whether ``spec`` contains glob wildcards (``*``, ``?``, ``[``)."""
    return any(ch in spec for ch in "*?[")


def _camera_raws(paths: Iterable[Path]) -> list[Path]:
    """``paths`` sorted, less the linear DNGs this tool wrote (earlier outputs found in a
    folder or by a pattern; named one by one, they are refused as not being raw mosaics)."""
    from demosaic.io.dng import is_own_linear_dng

    keep, own = [], []
    for f in sorted(paths):
        (own if f.suffix.lower() == ".dng" and is_own_linear_dng(f) else keep).append(f)
    if own:
        log.info("not reading %d linear DNG(s) written by demosaic-infer as inputs: %s",
                 len(own), ", ".join(f.name for f in own[:5]) + (" ..." if len(own) > 5 else ""))
    return keep


def collect_inputs(spec: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand a file, a folder (its raw files, by extension, not recursive) or a glob
    pattern (``**`` recurses), or a list of those, into a sorted list of files.

    Raises:
        ConfigError: when nothing matches.
    """
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    found: list[Path] = []
    exts = _raw_extensions()
    for s in specs:
        p = Path(s)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += _camera_raws(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in exts)
        elif is_glob(str(s)):
            found += _camera_raws(Path(f) for f in glob.glob(str(s), recursive=True)
                                  if Path(f).is_file())
        else:
            raise ConfigError(f"input {s} is neither a file, a folder nor a glob pattern; check "
                              "the path")
    unique = sorted(dict.fromkeys(found))
    if not unique:
        raise ConfigError(f"no raw files found in {', '.join(map(str, specs))} (extensions "
                          f"{', '.join(exts)}); check the folder or pattern")
    return unique


def output_for(input_path: Path, output_dir: Path, ext: str, suffix: str = "") -> Path:
    """``output_dir / (input stem + suffix + ext)``."""
    return output_dir / (input_path.stem + suffix + ext)


#: What to do about a clash, for the command line's users.
CLASH_HINT = ("write to another folder, or keep the folder and name the outputs apart with "
              "--suffix (e.g. --suffix _dm)")


def _inputs_of(files: Sequence[Path], checkpoint: str | os.PathLike[str] | None) -> list[Path]:
    """What a run reads: the raw files and the checkpoint, if one is named."""
    return [*files, *([Path(checkpoint)] if checkpoint else [])]


def plan_batch(files: list[Path], output_dir: Path, ext: str, suffix: str = "",
               checkpoint: str | os.PathLike[str] | None = None) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs of a batch, checked before any work.

    Raises:
        OutputClashError: an output would replace an input (or the checkpoint), or two
            outputs are one file (:func:`demosaic.io.clash.check_outputs`).
    """
    pairs = [(f, output_for(f, output_dir, ext, suffix)) for f in files]
    check_outputs(_inputs_of(files, checkpoint), [t for _, t in pairs],
                  hint=CLASH_HINT + ", or process same-named inputs in separate runs")
    return pairs


def infer_batch(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    ext: str = ".exr",
    suffix: str = "",
    overwrite: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    model: str | None = None,
    device: str | torch.device | None = "auto",
    views: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> BatchResult:
    """Demosaic many raw files into ``output_dir`` (``<stem><suffix><ext>`` each).

    Every output is checked against every input first (:func:`plan_batch`): an output never
    replaces a source, ``overwrite`` included. Files whose output exists are skipped unless
    ``overwrite``; a file that fails (corrupt, wrong CFA family) is logged and reported in
    :attr:`BatchResult.failed`, and the batch goes on. Partial files that a killed run left in
    ``output_dir`` are removed first (:func:`demosaic.io.atomic.sweep_stale_temporaries`).
    ``kwargs`` are :func:`infer_file`'s settings (tile, overlap, color_space, white_balance,
    highlights, float32, tiff_encoding, amp). The model is loaded once; the next file is read
    and the previous output written on their own threads while the network runs.

    Raises:
        ConfigError: no inputs or a bad extension; OutputClashError: see :func:`plan_batch`.
    """
    files = collect_inputs(inputs)
    out_dir = Path(output_dir)
    output_kind(Path("x" + ext))
    pairs = plan_batch(files, out_dir, ext, suffix, checkpoint)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot make the output folder {out_dir}: {exc.strerror}; choose "
                         "another folder") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise WriteError(f"the output folder {out_dir} is not writable (read-only file system "
                         "or no permission); choose another folder. Nothing was written")
    sweep_stale_temporaries(out_dir)
    source = ModelSource(checkpoint, model, device, views)
    result = BatchResult()
    todo = []
    for f, t in pairs:
        if t.exists() and not overwrite:
            result.skipped.append(InferResult(f, t, skipped=True))
        else:
            todo.append((f, t))
    if result.skipped:
        log.info("skipping %d file(s) whose output exists in %s (pass --overwrite to redo them)",
                 len(result.skipped), out_dir)
    _pipeline(todo, source, kwargs, result, progress)
    log.info("batch: %d written, %d skipped, %d failed", len(result.done), len(result.skipped),
             len(result.failed))
    return result


def _read(path: Path) -> RawImage | DemosaicError:
    """``read_raw`` for the reader thread: a failure is returned, to be reported in order."""
    try:
        return read_raw(path)
    except DemosaicError as exc:
        return exc


def _pipeline(todo: list[tuple[Path, Path]], source: ModelSource, kwargs: dict[str, Any],
              result: BatchResult, progress: bool) -> None:
    """Demosaic ``todo`` with the next file read and the previous output written on two
    threads while the network runs (at most one raw file ahead and one output behind, so
    memory stays bounded). Outputs are the same as :func:`infer_file`'s."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm.auto import tqdm

    settings = {k: p.default for k, p in inspect.signature(infer_file).parameters.items()
                if k in _SETTINGS}  # infer_file's defaults: one source of truth
    unknown = sorted(set(kwargs) - set(settings))
    if unknown:
        raise ConfigError(f"infer_batch: unknown setting(s) {unknown}; valid: {sorted(settings)}")
    settings.update(kwargs)
    check_output_settings(todo[0][1] if todo else Path("x.exr"), settings)
    bar = tqdm(total=len(todo), desc="demosaic", unit="file", disable=not progress)
    pending: tuple[Path, Path, tuple[int, int], float, Future] | None = None

    def finish(item: tuple[Path, Path, tuple[int, int], float, Future] | None) -> None:
        if item is None:
            return
        f, t, size, t0, future = item
        try:
            future.result()
            result.done.append(InferResult(f, t, size, time.perf_counter() - t0))
            log.info("wrote %s (%dx%d)", t, size[1], size[0])
        except DemosaicError as exc:
            log.error("%s", one_line(exc))
            result.failed.append((f, one_line(exc)))
        bar.update(1)

    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        ahead = reader.submit(_read, todo[0][0]) if todo else None
        for i, (f, t) in enumerate(todo):
            t0 = time.perf_counter()
            raw = ahead.result()  # type: ignore[union-attr]
            ahead = reader.submit(_read, todo[i + 1][0]) if i + 1 < len(todo) else None
            bar.set_postfix_str(f.name)
            try:
                if isinstance(raw, DemosaicError):
                    raise raw
                size, write = prepare_output(raw, t, source, settings)
                del raw
            except DemosaicError as exc:
                log.error("%s", one_line(exc))
                result.failed.append((f, one_line(exc)))
                bar.update(1)
                continue
            finish(pending)  # at most one output waits for its writer
            pending = (f, t, size, t0, writer.submit(write))
        finish(pending)
    bar.close()


__all__ = ["ModelSource", "InferResult", "StageTimer", "BatchResult", "infer_file", "infer_batch",
           "collect_inputs", "color_transform", "develop", "HIGHLIGHT_MODES", "output_kind", "DEFAULT_CHECKPOINT",
           "COLOR_SPACES", "WHITE_BALANCES", "BUILTIN_MODELS", "check_white_balance",
           "output_gain", "output_multipliers"]
