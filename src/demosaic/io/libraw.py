"""LibRaw's own development, in one place: the settings every measurement uses, and its
OpenMP threads.

:func:`libraw_params` is the only place rawpy's ``postprocess`` settings are written: the LibRaw
baselines (:mod:`demosaic.models.baselines`), the raw teacher (:mod:`demosaic.data.teacher`),
the camera protocol and the benchmark scripts all call it, so a teacher and a baseline can no
longer differ in a setting (``tests/test_libraw.py`` pins them). The settings:

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
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

OUTPUT_COLORS = ("raw", "srgb")


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


__all__ = ["libraw_params", "libraw_single_thread", "OUTPUT_COLORS"]
