"""Classical and third-party demosaicking baselines behind one interface.

Every baseline has ``name``, ``pattern`` (:class:`~demosaic.cfa.CFAPattern`) and
``demosaic(cfa)``: a mosaic ``(1, H, W)`` or ``(N, 1, H, W)`` torch tensor in the
**canonical phase** of its pattern, linear light (white = 1.0), in; linear RGB
``(3, H, W)`` / ``(N, 3, H, W)`` float32 out, on the input's device, same ``H x W``. This is
the same call a :class:`~demosaic.models.base.DemosaicModel` answers, so
:func:`demosaic.evaluation.clean.evaluate` measures models and baselines identically.

Registry :data:`BASELINES` (separate from ``MODELS``: baselines have no weights to train or
checkpoint). :func:`build_method` resolves a name against both (own ``bilinear`` is a model).

=================  =========  ===============================================================
name               CFA        what runs
=================  =========  ===============================================================
``markesteijn3``   X-Trans    LibRaw ``user_qual=3`` (AHD requested; LibRaw runs Markesteijn 3-pass)
``markesteijn1``   X-Trans    LibRaw ``user_qual=2`` (PPG requested; Markesteijn 1-pass)
``vng``            both       LibRaw VNG
``libraw_linear``  both       LibRaw bilinear (``user_qual=0``)
``ahd``/``dht``    Bayer      LibRaw AHD / DHT
``demosaicnet``    both       Gharbi et al. 2016 pretrained network (PyPI ``demosaicnet``)
``cd_bilinear``    Bayer      colour-demosaicing bilinear
``malvar2004``     Bayer      colour-demosaicing Malvar, He, Cutler 2004
``menon2007``      Bayer      colour-demosaicing Menon, Andriani, Calvagno 2007
=================  =========  ===============================================================

**LibRaw protocol.** The mosaic is written as a 16-bit DNG (:func:`demosaic.io.dng.write_dng`,
black 0, white 65535, identity colour matrix, neutral white balance) and developed by
LibRaw's one development (:func:`demosaic.io.libraw.develop_mosaic`, settings of
:func:`~demosaic.io.libraw.libraw_params`): the requested algorithm, ``output_color=raw``
(camera RGB = the mosaic's own RGB, no matrix), ``user_wb=[1, 1, 1, 1]``, ``no_auto_bright``,
``gamma=(1, 1)``, 16-bit output, ``adjust_maximum_thr=0`` (no data-dependent white),
``highlight_mode=clip``, ``user_flip=0``.
Values above 1.0 survive by exposure scaling: the mosaic is divided by ``max(1, max(cfa))``
before quantisation and the output multiplied back (every algorithm here is linear in
exposure up to rounding); negative values are clipped to 0. Mosaics smaller than
``min_size`` (:data:`~demosaic.io.libraw.MIN_SIDE`, 512 px: LibRaw's Markesteijn raises an
I/O error below it) are padded bottom/right with whole CFA periods (a phase-preserving edge
extension) and the output is cropped back. OpenMP: LibRaw runs with one thread
(:func:`demosaic.io.libraw.libraw_single_thread`) so outputs are reproducible. The scale is
checked numerically: at sampled positions LibRaw keeps the measured value, so
``output / mosaic`` there must be 1.

**demosaicnet protocol.** The pretrained networks (depth 11 X-Trans, depth 15 Bayer) were
trained on sRGB-encoded images in ``[0, 1]`` with their own CFA phase (see their ASCII art
in ``demosaicnet.mosaic``). We therefore: encode the linear mosaic to sRGB (the transfer is
per pixel, so this equals mosaicking the sRGB-encoded truth; values are clipped to
``[0, 1]``: no HDR), spread it to demosaicnet's masked 3-channel form, shift it into
demosaicnet's phase by prepending the rows/columns :func:`demosaic.cfa.align` names
(same-phase edge extension, no resampling), add ``context`` px of same-phase extension on
every side (the unpadded convolutions eat 12 px per side on X-Trans), run in tiles,
crop back and decode the output from sRGB to linear. Metrics are then computed in linear
light like every other method.

**colour-demosaicing protocol.** The linear mosaic is passed as is (Bayer only, pattern
string from the canonical phase, ``RGGB``); the functions work in any value range.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from demosaic import cfa as cfa_mod
from demosaic.cfa import CFAPattern, get_pattern, phase_extend
from demosaic.errors import CFAError, ConfigError, DemosaicError, RawReadError
from demosaic.io.libraw import MIN_SIDE, develop_mosaic
from demosaic.registry import Registry

log = logging.getLogger(__name__)


@runtime_checkable
class Demosaicker(Protocol):
    """What :func:`demosaic.evaluation.clean.evaluate` needs: a pattern and ``demosaic``."""

    pattern: CFAPattern

    def demosaic(self, cfa: torch.Tensor) -> torch.Tensor: ...


class BaselineError(DemosaicError):
    """A baseline cannot run (missing optional dependency, LibRaw failure, wrong CFA)."""


#: name -> (config dataclass, factory) of every baseline.
BASELINES: Registry[Any] = Registry("baseline")


class _Baseline:
    """Shared plumbing: rank handling, numpy conversion, pattern checks."""

    name = "baseline"
    families: tuple[str, ...] = ("xtrans", "bayer")

    def __init__(self, cfa: str) -> None:
        self.pattern = get_pattern(cfa)
        if self.pattern.family not in self.families:
            raise ConfigError(f"baseline {self.name!r} supports {list(self.families)} CFAs, not "
                              f"{self.pattern.name!r}; choose another baseline or cfa=")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, cfa={self.pattern.name!r})"

    def run(self, cfa: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """``(H, W)`` float32 mosaic (canonical phase, linear) -> ``(3, H, W)`` float32."""
        raise NotImplementedError

    def demosaic(self, cfa: torch.Tensor) -> torch.Tensor:
        """Mosaic ``(1, H, W)`` or ``(N, 1, H, W)`` -> linear RGB ``(3, H, W)`` / ``(N, 3, H, W)``."""
        squeeze = cfa.ndim == 3
        x = cfa.unsqueeze(0) if squeeze else cfa
        if x.ndim != 4 or x.shape[1] != 1:
            raise CFAError(f"{self.name}.demosaic expects a mosaic (1, H, W) or (N, 1, H, W), "
                           f"got {tuple(cfa.shape)}")
        arr = x.detach().to("cpu", torch.float32).numpy()
        out = np.stack([self.run(a[0]) for a in arr])
        res = torch.from_numpy(out.astype(np.float32, copy=False)).to(cfa.device)
        return res[0] if squeeze else res


# --------------------------------------------------------------------------------------
# LibRaw (rawpy)
# --------------------------------------------------------------------------------------

#: LibRaw algorithm per baseline name: (rawpy DemosaicAlgorithm member, families).
LIBRAW_ALGORITHMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "markesteijn3": ("AHD", ("xtrans",)),  # user_qual 3 -> Markesteijn 3-pass on X-Trans
    "markesteijn1": ("PPG", ("xtrans",)),  # user_qual 2 -> Markesteijn 1-pass on X-Trans
    "vng": ("VNG", ("xtrans", "bayer")),
    "libraw_linear": ("LINEAR", ("xtrans", "bayer")),
    "ahd": ("AHD", ("bayer",)),
    "dht": ("DHT", ("bayer",)),
    "dcb": ("DCB", ("bayer",)),
    "aahd": ("AAHD", ("bayer",)),
    "ppg": ("PPG", ("bayer",)),
}


class LibRawBaseline(_Baseline):
    """A LibRaw demosaicking algorithm run through rawpy on a DNG written from the mosaic.

    Args:
        algorithm: Key of :data:`LIBRAW_ALGORITHMS` (``markesteijn3`` ...).
        cfa: Pattern the mosaics are in (canonical phase).
        min_size: Pad each side to at least this many px (512: Markesteijn's limit,
            :data:`~demosaic.io.libraw.MIN_SIDE`).
        single_thread: Force one OpenMP thread in LibRaw (reproducible output).
        check_scale: Verify on every image that sampled positions keep the measured value
            (relative tolerance 1 %), raising :class:`BaselineError` otherwise.
    """

    def __init__(self, algorithm: str, cfa: str = "xtrans", min_size: int = MIN_SIDE,
                 single_thread: bool = True, check_scale: bool = True) -> None:
        if algorithm not in LIBRAW_ALGORITHMS:
            raise ConfigError(f"unknown LibRaw baseline {algorithm!r}; choose one of "
                              f"{sorted(LIBRAW_ALGORITHMS)}")
        self.name = algorithm
        self.algorithm, self.families = LIBRAW_ALGORITHMS[algorithm]
        super().__init__(cfa)
        self.min_size = int(min_size)
        self.single_thread = single_thread
        self.check_scale = check_scale

    def run(self, cfa: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 mosaic (canonical phase, linear) -> ``(3, H, W)`` float32 through
        :func:`demosaic.io.libraw.develop_mosaic` (16-bit codes of ``cfa / max(1, peak)``,
        output scaled back by that factor)."""
        scale = max(1.0, float(np.max(cfa)) if cfa.size else 1.0)
        code = np.clip(np.rint(cfa / scale * 65535.0), 0, 65535).astype(np.uint16)
        try:
            out = develop_mosaic(code, self.pattern, self.algorithm, (1.0, 1.0, 1.0), gain=scale,
                                 min_side=self.min_size, single_thread=self.single_thread)
        except RawReadError as exc:
            raise BaselineError(f"LibRaw ({self.name}) failed on a {cfa.shape[0]}x{cfa.shape[1]} "
                                f"mosaic: {exc}") from None
        if self.check_scale:
            check_sampled_scale(out, cfa, self.pattern, self.name)
        return out


