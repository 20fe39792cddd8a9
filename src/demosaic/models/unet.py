"""A packed U-Net for X-Trans (6x6) and Bayer mosaics, exposure-equivariant by construction.

Data flow for a mosaic ``(N, 1, H, W)`` in canonical phase and packing factor ``s``::

    pack      pixel-unshuffle by s -> (N, C_in, H/s, W/s)
                s a multiple of the period: the 1-channel mosaic, C_in = s^2; every
                channel is one fixed position of the CFA cell, so it has a fixed colour.
                s a divisor of the period (e.g. 3 or 2 for X-Trans): the 3-channel masked
                mosaic (cfa.masked_mosaic), C_in = 3 s^2, so each channel still means "colour
                c at offset (i, j)" even though an s x s block sees different CFA phases.
    stem      3x3 conv -> width
    encoder   per level: `blocks[i]` residual blocks, then a 2x2 stride-2 conv (width doubles)
    bottom    `blocks[depth-1]` residual blocks at the coarsest level
    decoder   2x2 stride-2 transposed conv, concatenate the skip, 3x3 conv, `blocks[i]` blocks
    head      3x3 conv -> 3 s^2 channels, pixel-shuffle by s -> (N, 3, H, W)
    residual  (optional) add the bilinear interpolation (models.bilinear), so the network
              only learns a correction
    keep      (optional) out = mask * cfa + (1 - mask) * out: measured samples pass exactly
    noise     (optional, ``noise_input``) a second input, the balanced noise coefficients
              ``(N, 2, 3)`` of the mosaic (:meth:`demosaic.noise.NoiseProfile.balanced`), turned
              into the per-pixel noise standard deviation in the mosaic's units, packed like
              the mosaic (:func:`demosaic.noise.noise_map.packed_noise_map`, s^2 channels) and
              added to the stem through its own bias-free 3x3 conv;
              with ``keep`` a bias-free 1x1 head adds a learned correction to each measured
              sample (to denoise it). Both start at zero, so a network grown from one without
              the input computes exactly what it did, and a zero map (a clean file, or
              ``--denoise 0``) asks for demosaicking only.

Why ``f(k x) = k f(x)`` for every ``k > 0`` holds exactly (up to float rounding):
every layer is positively homogeneous of degree 1. Convolutions and transposed
convolutions have **no bias** (a bias adds a constant that does not scale with ``k``);
activations are LeakyReLU (``relu(k x) = k relu(x)`` for ``k > 0``); there is **no
normalisation layer** (BatchNorm/LayerNorm/GroupNorm divide by a statistic plus ``eps`` and add a
bias); down-sampling is a bias-free strided convolution, up-sampling a bias-free transposed
convolution; pixel-(un)shuffle and concatenation are permutations; the residual base
(normalised convolution) is linear; the final sample re-insertion is linear. A composition
of degree-1 homogeneous maps is degree-1 homogeneous. So a model trained on images exposed
around 1.0 behaves identically on a frame 3 stops darker, and highlights above 1.0 simply
scale: nothing clamps, the output is linear light.

Bias-free ReLU networks train well for restoration (Mohan et al., "Robust and interpretable
blind image denoising via bias-free CNNs", ICLR 2020); they also map 0 to 0 exactly.

Sizes: ``forward`` needs ``H, W`` divisible by ``size_multiple = lcm(s * 2^(depth-1), period)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from demosaic.errors import CFAError, ConfigError
from demosaic.models.base import DemosaicModel, is_eager
from demosaic.models.bilinear import BilinearDemosaic
from demosaic.noise.noise_map import PackedColours, packed_noise_map

log = logging.getLogger(__name__)

#: Negative slope of the LeakyReLU activations (any value keeps positive homogeneity).
NEGATIVE_SLOPE = 0.1


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, expand: int = 0) -> nn.Module:
    """Bias-free convolution; a 3x3 stride-1 one is an :class:`ExpandedConv` when ``expand``."""
    if expand and k == 3 and stride == 1:
        return ExpandedConv(cin, cout, expand)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k // 2 if stride == 1 else 0), bias=False)


class ExpandedConv(nn.Module):
    """A bias-free 3x3 convolution trained in an over-parameterised form and computed as one
    3x3 kernel (re-parameterisation in weight space, as OREPA; the branches of RepVGG/ECBSR
    without their normalisation, which would break exposure equivariance).

    ``kernel = weight + pad(point) + expand_out . expand_in``: the 3x3 ``weight`` of a plain
    :class:`torch.nn.Conv2d` (same name, so a plain checkpoint initialises it), a 1x1 branch
    ``point`` and a 1x1 expansion to ``expand * cin`` channels followed by a 3x3 convolution
    back to ``cout``. Every branch is linear and bias-free, and a 1x1 convolution maps zero
    padding to zero, so the sum is exactly one 3x3 convolution with zero padding: training
    sees more parameters, inference costs the same as the plain layer, and
    :func:`fold_expanded_state` turns a trained state into the plain network's.
    The extra branches start at zero (``point``, ``expand_out``; ``expand_in`` is a fixed
    stack of identities, drawing no random numbers), so a new model starts as the plain one
    with the same seed would.

    Input ``(N, cin, h, w)`` -> ``(N, cout, h, w)``.
    """

    def __init__(self, cin: int, cout: int, expand: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.Conv2d(cin, cout, 3, bias=False).weight.detach().clone())
        self.point = nn.Parameter(torch.zeros(cout, cin, 1, 1))
        eye = torch.eye(cin).repeat(expand, 1)  # (expand * cin, cin)
        self.expand_in = nn.Parameter(eye.view(expand * cin, cin, 1, 1))
        self.expand_out = nn.Parameter(torch.zeros(cout, expand * cin, 3, 3))

    def kernel(self) -> torch.Tensor:
        """The equivalent 3x3 kernel ``(cout, cin, 3, 3)``."""
        return merge_expanded(self.weight, self.point, self.expand_in, self.expand_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel(), padding=1)


def merge_expanded(weight: torch.Tensor, point: torch.Tensor, expand_in: torch.Tensor,
                   expand_out: torch.Tensor) -> torch.Tensor:
    """One 3x3 kernel ``(cout, cin, 3, 3)`` from the branches of an :class:`ExpandedConv`."""
    chain = torch.einsum("omyx,mi->oiyx", expand_out, expand_in[:, :, 0, 0])
    return weight + F.pad(point, (1, 1, 1, 1)) + chain


def fold_expanded_state(state: Mapping[str, torch.Tensor], kwargs: Mapping[str, Any]
                        ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and constructor arguments of the plain U-Net (``expand=0``) that
    computes what a U-Net with ``expand > 0`` and weights ``state`` computes (exact up to
    float rounding). States and arguments without ``expand`` are returned unchanged."""
    kwargs = dict(kwargs)
    if not kwargs.get("expand"):
        return dict(state), kwargs
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("point", "expand_in", "expand_out"):
            continue
        if leaf == "weight" and f"{prefix}.point" in state:
            value = merge_expanded(value.float(), state[f"{prefix}.point"].float(),
                                   state[f"{prefix}.expand_in"].float(),
                                   state[f"{prefix}.expand_out"].float()).to(value.dtype)
        out[key] = value
    kwargs["expand"] = 0
    return out, kwargs


