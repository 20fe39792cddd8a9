"""Model registry and contract tests, parametrized over every registered model (timm style)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from demosaic import cfa as C
from demosaic.models.checkpoint import load_model, make_checkpoint, save_checkpoint
from demosaic.models.zoo import ENSEMBLES, resolve_method
from demosaic.errors import CFAError, ConfigError
from demosaic.models import MODELS, BilinearDemosaic, DemosaicModel, build_model, create_model

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "model"

# Small variants of every registered model (keeps the suite fast); each name in the registry
# must appear at least once (checked below).
VARIANTS: list[tuple[str, dict]] = [
    ("unet", {"width": 8, "depth": 2}),
    ("unet", {"width": 8, "depth": 2, "residual": False}),
    ("unet", {"width": 4, "depth": 2, "packing": 3}),
    ("unet", {"width": 4, "depth": 3, "blocks": 2, "cfa": "bayer_rggb"}),
    ("unet", {"width": 4, "depth": 1, "blocks": 0, "packing": 12, "keep_samples": False}),
    ("unet", {"width": 4, "depth": 2, "packing": 3, "expand": 2}),
    ("bilinear", {}),
    ("bilinear", {"cfa": "bayer_rggb"}),
    ("bilinear", {"radius": 2, "keep_samples": False}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for n, kw in VARIANTS]


def _model(name: str, kwargs: dict) -> DemosaicModel:
    torch.manual_seed(0)
    return create_model(name, **kwargs)


def _input(model: DemosaicModel, n: int = 2, cells: int = 2, scale: float = 1.0) -> torch.Tensor:
    """A mosaic (n, 1, H, W) of a random image, H = W = cells * size_multiple."""
    torch.manual_seed(1)
    s = model.size_multiple * cells
    return C.mosaic(torch.rand(n, 3, s, s) * scale, model.pattern)


def test_every_registered_model_is_covered() -> None:
    assert sorted({n for n, _ in VARIANTS}) == MODELS.names()
    assert {"unet", "bilinear"} <= set(MODELS.names())


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_forward_shape_and_finite(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs)
    assert model.size_multiple % model.pattern.period == 0
    x = _input(model)
    out = model(x)
    assert out.shape == (x.shape[0], 3, *x.shape[-2:])
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_gradients_reach_every_parameter(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs)
    if kwargs.get("expand"):  # expand_out starts at zero, so expand_in's first gradient is zero
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("expand_out"):
                    p.add_(0.01 * torch.randn_like(p))
    x = _input(model)
    target = torch.rand(x.shape[0], 3, *x.shape[-2:])
    loss = (model(x) - target).abs().mean()
    params = list(model.named_parameters())
    if not params:  # parameter-free baseline: nothing to train, output still differentiable in x
        x.requires_grad_(True)
        (model(x) - target).abs().mean().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        return
    loss.backward()
    for pname, p in params:
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_exposure_equivariance(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs).eval()
    x = _input(model)
    with torch.no_grad():
        base = model(x)
        for k in (0.01, 3.7, 100.0):
            scaled = model(k * x)
            rel = (scaled - k * base).abs().max() / (k * base.abs().max())
            assert rel < 1e-4, f"f({k} x) != {k} f(x): relative error {rel:.2e}"
        assert model(torch.zeros_like(x)).abs().max() == 0  # and f(0) = 0


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_highlights_above_one_survive(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs).eval()
    x = _input(model, scale=4.0)  # linear values up to 4
    with torch.no_grad():
        out = model(x)
    m = C.mask_like(model.pattern, out)
    assert out.max() > 1.5
    # at the *interpolated* positions too, not only where samples are copied through:
    # models with a bilinear path carry the level over; for every model nothing saturates
    if name == "bilinear" or kwargs.get("residual", True):
        assert (out * (1 - m)).max() > 1.5
    with torch.no_grad():
        big = model(100 * x)  # values up to 400
    assert (big * (1 - m)).max() > 10
    # a flat highlight of 3.0 stays exactly 3.0 through the bilinear baseline
    if name == "bilinear":
        flat = torch.full_like(x, 3.0)
        with torch.no_grad():
            torch.testing.assert_close(model(flat), torch.full_like(out, 3.0))


@pytest.mark.parametrize(("name", "kwargs"), [v for v in VARIANTS if v[1].get("keep_samples", True)],
                         ids=[i for i, v in zip(IDS, VARIANTS) if v[1].get("keep_samples", True)])
def test_measured_samples_come_through_exactly(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs).eval()
    x = _input(model)
    with torch.no_grad():
        out = model(x)
    m = C.mask_like(model.pattern, out).bool().expand_as(out)
    sampled = out[m].view(x.shape[0], -1)
    assert torch.equal(sampled, x.expand_as(out)[m].view(x.shape[0], -1))
    # and the round trip through the CFA gives back the mosaic bit for bit
    assert torch.equal(C.mosaic(out, model.pattern), x)


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_demosaic_any_size(name: str, kwargs: dict) -> None:
    model = _model(name, kwargs).eval()
    torch.manual_seed(2)
    rgb = torch.rand(1, 3, 50, 70)
    x = C.mosaic(rgb, model.pattern)
    with torch.no_grad():
        out = model.demosaic(x)
        single = model.demosaic(x[0])
    assert out.shape == (1, 3, 50, 70)
    assert single.shape == (3, 50, 70)
    torch.testing.assert_close(single, out[0])
    assert torch.isfinite(out).all()
    # the padded part never leaks into the crop for a size that needs no padding
    s = model.size_multiple
    xs = C.mosaic(torch.rand(1, 3, s, s), model.pattern)
    with torch.no_grad():
        torch.testing.assert_close(model.demosaic(xs), model(xs))


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=IDS)
def test_checkpoint_round_trip(name: str, kwargs: dict, tmp_path: Path) -> None:
    model = _model(name, kwargs).eval()
    with torch.no_grad():  # make the weights differ from a fresh init
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    spec = model.spec
    assert spec is not None and spec["name"] == name
    ckpt = make_checkpoint(model, spec["name"], spec["kwargs"], cfa=model.pattern.name, step=3)
    path = save_checkpoint(ckpt, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["model"] == {"name": name, "kwargs": spec["kwargs"]}
    loaded = load_model(path)
    assert isinstance(loaded, DemosaicModel) and not loaded.training
    assert loaded.pattern == model.pattern and loaded.size_multiple == model.size_multiple
    x = _input(model, n=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_inference_then_training_same_shape() -> None:
    """The cached sampling mask built under inference_mode must not break a later backward."""
    model = create_model("unet", width=4, depth=2)
    x = _input(model, n=1)
    with torch.inference_mode():
        model(x)
    model(x).sum().backward()
    assert model.stem.weight.grad is not None
    with torch.inference_mode():
        model(x)  # and back


def test_forward_rejects_bad_shapes() -> None:
    model = create_model("unet", width=4, depth=2)
    with pytest.raises(CFAError, match="divisible by 12"):
        model(torch.rand(1, 1, 18, 24))
    with pytest.raises(CFAError, match=r"\(N, 1, H, W\)"):
        model(torch.rand(1, 3, 24, 24))
    with pytest.raises(CFAError, match="smaller than one CFA period"):
        model.demosaic(torch.rand(1, 1, 4, 30))


def test_size_multiple_and_packing() -> None:
    assert create_model("unet", width=4, depth=3).size_multiple == 24  # 6 * 2^2
    assert create_model("unet", width=4, depth=3, packing=3).size_multiple == 12  # lcm(12, 6)
    assert create_model("unet", width=4, depth=2, packing=2).size_multiple == 12  # lcm(2 * 2, 6)
    assert create_model("unet", width=4, cfa="bayer_rggb", depth=3).size_multiple == 8
    assert create_model("unet", width=4, depth=1).pack(torch.zeros(1, 1, 12, 12)).shape == (1, 36, 2, 2)
    assert create_model("unet", width=4, depth=1, packing=3).pack(torch.zeros(1, 1, 12, 12)).shape == (1, 27, 4, 4)


def test_packed_channels_have_fixed_colour() -> None:
    """With packing 3 on X-Trans the masked mosaic is unshuffled: channel (c, i, j) only ever
    holds colour c, whatever the 3x3 block's CFA phase."""
    model = create_model("unet", width=4, depth=1, packing=3)
    x = C.mosaic(torch.ones(1, 3, 12, 12) * torch.tensor([1.0, 10.0, 100.0]).view(1, 3, 1, 1), "xtrans")
    packed = model.pack(x)[0].view(3, 9, 4, 4)
    for c, value in enumerate([1.0, 10.0, 100.0]):
        assert set(packed[c].unique().tolist()) <= {0.0, value}


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="packing=4"):
        create_model("unet", packing=4)
    with pytest.raises(ConfigError, match="wdth"):
        build_model({"name": "unet", "wdth": 3})
    with pytest.raises(ConfigError, match="registered"):
        create_model("resnet")
    with pytest.raises(ConfigError, match="width"):
        create_model("unet", width="wide")
    with pytest.raises(ConfigError, match="radius"):
        create_model("bilinear", radius=0)
    with pytest.raises(Exception, match="unknown CFA pattern"):
        create_model("unet", cfa="foveon")


