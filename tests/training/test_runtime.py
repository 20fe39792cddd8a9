"""training.runtime.make_optimizer: AdamW as one fused kernel where the device has it, the same
update as the per-tensor implementation (to float rounding), and the default elsewhere."""

from __future__ import annotations

import pytest
import torch

from demosaic.training import runtime


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=g)) for shape in ((8, 4, 3, 3), (8,), (3, 8))]


def _steps(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], n: int = 5) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()


def test_make_optimizer_is_fused_on_the_cpu_and_updates_like_adamw() -> None:
    cpu = torch.device("cpu")
    fused_params, plain_params = _params(0), _params(0)
    opt = runtime.make_optimizer(fused_params, cpu, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05)
    if runtime.torch_version() >= runtime.FUSED_ADAMW_CPU_MIN_TORCH:
        assert opt.defaults["fused"] is True
    plain = torch.optim.AdamW(plain_params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05)
    _steps(opt, fused_params)
    _steps(plain, plain_params)
    for a, b, start in zip(fused_params, plain_params, _params(0)):
        assert (a.detach() - start).abs().max() > 1e-3  # the steps moved it
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)


def test_make_optimizer_falls_back_on_older_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "torch_version", lambda: (2, 3))
    opt = runtime.make_optimizer(_params(0), torch.device("cpu"), lr=1e-3, betas=(0.9, 0.999),
                                 weight_decay=0.0)
    assert not opt.defaults.get("fused")