class ResBlock(nn.Module):
    """``x + conv(act(conv(x)))``, bias-free; ``(N, C, h, w) -> (N, C, h, w)``."""

    def __init__(self, ch: int, expand: int = 0) -> None:
        super().__init__()
        self.conv1 = _conv(ch, ch, expand=expand)
        self.conv2 = _conv(ch, ch, expand=expand)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        with torch.no_grad():  # start close to identity: stable with many blocks
            self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class EncoderLevel(nn.Module):
    """Residual blocks at one resolution, then (unless last) a bias-free 2x2 stride-2
    conv to the next level (``width -> 2 width``, spatial size halves)."""

    def __init__(self, ch: int, blocks: int, down_to: int | None, expand: int = 0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(ch, expand) for _ in range(blocks)])
        self.down = _conv(ch, down_to, k=2, stride=2) if down_to is not None else None
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        skip = self.blocks(x)
        if self.down is None:
            return skip, None
        return skip, self.act(self.down(skip))


class DecoderLevel(nn.Module):
    """Bias-free 2x2 stride-2 transposed conv up from ``2 ch``, concatenate the skip, fuse
    with a 3x3 conv, then residual blocks."""

    def __init__(self, ch: int, blocks: int, expand: int = 0) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * ch, ch, 2, stride=2, bias=False)
        self.fuse = _conv(2 * ch, ch, expand=expand)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        self.blocks = nn.Sequential(*[ResBlock(ch, expand) for _ in range(blocks)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.act(self.up(x))
        x = self.act(self.fuse(torch.cat([x, skip], dim=1)))
        return self.blocks(x)


def _unshuffle_channels_last(x: torch.Tensor, s: int) -> torch.Tensor:
    """``F.pixel_unshuffle(x, s)``'s values, ``(N, C, H, W) -> (N, C s^2, H/s, W/s)``, laid
    out ``channels_last``: the layout the convolutions of a ``channels_last`` copy
    (:func:`demosaic.inference.tiling.for_inference`) work in, so the stem does not reorder it
    again. Same channel order (``c s^2 + i s + j``), same numbers."""
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // s, s, w // s, s).permute(0, 2, 4, 1, 3, 5).contiguous()
    return y.view(n, h // s, w // s, c * s * s).permute(0, 3, 1, 2)


def _shuffle(y: torch.Tensor, s: int) -> torch.Tensor:
    """``F.pixel_shuffle(y, s)``, ``(N, C s^2, h, w) -> (N, C, h s, w s)`` contiguous; reads
    a ``channels_last`` ``y`` (the head's output in a ``channels_last`` copy) in its own
    memory order, which is faster than ``pixel_shuffle``'s strided gather. Same numbers."""
    if y.is_contiguous() or not y.is_contiguous(memory_format=torch.channels_last):
        return F.pixel_shuffle(y, s)
    n, cs2, h, w = y.shape
    c = cs2 // (s * s)
    return (y.permute(0, 2, 3, 1).reshape(n, h, w, c, s, s).permute(0, 3, 1, 4, 2, 5)
            .reshape(n, c, h * s, w * s))


def _blocks_per_level(blocks: int | list[int], depth: int) -> list[int]:
    """``model.blocks`` as one count per level; raises :class:`ConfigError` when invalid."""
    if isinstance(blocks, bool):
        raise ConfigError(f"model.blocks={blocks} is invalid; use an integer >= 0 or a list of "
                          f"{depth} of them")
    if isinstance(blocks, int):
        counts = [blocks] * depth
    else:
        try:
            counts = [int(b) for b in blocks]
        except (TypeError, ValueError):
            raise ConfigError(f"model.blocks={blocks!r} is invalid; use an integer >= 0 or a list "
                              f"of {depth} of them") from None
        if len(counts) != depth or any(str(c) != str(b).strip() for c, b in zip(counts, blocks)):
            raise ConfigError(f"model.blocks={list(blocks)} is invalid: give one integer per level "
                              f"({depth} for model.depth={depth}), finest level first")
    if any(c < 0 for c in counts):
        raise ConfigError(f"model.blocks={blocks} is invalid; block counts must be >= 0")
    return counts


class UNetDemosaic(DemosaicModel):
    """Packed, bias-free U-Net demosaicker (see the module docstring for the data flow).

    Args:
        cfa: Pattern name, ``"xtrans"`` (default) or a Bayer phase such as ``"bayer_rggb"``.
        packing: Pixel-unshuffle factor ``s``; ``None`` = the pattern period (6 for X-Trans,
            2 for Bayer). Must be a divisor or a multiple of the period.
        width: Channels at the finest level; level ``i`` has ``width * 2**i``.
        depth: Number of resolution levels (1 = no down-sampling).
        blocks: Residual blocks per level (encoder and decoder each): one int for every
            level, or a list of ``depth`` ints (finest level first). Every block costs about the
            same per input pixel at every level (a quarter of the pixels, twice the channels), so
            extra blocks at the coarse levels buy receptive field and capacity at the same
            compute and run faster on a CPU (wider convolutions). A block starts close to the
            identity, so a network with more blocks can be initialised from one with fewer
            (``trainer.init_partial``).
        keep_samples: Output the measured value at every sampled position (exact).
        residual: Predict a correction on top of the bilinear interpolation. Default true:
            in a quick check (X-Trans, packing 6, width 32, 400 steps of batch 16 x 96 px on
            CBSD432, linear PSNR on CBSD68 crops) it reached 32.3 dB against 25.6 dB without.
        expand: ``0`` (default): plain 3x3 convolutions. ``r > 0``: every 3x3 stride-1
            convolution is an :class:`ExpandedConv` with a 1x1 expansion to ``r`` times its
            input channels, for training only: :func:`fold_expanded_state` (applied by
            :func:`demosaic.models.checkpoint.load_model` and to release checkpoints) gives
            the plain network with the same outputs and cost.
        noise_input: Take the noise map as a second input (module docstring). Checkpoints
            written before it existed load with ``False`` and run as they did.

    Input/output: mosaic ``(N, 1, H, W)``, canonical phase, linear light, ``H, W`` multiples
    of :attr:`size_multiple` -> ``(N, 3, H, W)`` linear RGB, unclamped.
    """

    def __init__(self, cfa: str = "xtrans", packing: int | None = None, width: int = 32,
                 depth: int = 3, blocks: int | list[int] = 1, keep_samples: bool = True,
                 residual: bool = True, expand: int = 0, noise_input: bool = False) -> None:
        super().__init__(cfa)
        period = self.pattern.period
        s = period if packing is None else int(packing)
        if s < 1 or (s % period and period % s):
            raise ConfigError(f"model.packing={packing} does not fit the {self.pattern.name} period "
                              f"{period}; use a divisor or a multiple of {period} (or null for {period})")
        for key, val, low in (("width", width, 1), ("depth", depth, 1), ("expand", expand, 0)):
            if val < low:
                raise ConfigError(f"model.{key}={val} is invalid; use an integer >= {low}")
        per_level = _blocks_per_level(blocks, depth)
        self.packing = s
        self.masked_input = s % period != 0
        self.keep_samples = keep_samples
        self.residual = residual
        mult = s * 2 ** (depth - 1)
        self.size_multiple = mult * period // math.gcd(mult, period)

        cin = (3 if self.masked_input else 1) * s * s
        widths = [width * 2**i for i in range(depth)]
        self.stem = _conv(cin, widths[0], expand=expand)
        self.encoder = nn.ModuleList(
            EncoderLevel(widths[i], per_level[i], widths[i + 1] if i + 1 < depth else None, expand)
            for i in range(depth)
        )
        self.decoder = nn.ModuleList(DecoderLevel(widths[i], per_level[i], expand)
                                     for i in reversed(range(depth - 1)))
        self.head = _conv(widths[0], 3 * s * s, expand=expand)
        self.noise_input = bool(noise_input)
        self.noise_stem = _conv(s * s, widths[0], expand=expand) if self.noise_input else None
        self.sample_head = (_conv(widths[0], s * s, k=1) if self.noise_input and keep_samples
                            else None)
        for layer in (self.noise_stem, self.sample_head):
            if layer is not None:  # start at zero: the network computes what it did without
                with torch.no_grad():
                    layer.weight.zero_()
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)
        if residual:
            with torch.no_grad():  # start near the bilinear base
                self.head.weight.mul_(0.1)
        # Parameter-free; a submodule so it follows .to(device). No state_dict entries.
        self.base = BilinearDemosaic(cfa, radius=1, keep_samples=False) if residual else None
        log.debug("built UNetDemosaic(%s, packing=%d, widths=%s, blocks=%s): %d parameters",
                  self.pattern.name, s, widths, per_level, sum(p.numel() for p in self.parameters()))

    def pack(self, cfa: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        """Mosaic ``(N, 1, H, W)`` -> network input ``(N, C_in, H/s, W/s)`` (``masked``:
        the 3-channel masked mosaic, if the caller has it)."""
        if self.masked_input:
            x = masked if masked is not None else self.masked_mosaic(cfa)
        else:
            x = cfa
        return self._unshuffle(x)

    def packed_colours(self, packed: torch.Tensor) -> PackedColours:
        """The noise map's view of the colour layout (:class:`PackedColours`) of a packed
        masked mosaic ``(N, 3 s^2, h, w)`` in canonical phase: the one-hot mask of one
        ``lcm(P, s)`` tile unshuffled by ``s`` and repeated (periodic), cached for the last
        shape."""
        h, w = packed.shape[-2:]
        key = (h, w, packed.device, packed.dtype)
        cached = getattr(self, "_packed_colours_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        s, p = self.packing, self.pattern.period
        side = s * p // math.gcd(s, p)
        tile = self.cell_mask.to(packed.dtype).repeat(1, side // p, side // p)[None]
        cell = F.pixel_unshuffle(tile, s) if s > 1 else tile
        colours = PackedColours.from_cell(cell, h, w)
        self._packed_colours_cache = (key, colours)
        return colours

    def _unshuffle(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, C s^2, H/s, W/s)`` in the stem's memory layout."""
        if self.packing == 1:
            return x
        if self.stem.weight.is_contiguous(memory_format=torch.channels_last):
            return _unshuffle_channels_last(x, self.packing)
        return F.pixel_unshuffle(x, self.packing)

    def forward(self, cfa: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Mosaic ``(N, 1, H, W)`` (and, for a ``noise_input`` model, its balanced noise
        coefficients ``(N, 2, 3)`` or ``(2, 3)``; ``None`` or zeros = a clean mosaic, demosaic
        only) -> linear RGB ``(N, 3, H, W)``, unclamped. A model without the input ignores
        ``noise``."""
        self.check_input(cfa)
        use_noise = self.noise_stem is not None and noise is not None and bool(torch.any(noise != 0))
        masked = (self.masked_mosaic(cfa) if (self.masked_input or self.base is not None or use_noise)
                  else None)
        packed = self.pack(cfa, masked)
        x = self.stem(packed)
        if use_noise:
            if noise.shape[-2:] != (2, 3):
                raise CFAError(f"noise coefficients of shape {tuple(noise.shape)}: expected "
                               "(N, 2, 3) or (2, 3), [[m_c S_c], [m_c^2 O_c]]")
            packed_masked = packed if self.masked_input else self._unshuffle(masked)
            sigma = packed_noise_map(packed_masked, self.packed_colours(packed_masked), noise)
            x = x + self.noise_stem(sigma)
        x = self.act(x)
        skips = []
        for level in self.encoder:
            skip, x_down = level(x)
            skips.append(skip)
            x = x_down if x_down is not None else skip
        for level, skip in zip(self.decoder, reversed(skips[:-1])):
            x = level(x, skip)
        out = self.head(x)
        out = _shuffle(out, self.packing) if self.packing > 1 else out
        if self.base is not None:
            base = self.base.interpolate(cfa, masked)
            # `out` is a new tensor: add in place, unless autocast made it half (then the sum
            # is promoted to the base's float32, as before)
            out = out.add_(base) if is_eager() and out.dtype == base.dtype else out + base
        if not self.keep_samples:
            return out
        if self.sample_head is not None:
            corr = self.sample_head(x)
            corr = _shuffle(corr, self.packing) if self.packing > 1 else corr
            return self.keep_measured(cfa + corr.to(cfa.dtype), out, in_place=True)
        return self.keep_measured(cfa, out, in_place=True)
