"""Image-quality metrics for demosaicking, per image.

All functions take ``pred`` and ``target`` images ``(3, H, W)`` (numpy arrays or torch
tensors, any float dtype; computed in float64 numpy) in **linear light** with the nominal
white at 1.0, channel 0 = R, 1 = G, 2 = B. ``border`` pixels are cropped from every side
before measuring (demosaickers are judged away from the image edge; 12 px by default).

=========================  ===========================================================
``psnr``                   linear-light PSNR, ``10 log10(peak^2 / MSE)``, unclipped
``psnr_srgb``              PSNR of the sRGB-encoded images after clipping both to [0, 1]
``ssim``                   SSIM on sRGB-encoded, clipped images (or linear, by argument)
``texture_score``          Laplacian-variance ratio output / truth on luminance
``periodic_artifact_score``  spectral peak-to-background ratio at the CFA harmonics
``false_colour_score``     colour-difference error on the truth's strongest edges
``hdr_error``              relative L1 error where the truth exceeds 1.0 (NaN if nowhere)
=========================  ===========================================================

:func:`compute_all` returns all of them as a ``dict[str, float]``; :func:`report_metrics`
the same under the names evaluation reports use. The periodic-artifact verdict of a report
(:func:`artifact_flag`, :func:`set_verdicts`) needs both the spectral score and the
amplitude of the CFA-periodic error (:func:`periodic_error_levels`, 8-bit sRGB levels).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from demosaic.cfa import periodic_component
from demosaic.color import linear_to_srgb

log = logging.getLogger(__name__)

#: Rec. 709 / sRGB luminance weights.
LUMA = np.array([0.2126, 0.7152, 0.0722])
#: :func:`periodic_artifact_score` above this flags a periodic (CFA-grid) artifact.
#: Calibration on 12 CBSD68 images (321x481) with X-Trans: bilinear demosaicking errors
#: score 0.4-3.1, white noise about 1; adding a random zero-mean 6x6 pattern of +-2/255
#: (linear) to the bilinear output scores 3.6-86 (median about 20). The score of a given
#: pattern grows with its energy relative to the rest of the error and with the image size.
PERIODIC_ARTIFACT_THRESHOLD = 5.0
#: Pixels excluded on every side by the reported metrics (demosaic-eval, the camera protocol)
#: and by the validation that selects ``best.pt``, so selection and reports agree.
REPORT_BORDER = 12

#: SSIM gaussian window side and standard deviation (Wang et al. 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
#: SSIM stabilisers for data range 1.0.
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _np(x: Any) -> np.ndarray:
    """``x`` as a float64 numpy array. A tensor is copied to the CPU first and converted
    there: one copy that changes device and dtype at once fails or returns zeros for an MPS
    tensor on recent torch (pytorch/pytorch#197715)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(pred: Any, target: Any, border: int) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 ``(..., H', W')`` with ``border`` cropped from each side."""
    p, t = _np(pred), _np(target)
    if p.shape != t.shape or p.ndim < 2:
        raise ValueError(f"pred and target must have the same shape (C, H, W); got {p.shape} and {t.shape}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border:
        if 2 * border >= min(p.shape[-2:]):
            raise ValueError(f"border {border} removes the whole {p.shape[-2]}x{p.shape[-1]} image")
        p, t = p[..., border:-border, border:-border], t[..., border:-border, border:-border]
    return p, t


def _srgb01(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1], then sRGB-encode (display-referred values)."""
    return linear_to_srgb(np.clip(x, 0.0, 1.0))


# --------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------


def psnr(pred: Any, target: Any, peak: float = 1.0, border: int = 12) -> float:
    """PSNR in dB of linear-light images (no clipping: highlight errors count).

    ``10 log10(peak^2 / MSE)`` over all channels and pixels inside the border; ``inf`` for
    identical images.
    """
    p, t = _pair(pred, target, border)
    mse = float(np.mean((p - t) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def psnr_srgb(pred: Any, target: Any, border: int = 12) -> float:
    """PSNR in dB on display values: both images clipped to [0, 1] (a display cannot show
    more), sRGB-encoded (:func:`demosaic.color.linear_to_srgb`), peak 1. This is the number
    comparable with the demosaicking literature, which measures 8-bit sRGB images."""
    p, t = _pair(pred, target, border)
    return psnr(_srgb01(p), _srgb01(t), peak=1.0, border=0)


# --------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_window_size(h: int, w: int) -> int:
    size = min(SSIM_WINDOW, h, w)
    return size if size % 2 else size - 1


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' gaussian filter of ``(N, C, H, W)`` per channel.

    The per-channel weights are contiguous copies, not stride-0 ``expand`` views: MPS
    convolutions on macOS >= 15 read a non-contiguous weight as if it were contiguous, without
    an error (pytorch/pytorch#192212; fixed by #192303 in August 2026, after the torch
    versions this project admits), which made the SSIM loss and its gradients wrong there.
    On the CPU the numbers are the same."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous(), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous(), groups=c)


def ssim_maps(pred: torch.Tensor, target: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps ``(N, C, H - size + 1, W - size + 1)``."""
    g = _gaussian_window(size, SSIM_SIGMA, pred.device, pred.dtype)
    mu_p, mu_t = _filter(pred, g), _filter(target, g)
    var_p = _filter(pred * pred, g) - mu_p**2
    var_t = _filter(target * target, g) - mu_t**2
    cov = _filter(pred * target, g) - mu_p * mu_t
    cs = (2 * cov + SSIM_C2) / (var_p + var_t + SSIM_C2)
    lum = (2 * mu_p * mu_t + SSIM_C1) / (mu_p**2 + mu_t**2 + SSIM_C1)
    return lum * cs, cs


def ssim_index(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per sample, ``(N,)``: gaussian window 11 (sigma 1.5), valid region, C1/C2
    for data range 1. Equals 1 for identical inputs. Inputs ``(N, C, H, W)`` of one shape."""
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"ssim_index needs two (N, C, H, W) tensors of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    size = ssim_window_size(pred.shape[-2], pred.shape[-1])
    s, _ = ssim_maps(pred, target, size)
    return s.mean(dim=(1, 2, 3))


def ssim(pred: Any, target: Any, border: int = 12, space: str = "srgb") -> float:
    """Mean SSIM (gaussian window 11, sigma 1.5, valid region, averaged over channels): the
    same computation as the ``ssim`` loss term (:func:`ssim_index`, in float64 here).

    Args:
        space: ``"srgb"`` (default): both images clipped to [0, 1] and sRGB-encoded, data
            range 1 -- the conventional, display-referred SSIM. ``"linear"``: the linear
            values as they are, with ``C1``/``C2`` for data range 1 (HDR values unclipped).
    """
    p, t = _pair(pred, target, border)
    if space == "srgb":
        p, t = _srgb01(p), _srgb01(t)
    elif space != "linear":
        raise ValueError(f"ssim space must be 'srgb' or 'linear', got {space!r}")
    as_t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None] for a in (p, t)]
    return float(ssim_index(*as_t)[0])


# --------------------------------------------------------------------------------------
# Texture, false colour, HDR
# --------------------------------------------------------------------------------------


def _luma_display(x: np.ndarray) -> np.ndarray:
    """Luminance of linear RGB ``(3, H, W)``, clipped to [0, 1] and sRGB-encoded ``(H, W)``."""
    y = np.tensordot(LUMA, x, axes=(0, 0))
    return _srgb01(y)


def _laplacian(y: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian, valid region ``(H-2, W-2)``."""
    return (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1])


def texture_score(pred: Any, target: Any, border: int = 12) -> float:
    """Sharpness of the output relative to the truth: ``var(lap(Y_pred)) / var(lap(Y_true))``.

    ``Y`` is the luminance (Rec. 709 weights on linear RGB), clipped to [0, 1] and
    sRGB-encoded so that texture in shadows counts as a viewer sees it. 1.0 = as much fine
    detail as the truth, < 1 = softer (lost texture), > 1 = sharper than the truth (noise,
    zippering, overshoot). NaN when the truth is flat.
    """
    p, t = _pair(pred, target, border)
    vp = float(np.var(_laplacian(_luma_display(p))))
    vt = float(np.var(_laplacian(_luma_display(t))))
    return vp / vt if vt > 0 else math.nan


def false_colour_score(pred: Any, target: Any, border: int = 12, edge_fraction: float = 0.1) -> float:
    """Colour-difference error on the truth's edges, on display values.

    Both images are clipped to [0, 1] and sRGB-encoded; the chroma error at a pixel is
    ``sqrt(e_rg^2 + e_bg^2)`` with ``e_rg = (p_R - p_G) - (t_R - t_G)`` and ``e_bg`` alike.
    Edges are the ``edge_fraction`` of pixels with the largest gradient magnitude of the
    truth's luminance (central differences), ignoring gradients below 1e-3. Returns the mean
    chroma error there, in sRGB units (x 255 for 8-bit levels); NaN if the truth is flat.
    """
    p, t = _pair(pred, target, border)
    ps, ts = _srgb01(p), _srgb01(t)
    e_rg = (ps[0] - ps[1]) - (ts[0] - ts[1])
    e_bg = (ps[2] - ps[1]) - (ts[2] - ts[1])
    err = np.sqrt(e_rg**2 + e_bg**2)
    gy, gx = np.gradient(np.tensordot(LUMA, ts, axes=(0, 0)))
    mag = np.hypot(gx, gy)
    thresh = max(float(np.quantile(mag, 1.0 - edge_fraction)), 1e-3)
    edges = mag >= thresh
    if not edges.any():
        return math.nan
    return float(err[edges].mean())


def hdr_error(pred: Any, target: Any, border: int = 12, threshold: float = 1.0) -> float:
    """Relative L1 error on highlights: ``sum|p - t| / sum|t|`` over the pixels (all three
    channels) where any channel of the truth exceeds ``threshold``. NaN when no pixel does
    (an LDR image says nothing about HDR behaviour). A model that clamps at 1.0 scores high."""
    p, t = _pair(pred, target, border)
    sel = t.max(axis=0) > threshold
    if not sel.any():
        return math.nan
    return float(np.abs(p[:, sel] - t[:, sel]).sum() / np.abs(t[:, sel]).sum())


# --------------------------------------------------------------------------------------
# Periodic artifacts
# --------------------------------------------------------------------------------------


def _periodic_spectrum(u: np.ndarray) -> np.ndarray:
    """FFT of the periodic component of ``u`` ``(H, W)`` (Moisan's periodic + smooth
    decomposition, J. Math. Imaging Vis. 2011): removes the cross of spectral leakage that
    the image's non-periodic borders cause, without a window that would smear sharp peaks."""
    h, w = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(h)[:, None]
    r = np.arange(w)[None, :]
    denom = 2 * np.cos(2 * np.pi * q / h) + 2 * np.cos(2 * np.pi * r / w) - 4
    denom[0, 0] = 1.0
    smooth = np.fft.fft2(v) / denom
    smooth[0, 0] = 0.0
    return np.fft.fft2(u) - smooth


def periodic_artifact_score(error: Any, period: int = 6) -> float:
    """Strength of a periodic pattern with the CFA's period in an error image.

    A demosaicker that treats CFA phases inconsistently leaves a grid with the period of the
    CFA (the research log's 6x6 artifact); its spectrum has sharp peaks exactly at the
    harmonics ``(ky / period, kx / period)`` cycles/px, ``ky, kx = 0..period-1`` without DC.

    Method: the error ``(C, H, W)`` or ``(H, W)`` is cropped to multiples of ``period`` (so
    each harmonic falls exactly on one FFT bin), per channel its periodic component is
    taken (:func:`_periodic_spectrum`, no leakage from the borders), and the power spectra
    are summed over channels. For each harmonic the *peak* is the power in its bin, the
    *background* the mean power of the ring of bins 1 to 3 away (Chebyshev distance; other
    harmonic bins left out). The score is ``sum(peaks) / sum(backgrounds)``. Error without
    a periodic component (noise, edge errors, the CFA-modulated residue of smooth errors,
    whose spectrum is spread around the harmonics) scores about 1; a periodic pattern adds
    power to the single harmonic bins and the score grows with its energy and the image size.

    Returns:
        The ratio (flag above :data:`PERIODIC_ARTIFACT_THRESHOLD`); 0.0 for an all-zero
        error; NaN when the image is too small (under ``4 * period`` px per side).
    """
    e = _np(error)
    if e.ndim == 2:
        e = e[None]
    if e.ndim != 3:
        raise ValueError(f"error image must be (C, H, W) or (H, W), got shape {e.shape}")
    h, w = (e.shape[-2] // period) * period, (e.shape[-1] // period) * period
    if h < 4 * period or w < 4 * period:
        return math.nan
    e = e[:, :h, :w]
    power = sum(np.abs(_periodic_spectrum(c)) ** 2 for c in e)
    sy, sx = h // period, w // period  # bins between harmonics
    is_harmonic = np.zeros((h, w), dtype=bool)
    is_harmonic[::sy, ::sx] = True
    offsets = np.arange(-3, 4)
    ring = np.maximum(np.abs(offsets)[:, None], np.abs(offsets)[None, :]) >= 1
    peak_sum = bg_sum = 0.0
    for ky in range(period):
        for kx in range(period):
            if not (ky or kx):
                continue
            fy, fx = ky * sy, kx * sx
            idx = np.ix_((fy + offsets) % h, (fx + offsets) % w)
            peak_sum += float(power[fy, fx])
            bg_sum += float(power[idx][ring & ~is_harmonic[idx]].mean())
    if bg_sum <= 0.0:
        return math.inf if peak_sum > 0 else 0.0
    return peak_sum / bg_sum


# --------------------------------------------------------------------------------------
# All at once
# --------------------------------------------------------------------------------------


def compute_all(pred: Any, target: Any, border: int = 12, period: int = 6) -> dict[str, float]:
    """Every metric of this module for one image pair ``(3, H, W)``, linear light.

    Returns:
        ``{"psnr", "psnr_srgb", "ssim", "texture", "periodic_artifact", "false_colour",
        "hdr_error"}`` as floats (``hdr_error`` NaN without highlights; the periodic score is
        measured on ``pred - target`` inside the border).
    """
    p, t = _pair(pred, target, border)
    return {
        "psnr": psnr(p, t, border=0),
        "psnr_srgb": psnr_srgb(p, t, border=0),
        "ssim": ssim(p, t, border=0),
        "texture": texture_score(p, t, border=0),
        "periodic_artifact": periodic_artifact_score(p - t, period=period),
        "false_colour": false_colour_score(p, t, border=0),
        "hdr_error": hdr_error(p, t, border=0),
    }


# --------------------------------------------------------------------------------------
# Report names and the periodic-artifact verdict (both evaluation protocols)
# --------------------------------------------------------------------------------------

#: :func:`compute_all`'s short keys -> the names evaluation reports use.
REPORT_NAMES = {"texture": "texture_score", "periodic_artifact": "periodic_artifact_score",
                "false_colour": "false_colour_score"}
#: Periodic error amplitude (8-bit sRGB levels, :func:`periodic_error_levels`) below which a
#: spectral periodic-artifact peak is not reported as a grid artifact. Clean classical
#: X-Trans demosaicking leaves 0.2-1.2 levels (Markesteijn ~0.2-0.4, bilinear up to ~1.2 on
#: Kodak); a visible grid is several levels.
PERIODIC_LEVELS_FLOOR = 1.5


def report_metrics(pred: Any, target: Any, border: int, period: int) -> dict[str, float]:
    """:func:`compute_all` of ``(3, H, W)`` linear images under the report names
    (:data:`REPORT_NAMES`: ``texture_score``, ``periodic_artifact_score``,
    ``false_colour_score``; the others as they are), as floats."""
    values = compute_all(pred, target, border=border, period=period)
    return {REPORT_NAMES.get(k, k): float(v) for k, v in values.items()}


def periodic_error_levels(pred: np.ndarray, truth: np.ndarray, border: int, period: int) -> float:
    """Amplitude of the CFA-periodic part of the display error, in 8-bit levels.

    The error of the sRGB-encoded (clipped to [0, 1]) images ``(3, H, W)``, inside
    ``border``, is averaged over all ``period x period`` cells (its mean at each CFA phase,
    cells anchored at pixel ``(border, border)``), the channel mean is removed, and the RMS
    over phases and channels is returned times 255. Unlike the spectral peak-to-background
    score, it does not grow as the rest of the error shrinks, so it tells a visible grid
    (several levels) from the faint phase dependence every demosaicker has. NaN when fewer
    than one cell fits.
    """
    e = linear_to_srgb(np.clip(pred, 0.0, 1.0)) - linear_to_srgb(np.clip(truth, 0.0, 1.0))
    if border:
        e = e[:, border:-border, border:-border]
    if e.shape[1] < period or e.shape[2] < period:
        return float("nan")
    cells = periodic_component(e, period)
    return float(255.0 * np.sqrt(np.mean(cells ** 2)))


def artifact_flag(score: float, levels: float, threshold: float = PERIODIC_ARTIFACT_THRESHOLD) -> bool:
    """The periodic-artifact verdict: a spectral peak at the CFA harmonics above
    ``threshold`` (:data:`PERIODIC_ARTIFACT_THRESHOLD`) **and** a periodic error of at least
    :data:`PERIODIC_LEVELS_FLOOR` 8-bit levels."""
    return bool(score > threshold and levels >= PERIODIC_LEVELS_FLOOR)


def image_artifact_flag(metrics: Mapping[str, float]) -> float:
    """:func:`artifact_flag` of one image's report metrics (``periodic_artifact_score``,
    missing = 0, and ``periodic_levels``) as ``1.0``/``0.0``."""
    return float(artifact_flag(metrics.get("periodic_artifact_score", 0.0),
                               metrics["periodic_levels"]))


def set_verdicts(mean: Mapping[str, float], period: int) -> dict[str, float]:
    """The set-level periodic-artifact verdict of mean metrics, with the limits it used (what
    ``results.json`` stores under ``info["verdicts"]``)."""
    return {
        "periodic_artifact_flag": float(artifact_flag(mean.get("periodic_artifact_score", 0.0),
                                                      mean.get("periodic_levels", 0.0))),
        "periodic_artifact_threshold": float(PERIODIC_ARTIFACT_THRESHOLD),
        "periodic_levels_floor": PERIODIC_LEVELS_FLOOR,
        "period": float(period),
    }


__all__ = ["psnr", "psnr_srgb", "ssim", "texture_score", "periodic_artifact_score", "false_colour_score",
           "hdr_error", "compute_all", "PERIODIC_ARTIFACT_THRESHOLD", "LUMA", "REPORT_NAMES",
           "PERIODIC_LEVELS_FLOOR", "report_metrics", "periodic_error_levels", "artifact_flag",
           "image_artifact_flag", "set_verdicts"]