def check_sampled_scale(out: np.ndarray, cfa: np.ndarray, pattern: CFAPattern, who: str,
                        tol: float = 0.01) -> float:
    """Median of ``out[c] / cfa`` over sampled positions with ``cfa > 0.05`` (each pixel in
    its own filter colour). A demosaicker that keeps measured samples gives 1.

    Raises:
        BaselineError: when the ratio is off by more than ``tol`` (wrong scale, colour or phase).
    """
    m = cfa_mod.mask(pattern, *cfa.shape).astype(bool)
    sampled = (out * m).sum(axis=0)
    ok = cfa > 0.05
    if ok.sum() < 16:
        return 1.0
    ratio = float(np.median(sampled[ok] / cfa[ok]))
    if abs(ratio - 1.0) > tol:
        raise BaselineError(f"{who}: output at sampled positions is {ratio:.4f} x the mosaic "
                            "(expected 1); the DNG scale, colour order or CFA phase is wrong")
    return ratio


@dataclass
class LibRawConfig:
    """Keys of the LibRaw baselines (see :class:`LibRawBaseline`)."""

    cfa: str = "xtrans"
    min_size: int = MIN_SIDE
    single_thread: bool = True
    check_scale: bool = True


for _name in LIBRAW_ALGORITHMS:
    BASELINES.register(_name, LibRawConfig)(functools.partial(LibRawBaseline, _name))


