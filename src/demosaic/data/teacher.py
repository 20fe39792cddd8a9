"""The LibRaw teacher: demosaic a raw file with LibRaw into linear **balanced** camera RGB.

The teacher lives in the space :func:`demosaic.inference.develop.develop` feeds the network: the
mosaic of :func:`demosaic.io.raw.read_raw` (black 0, white 1) times the file's as-shot
multipliers ``w`` (green = 1). :func:`compute_teacher` runs ``rawpy.postprocess`` with:

- ``output_color=raw`` (no colour matrix), ``gamma=(1, 1)``, ``output_bps=16``;
- ``user_wb = w`` (the multipliers :func:`read_raw` reports) and ``no_auto_bright``: LibRaw
  balances the mosaic **before** demosaicking, as inference does, and scales channel ``c`` by
  ``w_c / min(w) * 65535 / (white - black)``; the teacher is its output ``/ 65535 * min(w)``;
- ``adjust_maximum_thr=0`` (keep the file's white level), ``highlight_mode=clip``,
  ``user_flip=0`` (sensor orientation, like the mosaic), no median filter, no noise reduction.

LibRaw clips at black (0) and at ``min(w)`` (where the first channel saturates) while
demosaicking, so the teacher lies in ``[0, min(w)]``: at each sampled position it equals
``clip(w * cfa, 0, min(w))`` up to 16-bit rounding where the algorithm keeps the measured
samples. :func:`sample_fidelity` measures exactly that and the build records it.

LibRaw does not run every requested algorithm on X-Trans: quality >= 3 (AHD, DCB, DHT, AAHD)
runs Markesteijn 3-pass, PPG runs Markesteijn 1-pass; VNG and LINEAR run as named.
:func:`effective_algorithm` names what actually runs, and a replacement is logged.
Markesteijn fails on images under 512 px in width or height, so smaller mosaics are developed
through :func:`demosaic.io.libraw.develop_mosaic` (phase-preserving padding, bottom/right,
into a temporary DNG, clipped to ``[0, 1]``); larger files through
:func:`demosaic.io.libraw.develop` directly. Both are LibRaw's one development.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from demosaic.cfa import tile_layout
from demosaic.color import normalize_multipliers
from demosaic.errors import ConfigError, RawReadError
from demosaic.io.libraw import MIN_SIDE, develop_raw
from demosaic.io.raw import RawImage

log = logging.getLogger(__name__)

#: Requested name -> rawpy ``DemosaicAlgorithm`` member (LibRaw's built-in algorithms).
ALGORITHMS = {"linear": "LINEAR", "vng": "VNG", "ppg": "PPG", "ahd": "AHD", "dcb": "DCB",
              "dht": "DHT", "aahd": "AAHD"}
#: What LibRaw actually runs on X-Trans for each requested algorithm.
XTRANS_EFFECTIVE = {"linear": "bilinear", "vng": "vng", "ppg": "markesteijn1",
                    "ahd": "markesteijn3", "dcb": "markesteijn3", "dht": "markesteijn3",
                    "aahd": "markesteijn3"}

def check_algorithm(requested: str) -> str:
    """Normalise and validate a requested teacher algorithm name."""
    name = requested.lower()
    if name not in ALGORITHMS:
        raise ConfigError(f"teacher algorithm {requested!r} is not one of {sorted(ALGORITHMS)} "
                          "(LibRaw's built-in demosaickers)")
    return name


def effective_algorithm(requested: str, family: str) -> str:
    """The algorithm LibRaw actually runs for ``requested`` on a ``family`` sensor.

    ``"dht"`` on X-Trans -> ``"markesteijn3"``; ``"ppg"`` -> ``"markesteijn1"``;
    ``"linear"`` -> ``"bilinear"``; on Bayer the named algorithm (``"linear"`` ->
    ``"bilinear"``).
    """
    name = check_algorithm(requested)
    if family == "xtrans":
        return XTRANS_EFFECTIVE[name]
    return "bilinear" if name == "linear" else name


def compute_teacher(path: str | Path, raw: RawImage, requested: str = "dht"
                    ) -> tuple[np.ndarray, dict[str, object]]:
    """Demosaic ``path`` with LibRaw as a teacher for ``raw`` (its :func:`read_raw` result).

    Args:
        path: The raw file.
        raw: ``read_raw(path)``; gives the visible mosaic, layout and family.
        requested: Teacher algorithm (``dht`` by default, like the research log).

    Returns:
        ``(teacher, info)``: teacher ``(H, W, 3)`` float32 linear balanced camera RGB in
        ``[0, min(w)]`` (``w`` = ``raw.wb_multipliers``, G = 1), pixel-aligned with
        ``raw.cfa`` (same ``H, W``, same phase); info: ``requested``, ``algorithm`` (what
        LibRaw ran), ``replaced`` (bool), ``padded_to`` (``[h, w]`` or None),
        ``multipliers``.

    Raises:
        RawReadError: when LibRaw fails or returns an image of another size.
    """
    requested = check_algorithm(requested)
    algorithm = effective_algorithm(requested, raw.family)
    replaced = algorithm != requested and not (requested == "linear" and algorithm == "bilinear")
    if replaced:
        log.warning("%s: requested teacher %r is not run by LibRaw on %s sensors; it runs %r "
                    "(recorded as the teacher)", path, requested, raw.family, algorithm)
    h, w = raw.cfa.shape
    mult = normalize_multipliers(raw.wb_multipliers)
    padded_to = None
    wb = [float(v) for v in mult[:3]]
    if min(h, w) < MIN_SIDE:  # Markesteijn's minimum: the clipped mosaic is developed, padded
        padded_to = [max(h, MIN_SIDE), max(w, MIN_SIDE)]
    rgb = develop_raw(raw, ALGORITHMS[requested], wb, single_thread=False).transpose(1, 2, 0)
    if rgb.shape[:2] != (h, w):
        raise RawReadError(f"{path}: LibRaw's teacher is {rgb.shape[1]}x{rgb.shape[0]} px but the "
                           f"visible mosaic is {w}x{h} px; this camera's layout is not supported "
                           "as a teacher")
    info = {"requested": requested, "algorithm": algorithm, "replaced": replaced,
            "padded_to": padded_to, "multipliers": [round(float(v), 6) for v in mult]}
    return np.ascontiguousarray(rgb), info


def sample_fidelity(teacher: np.ndarray, cfa: np.ndarray, layout: np.ndarray,
                    clip: float = 1.0) -> dict[str, float]:
    """How well the teacher keeps the measured samples.

    Args:
        teacher: ``(H, W, 3)`` teacher, aligned with ``cfa``.
        cfa: ``(H, W)`` mosaic in the teacher's space (balanced for :func:`compute_teacher`).
        layout: ``(P, P)`` channel indices of ``cfa``'s top-left cell.
        clip: LibRaw's clip level in that space (``min(w)`` for a balanced teacher).

    Returns:
        ``mean_abs`` and ``max_abs`` of ``teacher[y, x, c(y, x)] - clip(cfa, 0, clip)`` over
        the interior (a 6 px border excluded), and ``median_ratio`` (teacher over mosaic, for
        mosaic values above 0.05): about 1.0 when the scales agree.
    """
    h, w = cfa.shape
    idx = tile_layout(np.asarray(layout, dtype=np.int64), h, w)
    sampled = np.take_along_axis(teacher, idx[..., None], axis=2)[..., 0]
    ref = np.clip(cfa, 0.0, clip)
    b = 6
    diff = np.abs(sampled - ref)[b:-b, b:-b]
    inner_ref, inner_s = ref[b:-b, b:-b], sampled[b:-b, b:-b]
    lit = inner_ref > 0.05
    ratio = float(np.median(inner_s[lit] / inner_ref[lit])) if lit.any() else float("nan")
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()), "median_ratio": ratio}
