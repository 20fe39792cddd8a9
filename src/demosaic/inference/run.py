"""One raw file in, one output file out: :func:`infer_file` (``demosaic-infer IN OUT``).

Pipeline::

    read_raw(path)       visible area, (H, W) float32 linear, observed CFA phase
    model                the file's CFA family's (models.zoo.ModelSource: CFAError otherwise)
    colour plan          as-shot multipliers normalised once; output balance, matrix ...
                         (inference.colour.plan_colour)
    develop              balanced mosaic -> network -> highlights -> output balance
                         (inference.develop)
    write                colour matrix, orientation, EXR / TIFF / linear DNG and metadata
                         (inference.writers), atomically

Output size = the raw file's visible area (LibRaw's ``raw_image_visible``), turned by the
orientation; no rows or columns are cropped for CFA alignment. Nothing clamps in EXR output:
highlights above 1.0 (and small negatives) survive.

Failure safety: every writer goes through :func:`demosaic.io.atomic.atomic_path`, and the
raw file is fully read before anything is written, so a corrupt input raises
:class:`~demosaic.errors.RawReadError` and leaves no output (an older output stays intact).
Outputs are checked against the inputs first (:func:`demosaic.io.clash.check_outputs`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from demosaic.inference.colour import plan_colour
from demosaic.inference.develop import StageTimer, develop, lap
from demosaic.inference.settings import InferSettings, output_kind
from demosaic.inference.tiling import DEFAULT_TILE, auto_overlap
from demosaic.inference.writers import (
    Output,
    exr_output,
    linear_dng_output,
    run_record,
    tiff_output,
)
from demosaic.io.atomic import sweep_stale_temporaries
from demosaic.io.clash import check_outputs
from demosaic.io.raw import RawImage, read_raw
from demosaic.models.zoo import ModelSource, family_name
from demosaic.noise.source import file_profile

log = logging.getLogger(__name__)

#: What to do about a clash, for the command line's users.
CLASH_HINT = ("write to another folder, or keep the folder and name the outputs apart with "
              "--suffix (e.g. --suffix _dm)")


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


def run_inputs(files: Sequence[Path], checkpoint: str | os.PathLike[str] | None) -> list[Path]:
    """What a run reads: the raw files and the checkpoint, if one is named (the paths no
    output may replace)."""
    return [*files, *([Path(checkpoint)] if checkpoint else [])]


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
    noise: str | None = None,
    denoise: float = 1.0,
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
        model: A name of :data:`demosaic.models.zoo.MODEL_NAMES` instead of a checkpoint:
            ``"quality"`` (the packaged quality model), ``"bilinear"`` (parameter-free) or a
            tag of the packaged weights (``"xtrans.default"`` ...).
        source: An already resolved :class:`~demosaic.models.zoo.ModelSource` (batch use);
            overrides the above.
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"`` ...
        views: Geometric self-ensemble of a trained model (:class:`ModelSource`).
        tile, overlap, color_space, white_balance, highlights, float32, exr_compression,
            tiff_encoding, amp, progress, noise, denoise:
            :class:`~demosaic.inference.settings.InferSettings`.
            The network always sees the mosaic balanced with the as-shot multipliers (see
            :func:`~demosaic.inference.develop.develop`); another ``white_balance`` rescales
            the output.

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
    settings = InferSettings(tile=tile, overlap=overlap, color_space=color_space,
                             white_balance=white_balance, highlights=highlights, float32=float32,
                             exr_compression=exr_compression, tiff_encoding=tiff_encoding,
                             amp=amp, progress=progress, noise=noise, denoise=denoise)
    settings.check(out)
    check_outputs(run_inputs([inp], checkpoint), [out], hint=CLASH_HINT)
    sweep_stale_temporaries(out.parent)
    if source is None:
        source = ModelSource(checkpoint, model, device, views)
    lap(timer, "model")
    raw = read_raw(inp)
    lap(timer, "read raw")
    size, write = prepare_output(raw, out, source, settings, timer)
    write()
    lap(timer, "write")
    result = InferResult(inp, out, size, time.perf_counter() - t0, stages=timer.seconds)
    log.info("wrote %s (%dx%d, %.1f s)", out, result.size[1], result.size[0], result.seconds)
    log.debug("stages: %s", ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items()))
    return result


def prepare_output(raw: RawImage, out: Path, source: ModelSource, settings: InferSettings,
                   timer: StageTimer | None = None) -> Output:
    """Everything :func:`infer_file` does between reading and writing: plan the colour,
    develop ``raw`` and build the output image and its metadata.

    Returns:
        ``(upright (H, W), write)``: calling ``write()`` writes ``out`` atomically (the batch
        runs it on a writer thread while the next file is demosaicked).
    """
    kind = output_kind(out)
    net = source.for_family(raw.family, raw.path).to(source.device)
    overlap = settings.overlap
    if settings.tile and overlap is None:
        overlap = auto_overlap(net)
    lap(timer, "model")  # loaded on first use of the family (and its receptive field)
    colour = plan_colour(raw, settings.color_space, settings.white_balance)
    h, w = raw.cfa.shape
    log.info("%s: %s %s, %s %dx%d, phase offset (%d, %d), as-shot multipliers %s",
             raw.path.name, raw.make, raw.model, family_name(raw.family), w, h,
             raw.alignment.dy, raw.alignment.dx, np.round(colour.as_shot, 4).tolist())
    profile = None
    if getattr(net, "noise_input", False):
        profile = file_profile(raw, settings.noise_override())
        lap(timer, "noise level")
    elif settings.noise is not None or settings.denoise != 1.0:
        _warn_level_ignored(raw.family)
    run = dict(device=source.device, tile=settings.tile, overlap=overlap,
               highlights=settings.highlights, amp=settings.amp, progress=settings.progress,
               timer=timer, noise=profile, denoise=settings.denoise)
    if kind == "dng":  # a raw converter's input: unbalanced camera RGB, sensor orientation
        rgb = develop(raw, net, colour=colour.unbalanced(), **run)
        return linear_dng_output(out, raw, rgb, colour.dng_neutral)
    _ = colour.matrix  # a file without a usable matrix fails here, before the network
    rgb = develop(raw, net, colour=colour, **run)
    if kind == "exr":
        record = run_record(raw, colour, settings, overlap, source.device, profile)
        return exr_output(out, raw, rgb, colour, settings, record, source.info_for(raw.family),
                          timer)
    return tiff_output(out, raw, rgb, colour, settings.tiff_encoding, timer)


#: CFA families already told that their network ignores --noise / --denoise (once a process).
_TOLD_IGNORED: set[str] = set()


def _warn_level_ignored(family: str) -> None:
    """Warn once per family that ``--noise`` / ``--denoise`` do nothing for its network."""
    if family in _TOLD_IGNORED:
        return
    _TOLD_IGNORED.add(family)
    log.warning("--noise / --denoise ignored: this %s network takes no noise level (the "
                "noise-aware model: --model xtrans.denoise, for X-Trans files)", family_name(family))


__all__ = ["CLASH_HINT", "InferResult", "infer_file", "prepare_output", "run_inputs"]