def test_spec_has_all_arguments() -> None:
    m = create_model("unet", width=4)
    assert m.spec == {"name": "unet", "kwargs": {"cfa": "xtrans", "packing": None, "width": 4, "depth": 3,
                                                 "blocks": 1, "keep_samples": True, "residual": True,
                                                 "expand": 0, "noise_input": False}}
    assert MODELS.build({"name": "bilinear"}).spec == {
        "name": "bilinear", "kwargs": {"cfa": "xtrans", "radius": 1, "keep_samples": True}}


def test_unet_is_bias_and_norm_free() -> None:
    m = create_model("unet", width=4, depth=3, blocks=2)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert mod.bias is None
        assert not isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.GroupNorm, torch.nn.LayerNorm,
                                    torch.nn.InstanceNorm2d))
    assert m.state_dict().keys() == {k for k, _ in m.named_parameters()}  # no buffers in checkpoints


def test_residual_unet_starts_near_bilinear() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(1, 3, 48, 48)
    x = C.mosaic(rgb, "xtrans")
    with torch.no_grad():
        base = create_model("bilinear")(x)
        out = create_model("unet", width=8, depth=2)(x)
    assert (out - base).abs().mean() < 0.1 * (base - rgb).abs().mean() + 0.05


@pytest.mark.parametrize("pattern", ["bayer_rggb", "bayer_gbrg", "xtrans"])
def test_bilinear_matches_normalised_convolution(pattern: str) -> None:
    torch.manual_seed(3)
    rgb = torch.rand(2, 3, 36, 42)
    x = C.mosaic(rgb, pattern)
    out = create_model("bilinear", cfa=pattern)(x)
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).expand(3, 1, 3, 3)
    m = C.mask_like(pattern, rgb)
    ref = F.conv2d(x * m, k, groups=3, padding=1) / F.conv2d(m.expand(1, 3, 36, 42), k, groups=3, padding=1)
    ref = m * x + (1 - m) * ref
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    # Bayer: green at a red site is the mean of its four green neighbours (classical bilinear)
    if pattern == "bayer_rggb":
        y, xx = 10, 12  # R site in RGGB
        g = (x[0, 0, y - 1, xx] + x[0, 0, y + 1, xx] + x[0, 0, y, xx - 1] + x[0, 0, y, xx + 1]) / 4
        torch.testing.assert_close(out[0, 1, y, xx], g)


