"""LibRaw's own development, in one place: the settings every measurement uses, the
512 px minimum of its X-Trans demosaickers, and its OpenMP threads.

:func:`develop` is the only call of rawpy's ``postprocess`` in the package: the LibRaw
baselines (:mod:`demosaic.models.baselines`, through :func:`develop_mosaic`), the raw teacher
(:mod:`demosaic.data.teacher`) and the camera protocol (:mod:`demosaic.evaluation.camera`)
all develop through it, so a teacher and a baseline cannot differ in a setting
(``tests/io/test_libraw.py`` pins them). It returns **balanced camera RGB** ``(3, H, W)``
float32: LibRaw's 16-bit output divided by 65535 and multiplied by the smallest white-balance
multiplier (LibRaw divides the multipliers by their minimum, so the channel with that
multiplier reaches 1.0 at the white level, as :func:`demosaic.inference.develop.develop`).

LibRaw's Markesteijn (X-Trans, requested as AHD/DCB/DHT/AAHD/PPG) fails with an I/O error on
an image with a side under :data:`MIN_SIDE` px. :func:`develop_mosaic` develops a mosaic
array: it extends it bottom/right with whole CFA periods (:func:`demosaic.cfa.phase_extend`,
so the layout is unchanged) to at least that size, writes it as a temporary DNG (black 0,
white 65535) and crops the output back. A file that is already large enough (or a padded
copy of one, as the camera protocol caches) goes to :func:`develop` directly.

:func:`libraw_params` writes rawpy's ``postprocess`` settings:

- ``adjust_maximum_thr=0``: the file's white level, never a data-dependent one (LibRaw's
  default 0.75 brightens a file whose data peaks between 75 % and 100 % of white);
- ``no_auto_bright``, ``bright=1``, ``gamma=(1, 1)``, 16-bit output: linear values, no
  histogram stretch;
- ``highlight_mode=clip``, ``user_flip=0`` (sensor orientation), full size, three colours, no
  median filter;
- white balance: ``"camera"`` (as shot), or explicit multipliers, or none (``(1, 1, 1)``);
- output colour: camera RGB (``"raw"``) or sRGB primaries (``"srgb"``, still linear).

:func:`libraw_single_thread` limits LibRaw's OpenMP runtime (rawpy wheels carry a private
``libgomp``) to one thread for a block of calls, through threadpoolctl, for outputs that do not
depend on the thread count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from demosaic.errors import ConfigError, RawReadError

if TYPE_CHECKING:
    from demosaic.io.raw import RawImage

log = logging.getLogger(__name__)

OUTPUT_COLORS = ("raw", "srgb")
#: LibRaw's Markesteijn (X-Trans) fails (I/O error) on an image with a side under this many px.
MIN_SIDE = 512

WhiteBalance = Literal["camera"] | Sequence[float]


def libraw_params(algorithm: str, white_balance: Literal["camera"] | Sequence[float] = (1, 1, 1),
                  output: str = "raw") -> Any:
    """rawpy ``Params`` for a measurement-grade LibRaw development.

    Args:
        algorithm: ``rawpy.DemosaicAlgorithm`` member name: ``"AHD"`` (Markesteijn 3-pass on
            X-Trans), ``"PPG"`` (1-pass on X-Trans), ``"DHT"``, ``"AAHD"``, ``"DCB"``,
            ``"VNG"``, ``"LINEAR"``.
        white_balance: ``"camera"`` (the file's as-shot multipliers) or ``(R, G, B)``
            multipliers applied to the mosaic (``(1, 1, 1)``: none).
        output: ``"raw"`` (camera RGB) or ``"srgb"`` (linear sRGB primaries).

    Raises:
        ConfigError: an unknown algorithm, output or malformed multipliers.
    """
    import rawpy

    if algorithm not in rawpy.DemosaicAlgorithm.__members__:
        raise ConfigError(f"unknown LibRaw demosaic algorithm {algorithm!r}; choose one of "
                          f"{sorted(rawpy.DemosaicAlgorithm.__members__)}")
    if output not in OUTPUT_COLORS:
        raise ConfigError(f"LibRaw output colour {output!r}: choose one of {OUTPUT_COLORS}")
    wb: dict[str, Any]
    if isinstance(white_balance, str):
        if white_balance != "camera":
            raise ConfigError(f"LibRaw white balance {white_balance!r}: 'camera' or (R, G, B)")
        wb = {"use_camera_wb": True}
    else:
        m = [float(v) for v in white_balance]
        if len(m) != 3:
            raise ConfigError(f"LibRaw white balance needs 3 multipliers (R, G, B), got {m}")
        wb = {"use_camera_wb": False, "user_wb": [m[0], m[1], m[2], m[1]]}
    return rawpy.Params(
        demosaic_algorithm=rawpy.DemosaicAlgorithm[algorithm],
        output_color=rawpy.ColorSpace.raw if output == "raw" else rawpy.ColorSpace.sRGB,
        use_auto_wb=False, no_auto_bright=True, bright=1.0, gamma=(1.0, 1.0), output_bps=16,
        adjust_maximum_thr=0.0, highlight_mode=rawpy.HighlightMode.Clip, user_flip=0,
        half_size=False, four_color_rgb=False, median_filter_passes=0, **wb,
    )


@contextlib.contextmanager
def libraw_single_thread() -> Iterator[None]:
    """Run the block with every OpenMP runtime of the process (LibRaw's private one included)
    limited to one thread (threadpoolctl), restoring the previous limits afterwards."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def develop(path: str | os.PathLike[str], algorithm: str, white_balance: WhiteBalance = "camera",
            *, output: str = "raw", gain: float = 1.0, single_thread: bool = True) -> np.ndarray:
    """LibRaw's development of a raw file with :func:`libraw_params`.

    Args:
        path: The raw file (LibRaw's visible area; each side >= :data:`MIN_SIDE` px for the
            Markesteijn algorithms on X-Trans, see :func:`develop_mosaic`).
        algorithm: ``rawpy.DemosaicAlgorithm`` member name (``"AHD"``: Markesteijn 3-pass on
            X-Trans, ``"PPG"``: 1-pass, ``"VNG"``, ``"LINEAR"`` ...).
        white_balance: ``"camera"`` (the file's as-shot multipliers, normalised to G = 1) or
            ``(R, G, B)`` multipliers (G = 1) applied to the mosaic before demosaicking.
        output: ``"raw"`` (camera RGB) or ``"srgb"`` (linear sRGB primaries).
        gain: Factor on the output (a mosaic's exposure scaling, see :func:`develop_mosaic`).
        single_thread: Run LibRaw's OpenMP with one thread (:func:`libraw_single_thread`).

    Returns:
        ``(3, H, W)`` float32 ``rgb16 * (gain * min(multipliers) / 65535)``: linear, in
        ``[0, gain * min(multipliers)]`` (LibRaw clips at the first channel's saturation),
        in the file's sensor orientation (no flip) and the visible area's CFA alignment.

    Raises:
        RawReadError: LibRaw cannot read or develop the file (the message names it).
    """
    import rawpy

    from demosaic.color import normalize_multipliers
    from demosaic.io.raw import open_raw

    wb = white_balance if isinstance(white_balance, str) else [float(v) for v in white_balance]
    threads = libraw_single_thread() if single_thread else contextlib.nullcontext()
    with threads, open_raw(path) as raw:
        mult = (normalize_multipliers(list(raw.camera_whitebalance)[:3]) if isinstance(wb, str)
                else np.asarray(wb))
        params = libraw_params(algorithm, white_balance=wb, output=output)
        try:
            rgb = raw.postprocess(params=params)
        except rawpy.LibRawIOError as exc:
            if min(raw.sizes.height, raw.sizes.width) >= MIN_SIDE:
                raise
            raise RawReadError(
                f"LibRaw failed to develop {path} ({raw.sizes.width}x{raw.sizes.height} px) with "
                f"{algorithm}: {exc}; LibRaw's X-Trans demosaics other than LINEAR and VNG "
                f"(Markesteijn) fail with an I/O error below {MIN_SIDE} px per side: develop the "
                "mosaic with demosaic.io.libraw.develop_mosaic, which pads it") from exc
    return rgb.transpose(2, 0, 1).astype(np.float32) * np.float32(gain * float(np.min(mult)) / 65535.0)


def develop_raw(raw: RawImage, algorithm: str, white_balance: WhiteBalance = "camera", *,
                single_thread: bool = True) -> np.ndarray:
    """LibRaw's development of a file already read (:func:`demosaic.io.raw.read_raw`): the file
    itself (:func:`develop`), or, when a side is under :data:`MIN_SIDE`, its visible mosaic
    clipped to ``[0, 1]`` and padded (:func:`develop_mosaic`). Arguments and result as
    :func:`develop`: ``(3, H, W)`` float32 on the visible area."""
    if min(raw.cfa.shape) >= MIN_SIDE:
        return develop(raw.path, algorithm, white_balance, single_thread=single_thread)
    return develop_mosaic(np.clip(np.asarray(raw.cfa), 0.0, 1.0), raw.layout, algorithm,
                          white_balance, single_thread=single_thread)


def develop_mosaic(mosaic: np.ndarray, layout: Any, algorithm: str,
                   white_balance: Sequence[float] = (1.0, 1.0, 1.0), *, gain: float = 1.0,
                   min_side: int = MIN_SIDE, single_thread: bool = True) -> np.ndarray:
    """LibRaw's development of a mosaic array (:func:`develop` of a temporary DNG).

    Args:
        mosaic: ``(H, W)`` mosaic, white 1.0: ``uint16`` codes (white 65535) or floats in
            ``[0, 1]`` (quantised by :func:`demosaic.io.dng.write_dng`); ``H, W >= 22``.
        layout: Its top-left ``(P, P)`` CFA block, a pattern or a pattern name.
        algorithm, white_balance, gain, single_thread: As :func:`develop`.
        min_side: Sides shorter than this are extended bottom/right with whole CFA periods
            (phase-preserving, :func:`demosaic.cfa.phase_extend`) before LibRaw runs
            (default :data:`MIN_SIDE`: Markesteijn's minimum).

    Returns:
        ``(3, H, W)`` float32, pixel-aligned with ``mosaic`` (the padding cropped off).

    Raises:
        RawReadError: LibRaw fails or returns another size than the (padded) mosaic.
    """
    from demosaic.cfa import CFAPattern, align, get_pattern, phase_extend
    from demosaic.io.dng import write_dng

    h, w = mosaic.shape
    pad_h, pad_w = max(0, int(min_side) - h), max(0, int(min_side) - w)
    if pad_h or pad_w:
        period = (get_pattern(layout).period if isinstance(layout, (str, CFAPattern))
                  else align(np.asarray(layout)).pattern.period)
        mosaic = phase_extend(mosaic, period, bottom=pad_h, right=pad_w)
    with tempfile.TemporaryDirectory(prefix="demosaic-libraw-") as tmp:
        path = Path(tmp) / "mosaic.dng"
        write_dng(path, mosaic, layout, white_level=65535, black_level=0)
        out = develop(path, algorithm, white_balance, gain=gain, single_thread=single_thread)
    if out.shape[1:] != mosaic.shape:
        raise RawReadError(f"LibRaw ({algorithm}) returned {out.shape[1]}x{out.shape[2]} px for a "
                           f"{mosaic.shape[0]}x{mosaic.shape[1]} mosaic; the DNG was not read at "
                           "full size")
    return np.ascontiguousarray(out[:, :h, :w])


__all__ = ["MIN_SIDE", "OUTPUT_COLORS", "develop", "develop_mosaic", "libraw_params",
           "libraw_single_thread"]
