"""The settings of one ``demosaic-infer`` run: one dataclass, validated before any work.

:func:`demosaic.inference.run.infer_file` and :func:`demosaic.inference.batch.infer_batch`
keep their keyword arguments; both build an :class:`InferSettings` from them, and everything
below them (develop, colour, writers) reads that one object.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from demosaic.color import normalize_multipliers
from demosaic.errors import ConfigError
from demosaic.inference.highlights import HIGHLIGHT_MODES
from demosaic.inference.tiling import DEFAULT_TILE
from demosaic.io.icc import TRANSFERS
from demosaic.noise.profile import NoiseProfile
from demosaic.noise.source import check_strength
from demosaic.io.images import EXR_COMPRESSIONS
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

COLOR_SPACES = ("camera", "srgb", "rec2020", "acescg")
#: Named values of ``white_balance`` (besides three multipliers ``"R,G,B"``).
WHITE_BALANCES = ("as_shot", "daylight", "none")
OUTPUT_EXTENSIONS = (".exr", ".tif", ".tiff", ".dng")


@dataclass
class InferSettings:
    """How to develop and write each file (the keyword arguments of ``infer_file``).

    Attributes:
        tile, overlap: Window side and discarded context in px
            (:func:`demosaic.inference.tiling.tiled_demosaic`); ``tile=None``/0: whole image;
            ``overlap=None``: the model's receptive field.
        color_space: One of :data:`COLOR_SPACES` (all linear).
        white_balance: One of :data:`WHITE_BALANCES` or ``"R,G,B"`` multipliers.
        highlights: One of :data:`demosaic.inference.highlights.HIGHLIGHT_MODES`.
        float32: EXR with 32-bit floats instead of half.
        exr_compression: One of :data:`demosaic.io.images.EXR_COMPRESSIONS`.
        tiff_encoding: ``"srgb"`` or ``"linear"`` TIFF values (:data:`demosaic.io.icc.TRANSFERS`).
        amp: float16 autocast on CUDA/MPS.
        progress: tqdm bar over tiles.
        noise: ``"S,O"`` or ``"S_R,O_R,S_G,O_G,S_B,O_B"`` (``--noise``): the file's noise
            level instead of its DNG ``NoiseProfile`` or the estimate
            (:func:`demosaic.noise.source.file_profile`); ``None``: from the file.
        denoise: ``--denoise``: the noise map given to a noise-aware network is scaled by this
            up to 1 (0 = demosaic only, the grain kept; 1 = the level the file has); above 1
            the output's chroma is smoothed too (:mod:`demosaic.inference.chroma`). Models
            without the noise input ignore both (a warning says so, once a process).
    """

    tile: int | None = DEFAULT_TILE
    overlap: int | None = None
    color_space: str = "srgb"
    white_balance: str = "as_shot"
    highlights: str = "clip"
    float32: bool = False
    exr_compression: str = "piz"
    tiff_encoding: str = "srgb"
    amp: bool = False
    progress: bool = False
    noise: str | None = None
    denoise: float = 1.0

    @classmethod
    def from_kwargs(cls, where: str, **kwargs: Any) -> InferSettings:
        """Settings from keyword arguments (defaults for the others).

        Raises:
            ConfigError: an unknown name (the message names ``where`` and lists the valid ones).
        """
        names = sorted(f.name for f in fields(cls))
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; valid: {names}")
        return cls(**kwargs)

    def check(self, out: Path) -> None:
        """Validate the output name and every choice before any work (ConfigError naming the
        setting)."""
        output_kind(out)
        check_choice(self.color_space, COLOR_SPACES, "color_space")
        check_white_balance(self.white_balance)
        check_choice(self.highlights, HIGHLIGHT_MODES, "highlights")
        check_choice(self.tiff_encoding, TRANSFERS, "tiff_encoding")
        check_choice(self.exr_compression, EXR_COMPRESSIONS, "exr_compression")
        self.noise_override()
        check_strength(self.denoise)

    def noise_override(self) -> NoiseProfile | None:
        """The ``--noise`` profile, or ``None`` (ConfigError naming ``--noise`` when invalid)."""
        return None if self.noise in (None, "") else NoiseProfile.parse(str(self.noise))


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
    custom_multipliers(value, key)


def custom_multipliers(value: str, key: str = "white_balance") -> np.ndarray | None:
    """``(3,)`` multipliers (G = 1) of a ``"R,G,B"`` white balance; ``None`` for a named one.

    Raises:
        ConfigError: neither a name of :data:`WHITE_BALANCES` nor three positive numbers.
    """
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


__all__ = ["COLOR_SPACES", "InferSettings", "OUTPUT_EXTENSIONS", "WHITE_BALANCES",
           "check_white_balance", "custom_multipliers", "output_kind"]