def test_bilinear_borders_and_constants() -> None:
    model = BilinearDemosaic("xtrans", radius=1)
    x = torch.full((1, 1, 6, 6), 0.7)
    torch.testing.assert_close(model(x), torch.full((1, 3, 6, 6), 0.7))
    # a constant colour is reproduced exactly everywhere, borders included
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 31, 29)
    out = model.demosaic(C.mosaic(rgb, "xtrans"))
    torch.testing.assert_close(out, rgb.contiguous())


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_model_configs_build(path: Path) -> None:
    cfg = OmegaConf.load(path)
    if cfg.name in ENSEMBLES:  # an evaluation preset of trained weights (tests/models/test_ensemble.py)
        model = resolve_method(model=dict(cfg)).demosaicker
    else:
        model = build_model(cfg)
    assert isinstance(model, DemosaicModel)
    n = sum(p.numel() for p in model.parameters())
    if path.stem == "xtrans_unet_large":
        assert n > 20_000_000
        return  # forward of the large model is slow on CPU; the small variants cover it
    x = C.mosaic(torch.rand(1, 3, model.size_multiple, model.size_multiple), model.pattern)
    with torch.no_grad():
        assert model(x).shape == (1, 3, *x.shape[-2:])


def test_named_model_configs_exist() -> None:
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert {"xtrans_unet", "xtrans_unet_small", "xtrans_unet_large", "bayer_unet", "bilinear"} <= names
    assert OmegaConf.load(CONFIG_DIR / "bayer_unet.yaml").cfa.startswith("bayer")
    assert OmegaConf.load(CONFIG_DIR / "xtrans_unet.yaml").cfa == "xtrans"