# --------------------------------------------------------------------------------------
# demosaicnet
# --------------------------------------------------------------------------------------


def _import_demosaicnet() -> Any:
    try:
        with warnings.catch_warnings():  # its pkg_resources import warns on every start
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import demosaicnet  # noqa: PLC0415
    except Exception as exc:  # ImportError, or pkg_resources missing with setuptools >= 81
        raise BaselineError(
            f"the demosaicnet baseline needs the optional extra 'baselines' "
            f"(pip install 'demosaic[baselines]', i.e. demosaicnet and setuptools<81); "
            f"importing it failed: {exc.__class__.__name__}: {exc}") from None
    return demosaicnet


class DemosaicNetBaseline(_Baseline):
    """Gharbi et al. 2016 pretrained network (the PyPI package's released weights).

    Args:
        cfa: ``xtrans`` or a Bayer phase (the matching pretrained network is used).
        device: Torch device to run on (``cpu``, ``cuda``).
        tile: Output tile side in px (multiple of 6); bounds memory on large images.
        context: Same-phase extension per side in px (>= the network's 12 / 32 px shrink).
    """

    name = "demosaicnet"

    def __init__(self, cfa: str = "xtrans", device: str = "cpu", tile: int = 384,
                 context: int = 36) -> None:
        super().__init__(cfa)
        dn = _import_demosaicnet()
        p = self.pattern.period
        if tile <= 0 or tile % 6:
            raise ConfigError(f"baseline.tile={tile} must be a positive multiple of 6")
        if context % p:
            raise ConfigError(f"baseline.context={context} must be a multiple of the period {p}")
        if self.pattern.family == "xtrans":
            net = dn.XTransDemosaick(pretrained=True, pad=False)
            theirs = dn.mosaic.xtrans_cell(torch=False)
        else:
            net = dn.BayerDemosaick(pretrained=True, pad=False)
            theirs = dn.mosaic.bayer(np.ones((3, 2, 2), np.float32), return_mask=True)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        layout = np.argmax(theirs, axis=0)
        al = cfa_mod.align(layout)
        # their[(y + dy) % P, (x + dx) % P] == canonical[y, x]: an array whose first dy rows
        # and dx columns precede our mosaic starts in their phase.
        self.shift = (al.dy, al.dx)
        self.their_layout = layout
        self.tile = tile
        self.context = context
        self.shrink = self._measure_shrink()
        # context actually used per side: the shrink rounded up to whole periods
        self.margin = -(-self.shrink // p) * p
        if self.margin > context:
            raise ConfigError(f"baseline.context={context} px is less than the network's "
                              f"{self.shrink} px border loss; use at least {self.margin}")

    @torch.inference_mode()
    def _measure_shrink(self) -> int:
        n = 96
        out = self.net(torch.zeros(1, 3, n, n, device=self.device))
        return (n - out.shape[-1]) // 2

    @torch.inference_mode()
    def run(self, cfa: np.ndarray) -> np.ndarray:
        from demosaic.color import linear_to_srgb, srgb_to_linear

        h, w = cfa.shape
        p, c, (dy, dx) = self.pattern.period, self.context, self.shift
        enc = linear_to_srgb(np.clip(cfa, 0.0, 1.0).astype(np.float32))
        # Pad so that: the array starts in their phase (dy, dx), there are c px of context
        # on every side, and the bottom/right reach a whole number of tiles.
        tile_h = min(self.tile, -(-(h + dy) // 6) * 6)  # no tile larger than the image
        tile_w = min(self.tile, -(-(w + dx) // 6) * 6)
        th = -(-(h + dy) // tile_h) * tile_h
        tw = -(-(w + dx) // tile_w) * tile_w
        big = phase_extend(enc, p, top=dy + c, left=dx + c, bottom=th - h - dy + c,
                           right=tw - w - dx + c)
        lay = np.tile(self.their_layout, (-(-big.shape[0] // p), -(-big.shape[1] // p)))
        lay = lay[: big.shape[0], : big.shape[1]]
        three = np.stack([(lay == k) * big for k in range(3)]).astype(np.float32)
        out = np.empty((3, th, tw), np.float32)
        s, a = self.shrink, self.margin
        for y in range(0, th, tile_h):
            for x in range(0, tw, tile_w):
                # Input windows start a whole number of periods before the tile (so they
                # start in the network's phase: it matters for the Bayer net's stride-2
                # packing); output pixel j of a window is input pixel j + s.
                win = three[:, y + c - a: y + c + tile_h + a, x + c - a: x + c + tile_w + a]
                res = self.net(torch.from_numpy(np.ascontiguousarray(win))[None].to(self.device))
                out[:, y: y + tile_h, x: x + tile_w] = (
                    res[0, :, a - s: a - s + tile_h, a - s: a - s + tile_w].float().cpu().numpy())
        return srgb_to_linear(out[:, dy: dy + h, dx: dx + w])


@dataclass
class DemosaicNetConfig:
    """Keys of ``demosaicnet`` (see :class:`DemosaicNetBaseline`)."""

    cfa: str = "xtrans"
    device: str = "cpu"
    tile: int = 384
    context: int = 36


BASELINES.register("demosaicnet", DemosaicNetConfig)(DemosaicNetBaseline)


# --------------------------------------------------------------------------------------
# colour-demosaicing (Bayer)
# --------------------------------------------------------------------------------------

COLOUR_METHODS: dict[str, str] = {
    "cd_bilinear": "demosaicing_CFA_Bayer_bilinear",
    "malvar2004": "demosaicing_CFA_Bayer_Malvar2004",
    "menon2007": "demosaicing_CFA_Bayer_Menon2007",
}


class ColourDemosaicingBaseline(_Baseline):
    """A Bayer method of the ``colour-demosaicing`` package, on the linear mosaic."""

    families = ("bayer",)

    def __init__(self, method: str, cfa: str = "bayer_rggb") -> None:
        if method not in COLOUR_METHODS:
            raise ConfigError(f"unknown colour-demosaicing baseline {method!r}; choose one of "
                              f"{sorted(COLOUR_METHODS)}")
        self.name = method
        super().__init__(cfa)
        self.cd_pattern = "".join("RGB"[c] for row in self.pattern.layout for c in row)

    def run(self, cfa: np.ndarray) -> np.ndarray:
        import colour_demosaicing

        fn = getattr(colour_demosaicing, COLOUR_METHODS[self.name])
        with np.errstate(all="ignore"):
            rgb = fn(cfa.astype(np.float64), pattern=self.cd_pattern)
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1))


@dataclass
class ColourConfig:
    """Keys of the colour-demosaicing baselines."""

    cfa: str = "bayer_rggb"


for _name in COLOUR_METHODS:
    BASELINES.register(_name, ColourConfig)(functools.partial(ColourDemosaicingBaseline, _name))


# --------------------------------------------------------------------------------------
# Name resolution
# --------------------------------------------------------------------------------------


def method_names() -> list[str]:
    """Names :func:`build_method` accepts: the baselines and the parameter-free ``bilinear``
    model (any other parameter-free model of ``MODELS`` works too)."""
    return sorted(set(BASELINES.names()) | {"bilinear"})


def build_method(name: str, cfa: str = "xtrans", **kwargs: Any) -> Demosaicker:
    """Build a baseline by name, or a registered model without trained weights.

    ``bilinear`` (and any other model in ``MODELS``) is built through the model registry;
    models with trainable parameters are refused (evaluate a checkpoint instead).

    Raises:
        ConfigError: unknown name, unsupported CFA, or a trainable model.
    """
    from demosaic.models import MODELS

    if name in BASELINES.names():
        return BASELINES.build({"name": name, "cfa": cfa, **kwargs}, where="baseline")
    if name in MODELS.names():
        from demosaic.models import build_model

        model = build_model({"name": name, "cfa": cfa, **kwargs}, where="model")
        if any(p.requires_grad for p in model.parameters()):
            raise ConfigError(f"model {name!r} has trainable weights; evaluate a trained "
                              f"checkpoint with ckpt=PATH instead of {name!r}")
        return model.eval()
    raise ConfigError(f"unknown baseline {name!r}; choose one of {method_names()}")


def default_baselines(cfa: str) -> list[str]:
    """Baselines shown beside a model's output in comparison crops by default."""
    return ["markesteijn3"] if get_pattern(cfa).family == "xtrans" else ["menon2007"]


__all__ = ["BASELINES", "BaselineError", "Demosaicker", "LibRawBaseline", "DemosaicNetBaseline",
           "ColourDemosaicingBaseline", "build_method", "method_names", "default_baselines",
           "phase_extend", "check_sampled_scale", "LIBRAW_ALGORITHMS",
           "COLOUR_METHODS"]
