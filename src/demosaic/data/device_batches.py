"""Synthetic training batches made on the training device (``trainer.device_batches=true``).

On a GPU the per-item CPU pipeline of :class:`~demosaic.data.synthetic.SyntheticDataset`
(numpy crops, one item at a time, a DataLoader in between) cannot keep up with a small
demosaicking network: the network would wait for data. :class:`DeviceSyntheticBatches`
keeps every decoded source image on the device once (linear light, float32, after the
dataset's ``downsample``) and builds each batch there with a handful of batched tensor
operations, drawing from the **same distributions** as the dataset, in the same order:

1. image uniformly among the dataset's files;
2. crop origin uniformly among the multiples of the CFA period where a crop fits;
3. one of the 8 flips/rotations of the **RGB** crop (:data:`demosaic.cfa.ALL_TRANSFORMS`
   semantics, realised as a gather through transformed index grids, so no loop over samples);
4. log-uniform exposure; 5. optional chroma scaling; 6. optional highlights above 1.0;
7. ``space: srgb`` only: encode and clip; 8. mosaic through the pattern; 9. optional
   Poisson-Gaussian noise on the mosaic; or, with ``camera.enabled`` (instead of 8-9), the
   camera simulation of :func:`demosaic.sim.camera.simulate_capture`, batched: a body per crop,
   scene light, white-balance error, raw clipping, the mosaic, noise at a log-uniform ISO,
   black level, quantisation, white clip and the as-shot white balance (``clean_prob`` of the
   crops stay clean linear-sRGB mosaics).

The random numbers come from a ``torch.Generator`` on the device, so the crops are not the
ones the CPU dataset would draw for the same seed (the distribution is the same); a batch
stream is reproducible for a given ``(seed, start_step, rank)`` on a given device type.
The Poisson draws use ``torch.poisson`` on the CPU and CUDA, and on MPS, which has no kernel
for it, the exact sampler of :mod:`demosaic.data.poisson` (same law, other numbers).

Batches follow the sample contract of :mod:`demosaic.data.common`, with a batch dimension:
``cfa`` ``(B, 1, P, P)``, ``mask`` ``(B, 3, P, P)`` (an expanded view), ``target``
``(B, 3, P, P)``; linear light, white = 1.0, unclamped, top-left pixel at phase ``(0, 0)``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from demosaic import cfa as cfa_mod
from demosaic.sim.noise_level import LEVEL_ERROR, batch_coefficients
from demosaic.sim.camera import LEVELS, NoiseModel, load_bodies
from demosaic.color import linear_to_srgb
from demosaic.data import poisson as poisson_mod
from demosaic.data.synthetic import SyntheticDataset
from demosaic.data.transforms import LUMA_709
from demosaic.devices import uses_mps_kernels_only
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: Highlight spots per highlighted crop are drawn from ``1 .. MAX_SPOTS`` (as in
#: :func:`demosaic.data.transforms.add_highlights`).
MAX_SPOTS = 3


def _stream_seed(seed: int, start_step: int, rank: int) -> int:
    """A 63-bit generator seed from the run seed, the step the stream starts at and the rank."""
    mixed = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(start_step), int(rank)])
    return int(mixed.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _to_device_f32(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` as float32 on ``device``: converted on the host first, then copied (one copy
    that changes both device and dtype is what MPS gets wrong, pytorch/pytorch#197715)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def transform_grids(size: int) -> torch.Tensor:
    """Index grids of the 8 rigid transforms of a ``size x size`` square.

    Returns:
        ``(8, 2, size, size)`` int64: for transform ``t`` (the order of
        :data:`demosaic.cfa.ALL_TRANSFORMS`), pixel ``(u, v)`` of
        ``cfa.transform_image(crop, *ALL_TRANSFORMS[t])`` is ``crop[grids[t, 0, u, v],
        grids[t, 1, u, v]]``. Transforms only move pixels, so transforming the index grids
        the same way gives exactly that map.
    """
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = torch.stack([rows, cols])  # (2, S, S)
    return torch.stack([cfa_mod.transform_image(base, k, f) for k, f in cfa_mod.ALL_TRANSFORMS])


class DeviceSyntheticBatches:
    """An endless iterator of training batches synthesised on ``device``.

    Args:
        dataset: The :class:`SyntheticDataset` whose files and augmentation settings to use
            (its images are decoded once, through its own cache, then moved to ``device``).
        batch_size: Crops per batch.
        device: Where the images live and the batches are made (the training device).
        seed: Run seed; with ``start_step`` and ``rank`` it seeds the device generator.
        start_step: The training step the stream starts at (a resumed run gets a fresh,
            still reproducible stream).
        rank: Process rank in distributed training (each rank draws different crops).

    Device memory: the decoded images, 12 bytes per pixel after downsampling (CBSD432 +
    Sun & Hays 80 at ``downsample: 2``: about 32 Mpx, 380 MB).
    """

    def __init__(self, dataset: SyntheticDataset, batch_size: int, device: torch.device | str,
                 *, seed: int = 0, start_step: int = 0, rank: int = 0) -> None:
        if not isinstance(dataset, SyntheticDataset):
            raise ConfigError(
                "trainer.device_batches=true needs a dataset.train of name 'synthetic' (photographs "
                f"mosaicked on the fly); got {type(dataset).__name__}. Set "
                "trainer.device_batches=false for this dataset")
        if batch_size <= 0:
            raise ConfigError(f"trainer.batch_size: must be positive, got {batch_size}")
        self.ds = dataset
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.size = dataset.patch_size
        self.period = dataset.pattern.period
        heights, widths, offsets, chunks = [], [], [], []
        total = 0
        for i in range(len(dataset.files)):
            img = dataset.linear_source(i)  # (H, W, 3) float32 linear light
            h, w = img.shape[:2]
            heights.append(h)
            widths.append(w)
            offsets.append(total)
            total += h * w
            chunks.append(torch.from_numpy(np.ascontiguousarray(img.reshape(-1, 3))))
        # (total, 3): one row per pixel, so a gather reads 12 contiguous bytes per pixel
        self.pixels = torch.cat(chunks).to(self.device)
        self.heights = torch.tensor(heights, dtype=torch.int64, device=self.device)
        self.widths = torch.tensor(widths, dtype=torch.int64, device=self.device)
        self.offsets = torch.tensor(offsets, dtype=torch.int64, device=self.device)
        self.grids = transform_grids(self.size).to(self.device)
        self.mask = torch.from_numpy(cfa_mod.mask(dataset.pattern, self.size, self.size)).to(self.device)
        self.luma = torch.from_numpy(LUMA_709).to(self.device)
        self.camera = dataset.camera
        if self.camera is not None:
            bodies = load_bodies(dataset.pattern.family, self.camera.matrices, self.camera.models)
            # float64 tables: to float32 on the host, then to the device (MPS has no float64)
            self.cam_matrices = _to_device_f32(np.stack([b.srgb_to_camera for b in bodies]),
                                               self.device)
            self.cam_neutrals = _to_device_f32(np.stack([b.neutral for b in bodies]), self.device)
            self.cam_levels = torch.tensor([LEVELS[int(b)] for b in self.camera.bits],
                                           dtype=torch.float32, device=self.device)
            self.noise_model = NoiseModel(**dict(self.camera.noise))
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(_stream_seed(seed, start_step, rank))
        log.info("device batches: %d images (%.1f Mpx, %.0f MB) on %s, %d crops of %d px per batch",
                 len(heights), total / 1e6, self.pixels.numel() * 4 / 1e6, self.device,
                 self.batch_size, self.size)

    # -- random draws -----------------------------------------------------------------
    def _uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _log_uniform(self, bounds: tuple[float, float], n: int) -> torch.Tensor:
        lo, hi = math.log(bounds[0]), math.log(bounds[1])
        return torch.exp(lo + (hi - lo) * self._uniform(n))

    def _poisson(self, rate: torch.Tensor) -> torch.Tensor:
        """Poisson counts of mean ``rate`` (``>= 0``): ``torch.poisson`` where the device has
        a kernel for it, else :func:`demosaic.data.poisson.poisson` (the same law)."""
        if uses_mps_kernels_only(self.device):
            return poisson_mod.poisson(rate, self.generator)
        return torch.poisson(rate, generator=self.generator)

    def _index(self, high: torch.Tensor) -> torch.Tensor:
        """A uniform integer in ``[0, high)`` per element of ``high`` (int64, ``>= 1``)."""
        draw = (self._uniform(high.shape[0]) * high).long()
        return torch.minimum(draw, high - 1)  # rand() < 1, but guard the float rounding

    # -- the pipeline -------------------------------------------------------------------
    def crops(self, n: int) -> torch.Tensor:
        """Steps 1-3: ``(n, 3, P, P)`` float32 linear crops, already flipped/rotated
        (unless the dataset's ``augment`` is false)."""
        p, period = self.size, self.period
        img = self._index(torch.full((n,), len(self.heights), device=self.device))
        h, w = self.heights[img], self.widths[img]
        y0 = self._index((h - p) // period + 1) * period
        x0 = self._index((w - p) // period + 1) * period
        if self.ds.augment:
            t = self._index(torch.full((n,), len(cfa_mod.ALL_TRANSFORMS), device=self.device))
        else:  # identity only
            t = torch.zeros(n, dtype=torch.int64, device=self.device)
        grid = self.grids[t]  # (n, 2, P, P)
        rows = y0[:, None, None] + grid[:, 0]
        cols = x0[:, None, None] + grid[:, 1]
        flat = self.offsets[img][:, None, None] + rows * w[:, None, None] + cols
        return self.pixels[flat].permute(0, 3, 1, 2).contiguous()  # (n, 3, P, P)

    def _saturate(self, rgb: torch.Tensor) -> torch.Tensor:
        """Step 5 (:func:`demosaic.data.transforms.adjust_saturation`, batched)."""
        n = rgb.shape[0]
        chosen = self._uniform(n) < self.ds.saturation_prob
        factor = torch.where(chosen, self._log_uniform(self.ds.saturation_range, n),
                             torch.ones(n, device=self.device))
        luma = torch.einsum("c,nchw->nhw", self.luma, rgb)[:, None]
        out = (luma + factor[:, None, None, None] * (rgb - luma)).clamp_min(0.0)
        return torch.where(chosen[:, None, None, None], out, rgb)

    def _blob(self, cy: torch.Tensor, cx: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``(n, P, P)`` Gaussian bumps of peak 1 centred at ``(cy, cx)`` (px)."""
        ax = torch.arange(self.size, dtype=torch.float32, device=self.device)
        s = (2.0 * sigma * sigma)[:, None]
        gy = torch.exp(-((ax[None] - cy[:, None]) ** 2) / s)
        gx = torch.exp(-((ax[None] - cx[:, None]) ** 2) / s)
        return gy[:, :, None] * gx[:, None, :]

    def _highlights(self, rgb: torch.Tensor) -> torch.Tensor:
        """Step 6 (:func:`demosaic.data.transforms.add_highlights`, batched): a bright
        region of gain ``g`` and 1-3 near-white specular spots of peak ``0.7 g .. g``."""
        n, p = rgb.shape[0], self.size
        chosen = self._uniform(n) < self.ds.highlight_prob
        gain = self._log_uniform(self.ds.highlight_gain, n)
        region = self._blob(self._uniform(n) * p, self._uniform(n) * p,
                            (0.08 + 0.22 * self._uniform(n)) * p)
        out = rgb * (1.0 + (gain - 1.0)[:, None, None] * region)[:, None]
        spots = self._index(torch.full((n,), MAX_SPOTS, device=self.device)) + 1
        for j in range(MAX_SPOTS):
            sy = self._index(torch.full((n,), p, device=self.device)).float()
            sx = self._index(torch.full((n,), p, device=self.device)).float()
            amp = gain * (0.7 + 0.3 * self._uniform(n)) * (j < spots).float()
            tint = 0.9 + 0.1 * self._uniform(n, 3)
            tint = tint / tint.amax(dim=1, keepdim=True)
            spot = self._blob(sy, sx, 0.5 + 2.5 * self._uniform(n))
            out = out + (amp[:, None] * tint)[:, :, None, None] * spot[:, None]
        return torch.where(chosen[:, None, None, None], out, rgb)

    def _noise(self, mosaic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 9 (:func:`demosaic.data.transforms.add_poisson_gaussian`, batched):
        ``(noisy mosaic, noise coefficients (n, 2, 3))``."""
        n = mosaic.shape[0]
        a1 = self._log_uniform(self.ds.noise_shot, n)
        b1 = self._log_uniform(self.ds.noise_read, n)
        a, b = a1[:, None, None, None], b1[:, None, None, None]
        shot = self._poisson(mosaic.clamp_min(0.0) / a) * a
        read = torch.randn(mosaic.shape, generator=self.generator, device=self.device) * b
        level = batch_coefficients(a1, b1, torch.ones(n, 3, device=self.device), self._normal(n, 2),
                                   LEVEL_ERROR)
        return shot + read + mosaic.clamp_max(0.0), level

    def _capture(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Steps 8-9 with a camera (:func:`demosaic.sim.camera.simulate_capture`, batched):
        ``(mosaic (n, 1, P, P), target (n, 3, P, P), noise coefficients (n, 2, 3))`` in
        balanced camera RGB."""
        cam, n = self.camera, rgb.shape[0]
        body = self._index(torch.full((n,), self.cam_matrices.shape[0], device=self.device))
        light = torch.exp(float(cam.illuminant_sigma) * self._normal(n, 3))
        err = torch.exp(float(cam.wb_error) * self._normal(n, 3))
        light[:, 1] = 1.0
        err[:, 1] = 1.0
        m = light[:, :, None] * self.cam_matrices[body] * float(cam.headroom)   # (n, 3, 3)
        raw = torch.einsum("nck,nkhw->nchw", m, rgb).clamp(0.0, 1.0)
        neutral = self.cam_neutrals[body] * light * err
        mult = neutral[:, 1:2] / neutral                                       # G = 1
        iso = self._log_uniform((float(cam.iso_range[0]), float(cam.iso_range[1])), n)
        a, b = self.noise_model.params(iso)
        clean = (raw * self.mask).sum(dim=1, keepdim=True)
        shot = self._poisson(clean / a[:, None, None, None])
        noisy = shot * a[:, None, None, None] + self._normal(*clean.shape) * b[:, None, None, None]
        level = self.cam_levels[self._index(torch.full((n,), self.cam_levels.shape[0],
                                                       device=self.device))]
        black, white = level[:, 0, None, None, None], level[:, 1, None, None, None]
        dn = torch.round(black + noisy * (white - black)).clamp(min=0.0).minimum(white)
        gains = (mult[:, :, None, None] * self.mask).sum(dim=1, keepdim=True)
        mosaic = (dn - black) / (white - black) * gains
        target = raw * mult[:, :, None, None]
        level = batch_coefficients(a, b, mult, self._normal(n, 2), float(cam.level_error))
        if cam.clean_prob > 0:
            keep = (self._uniform(n) < cam.clean_prob)[:, None, None, None]
            mosaic = torch.where(keep, (rgb * self.mask).sum(dim=1, keepdim=True), mosaic)
            target = torch.where(keep, rgb, target)
            level = torch.where(keep[:, :, 0], torch.zeros_like(level), level)
        return mosaic, target, level

    def _normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    @torch.no_grad()
    def batch(self) -> dict[str, torch.Tensor]:
        """One batch ``{"cfa", "mask", "target", "noise"}`` (shapes in the module docstring;
        ``noise`` ``(n, 2, 3)``: :mod:`demosaic.sim.noise_level`)."""
        ds, n = self.ds, self.batch_size
        rgb = self.crops(n)
        rgb = rgb * self._log_uniform(ds.exposure_range, n)[:, None, None, None]
        if ds.saturation_prob > 0:
            rgb = self._saturate(rgb)
        if ds.highlight_prob > 0:
            rgb = self._highlights(rgb)
        if self.camera is not None:
            mosaic, target, level = self._capture(rgb)
            return {"cfa": mosaic, "mask": self.mask.expand(n, -1, -1, -1), "target": target,
                    "noise": level}
        if ds.space == "srgb":
            rgb = linear_to_srgb(rgb).clamp(0.0, 1.0)
        mosaic = (rgb * self.mask).sum(dim=1, keepdim=True)
        level = torch.zeros(n, 2, 3, device=self.device)
        if ds.noise:
            mosaic, level = self._noise(mosaic)
        return {"cfa": mosaic, "mask": self.mask.expand(n, -1, -1, -1), "target": rgb,
                "noise": level}

    def __iter__(self) -> DeviceSyntheticBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return self.batch()