def test_model_cost_counts_macs_per_pixel():
    from torch import nn

    from demosaic.models.cost import model_cost

    conv = nn.Conv2d(1, 8, 3, padding=1, bias=False)
    cost = model_cost(conv, (2, 1, 16, 24))
    assert cost.params == 72 and cost.macs_per_pixel == pytest.approx(72.0)
    unet = create_model("unet", cfa="xtrans", packing=3, width=8, depth=2)
    small = model_cost(unet, (1, 1, 48, 48))
    big = model_cost(unet, (1, 1, 96, 144))
    assert small.params == big.params == sum(p.numel() for p in unet.parameters())
    assert small.macs_per_pixel == pytest.approx(big.macs_per_pixel, rel=1e-6)  # per pixel
    wide = model_cost(create_model("unet", cfa="xtrans", packing=3, width=16, depth=2), (1, 1, 48, 48))
    assert wide.gmac_per_mp > 3 * small.gmac_per_mp  # twice the width: about 4x the MACs


def test_unet_blocks_per_level():
    from demosaic.models import create_model

    even = create_model("unet", width=8, depth=3, blocks=1)
    grown = create_model("unet", width=8, depth=3, blocks=[1, 2, 3])
    assert [len(level.blocks) for level in grown.encoder] == [1, 2, 3]
    assert [len(level.blocks) for level in grown.decoder] == [2, 1]  # coarse to fine
    assert grown.spec["kwargs"]["blocks"] == [1, 2, 3]
    assert set(even.state_dict()) < set(grown.state_dict())
    x = torch.rand(2, 1, 48, 48)
    assert grown(x).shape == (2, 3, 48, 48)
    for bad in ([1, 2], [1, -1, 2], [1, 2.5, 3], True, "x"):
        with pytest.raises(ConfigError, match="model.blocks"):
            create_model("unet", width=8, depth=3, blocks=bad)


