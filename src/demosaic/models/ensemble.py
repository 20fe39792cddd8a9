"""Geometric self-ensemble: a trained model run on the 8 flips/rotations of the mosaic.

Flipping or rotating a mosaic changes its CFA phase: each of the 8 transforms of an X-Trans
mosaic is again an X-Trans mosaic, in another phase (for Bayer, likewise). Every view is
therefore re-aligned before the base model sees it: ``a`` rows and ``b`` columns of the same filter
colours (one period further in, :func:`demosaic.cfa.phase_extend`) are prepended so the view
starts in the canonical phase, the bottom/right are extended to the base's size multiple, and
the output is cropped back and transformed back. The views' outputs are averaged, and the
measured samples re-inserted exactly.

For a mosaic whose sides are multiples of the period (``forward``'s contract) the shift of
each transform does not depend on the size, so it is computed once per view at construction.

Properties kept from the base model: linear in exposure when the base is
(``f(kx) = k f(x)``, the average of equivariant maps), values above 1.0 pass, tiling stays
exact (the ensemble is one convolutional map with a finite receptive field), and it exports
to ONNX (flips, rotations and index gathers are standard operators). Cost: ``views`` times
the base's.
"""

from __future__ import annotations

import logging

import torch

from demosaic import cfa as cfa_mod
from demosaic.errors import ConfigError
from demosaic.models.base import DemosaicModel, call_model
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

#: The transforms ``(k_rot, flip)`` in the order ``views`` takes them: the first 2 are a
#: half turn apart, the first 4 add the mirror images, 8 are all of them.
VIEW_ORDER = ((0, False), (2, False), (0, True), (2, True),
              (1, False), (3, False), (1, True), (3, True))
VIEW_COUNTS = (1, 2, 4, 8)


class GeometricEnsemble(DemosaicModel):
    """Average of ``base`` over ``views`` flips/rotations of the mosaic (see module docstring).

    Args:
        base: A trained :class:`DemosaicModel` (its weights are frozen here).
        views: 1, 2, 4 or 8 (:data:`VIEW_ORDER`).

    Input/output: mosaic ``(N, 1, H, W)`` in the canonical phase of ``base.pattern``, ``H``
    and ``W`` multiples of ``size_multiple`` (= the base's) -> ``(N, 3, H, W)`` linear RGB,
    unclamped.
    """

    def __init__(self, base: DemosaicModel, views: int = 8) -> None:
        check_choice(views, VIEW_COUNTS, "model.views")
        super().__init__(base.pattern.name, size_multiple=base.size_multiple)
        self.base = base.eval()
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.views = views
        self.noise_input = bool(getattr(base, "noise_input", False))
        m, period = self.size_multiple, self.pattern.period
        self._plan: list[tuple[int, bool, int, int]] = []
        for k, flip in VIEW_ORDER[:views]:
            al = cfa_mod.align(cfa_mod.transformed_layout(self.pattern, m, m, k, flip))
            if al.pattern.family != self.pattern.family:  # never for X-Trans or Bayer
                raise ConfigError(f"{self.pattern.name}: transform {(k, flip)} leaves the family")
            self._plan.append((k, flip, (period - al.dy) % period, (period - al.dx) % period))

    def train(self, mode: bool = True) -> GeometricEnsemble:
        """Always evaluation mode: the ensemble is an inference-time method."""
        return super().train(False)

    def forward(self, cfa: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Mosaic ``(N, 1, H, W)`` -> linear RGB ``(N, 3, H, W)``: the mean of the views.
        ``noise``: the base model's noise coefficients (per image, so the same for every view)."""
        self.check_input(cfa)
        m, period = self.size_multiple, self.pattern.period
        total = None
        for k, flip, a, b in self._plan:
            view = cfa_mod.transform_image(cfa, k, flip)
            hv, wv = view.shape[-2:]
            if a or b:  # slices and concatenation: the ONNX export keeps sizes dynamic
                view = cfa_mod.phase_extend(view, period, top=a, left=b, bottom=-a % m,
                                            right=-b % m)
            out = call_model(self.base, view, noise)[..., a:a + hv, b:b + wv]
            out = cfa_mod.transform_image(out, k if flip else -k, flip)  # back
            total = out if total is None else total + out
        mean = total / float(len(self._plan))
        return self.keep_measured(cfa, mean)


__all__ = ["GeometricEnsemble", "VIEW_COUNTS", "VIEW_ORDER"]