def _interpolate_by_definition(model: BilinearDemosaic, cfa: torch.Tensor) -> torch.Tensor:
    """The normalised convolution written plainly: phase-preserving pad by concatenation,
    ``((x0 + w1 x1) + w2 x2) ...`` with every product on its own, a full-size denominator."""
    r, p = model.radius, model.pattern.period
    h, w = cfa.shape[-2:]
    x = cfa * model.sampling_mask(cfa)
    x = torch.cat([x[..., p - r:p, :], x, x[..., h - p:h - p + r, :]], dim=-2)
    x = torch.cat([x[..., :, p - r:p], x, x[..., :, w - p:w - p + r]], dim=-1)
    for dim in (-1, -2):
        n = x.shape[dim] - 2 * r
        terms = [x.narrow(dim, d, n) * float(r + 1 - abs(d - r)) for d in range(2 * r + 1)]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc + t
        x = acc
    reps = (1, -(-h // p), -(-w // p))
    return x * model.inv_den_cell.repeat(*reps)[:, :h, :w]


@pytest.mark.parametrize("pattern", ["xtrans", "bayer_gbrg"])
@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("size", [(36, 48), (31, 43)])
def test_bilinear_fast_path_is_the_definition_bit_for_bit(pattern: str, radius: int,
                                                          size: tuple[int, int]) -> None:
    """The in-place tent, one-allocation pad and broadcast denominator change no bit."""
    model = BilinearDemosaic(pattern, radius=min(radius, C.get_pattern(pattern).period))
    cfa = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(radius)) * 3
    assert torch.equal(model.interpolate(cfa), _interpolate_by_definition(model, cfa))


@pytest.mark.parametrize("cfa", ["xtrans", "bayer_rggb"])
def test_channels_last_packing_changes_no_number(cfa: str) -> None:
    """A channels_last copy packs and unpacks in its own layout (fewer reorders), with the
    same values as pixel_(un)shuffle and the same output as the default layout's path."""
    from demosaic.inference.tiling import for_inference
    from demosaic.models.unet import _shuffle, _unshuffle_channels_last

    x = torch.rand(2, 3, 36, 48)
    packed = _unshuffle_channels_last(x, 3)
    assert torch.equal(packed, F.pixel_unshuffle(x, 3))
    assert packed.is_contiguous(memory_format=torch.channels_last)
    y = torch.rand(2, 27, 12, 16).contiguous(memory_format=torch.channels_last)
    assert torch.equal(_shuffle(y, 3), F.pixel_shuffle(y, 3)) and _shuffle(y, 3).is_contiguous()
    net = create_model("unet", cfa=cfa, packing=3 if cfa == "xtrans" else 2, width=8, depth=2).eval()
    m = C.mosaic(torch.rand(1, 3, 4 * net.size_multiple, 2 * net.size_multiple), cfa)
    with torch.no_grad():
        ref = net(m)
        fast = for_inference(net, torch.device("cpu"))
        assert fast.stem.weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(fast(m), ref, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("name, kwargs", [("bilinear", {"radius": 2}),
                                          ("unet", {"width": 8, "depth": 2, "packing": 3})])
def test_graph_capture_gets_the_functional_form_with_the_same_numbers(name: str, kwargs: dict
                                                                      ) -> None:
    """Eagerly the fast paths write in place; a traced graph (TorchScript, ONNX export) gets
    the functional forms, and both give the same numbers."""
    net = create_model(name, cfa="xtrans", **kwargs).eval()
    x = torch.rand(1, 1, 2 * net.size_multiple, 3 * net.size_multiple)
    with torch.no_grad():
        eager = net(x)
        traced = torch.jit.trace(net, x, check_trace=False)
    assert torch.equal(traced(x), eager)


def test_half_head_output_is_promoted_as_before() -> None:
    """Under autocast the head's output is half precision: the base is added out of place and
    the measured samples re-inserted into a float32 result, so they stay exact."""
    net = create_model("unet", cfa="xtrans", width=8, depth=2, packing=3).eval()
    cfa = torch.rand(1, 1, 2 * net.size_multiple, 2 * net.size_multiple)
    half = torch.rand(1, 3, *cfa.shape[-2:]).half()
    kept = net.keep_measured(cfa, half, in_place=True)
    assert kept.dtype == torch.float32 and half.dtype == torch.float16
    mask = net.sampling_mask(cfa).bool().expand(1, 3, *cfa.shape[-2:])
    assert torch.equal(kept[mask], cfa.expand_as(kept)[mask])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(cfa)
    assert out.dtype == torch.float32 and torch.equal(out[mask], cfa.expand_as(out)[mask])


def test_rebuild_from_a_stored_spec_checks_its_keys() -> None:
    """A checkpoint's spec is rebuilt without OmegaConf: the same model, unknown keys refused."""
    net = create_model("unet", width=8, depth=2)
    again = MODELS.rebuild(net.spec["name"], net.spec["kwargs"], "checkpoint model")
    assert again.spec == net.spec
    again.load_state_dict(net.state_dict())
    with pytest.raises(ConfigError, match=r"checkpoint model.*\['widht'\]"):
        MODELS.rebuild("unet", {**net.spec["kwargs"], "widht": 8}, "checkpoint model")
    with pytest.raises(ConfigError, match="unknown model"):
        MODELS.rebuild("resnet", {}, "checkpoint model")
