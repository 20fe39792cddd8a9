"""Tiled inference: window plans, exactness against whole-image output, phase padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demosaic import cfa as C
from demosaic.inference.tiling import (
    alignment_multiple,
    auto_overlap,
    for_inference,
    pad_to_canonical,
    plan_axis,
    plan_tiles,
    receptive_field,
    tiled_demosaic,
)
from demosaic.errors import CFAError, ConfigError
from demosaic.models import create_model


@pytest.mark.parametrize("length,tile,overlap,m", [
    (48, 24, 6, 6), (60, 24, 6, 6), (7728, 2040, 168, 24), (5160, 2040, 168, 24),
    (12, 24, 6, 6), (30, 12, 0, 6), (96, 48, 12, 12), (120, 36, 12, 6),
])
def test_plan_axis_cores_partition_and_windows_aligned(length, tile, overlap, m):
    spans = plan_axis(length, tile, overlap, m)
    assert spans[0].core_start == 0 and spans[-1].core_end == length
    for a, b in zip(spans, spans[1:]):
        assert a.core_end == b.core_start  # cores tile the axis without gaps or overlap
    sizes = {s.win_end - s.win_start for s in spans}
    assert len(sizes) == 1 and sizes.pop() <= tile or len(spans) == 1  # equal windows <= tile
    for s in spans:
        assert s.win_start % m == 0 and s.win_end % m == 0
        assert 0 <= s.win_start <= s.core_start < s.core_end <= s.win_end <= length
        # inner sides keep at least `overlap` px of context
        if s.core_start > 0:
            assert s.core_start - s.win_start >= overlap
        if s.core_end < length:
            assert s.win_end - s.core_end >= overlap


def test_plan_uses_fewest_balanced_windows():
    # a 40 MP frame (padded to the 24 px grid) with 2040 px tiles and 168 px overlap
    rows, cols = plan_axis(5160, 2040, 168, 24), plan_axis(7728, 2040, 168, 24)
    assert (len(rows), len(cols)) == (3, 5)
    work = (rows[0].win_end - rows[0].win_start) * (cols[0].win_end - cols[0].win_start) * 15
    assert work / (5160 * 7728) < 1.4  # fixed 2040 px windows would compute 1.56x the pixels
    assert [(s.win_start, s.win_end) for s in plan_axis(2064, 2040, 168, 24)] == [(0, 1200),
                                                                                  (864, 2064)]


def test_plan_rejects_core_free_tiles():
    with pytest.raises(ConfigError, match="no core"):
        plan_axis(120, 24, 12, 6)
    with pytest.raises(ConfigError, match="multiples"):
        plan_axis(100, 24, 6, 6)
    assert len(plan_tiles(60, 48, 24, 6, 6)) == 4 * 3


def test_bilinear_tiled_equals_whole_image_exactly():
    """Bilinear has a 1-px receptive field: any overlap >= one period is exact."""
    model = create_model("bilinear", cfa="xtrans")
    g = torch.Generator().manual_seed(0)
    cfa = torch.rand(1, 1, 100, 130, generator=g) * 1.5  # not multiples of 6, highlights > 1
    whole = model.demosaic(cfa)[0]
    tiled = tiled_demosaic(model, cfa, tile=24, overlap=6, device="cpu")
    assert tiled.shape == (3, 100, 130) and tiled.dtype == torch.float32
    assert torch.equal(tiled, whole)
    assert tiled.max() > 1.0  # nothing clamps


@pytest.fixture(scope="module")
def small_unet() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=3).eval()
    # Random init starts near the bilinear base; scale the residual branches up so the net
    # uses its whole receptive field (like a trained model), making the test meaningful.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("conv2.weight") or name.startswith("head"):
                p.mul_(10.0)
    return model


def test_receptive_field_is_measured_and_cached(small_unet):
    rf = receptive_field(small_unet)
    # packing 6, 3 levels: the field spans well over 100 px but is finite
    assert rf is not None and 100 < rf < 400
    assert receptive_field(small_unet) == rf
    assert auto_overlap(small_unet) % alignment_multiple(small_unet) == 0
    assert auto_overlap(small_unet) >= rf
    assert receptive_field(create_model("bilinear")) == 1


def test_unet_tiled_equals_whole_image_with_default_overlap(small_unet):
    g = torch.Generator().manual_seed(1)
    cfa = torch.rand(1, 1, 432, 540, generator=g)
    with torch.inference_mode():
        whole = small_unet.demosaic(cfa)[0]
    tiled = tiled_demosaic(small_unet, cfa, tile=408, device="cpu")  # overlap = auto
    assert len(plan_tiles(432, 552, 408, auto_overlap(small_unet), 24)) > 1  # really tiled
    diff = (tiled - whole).abs().max().item()
    scale = whole.abs().max().item()
    assert diff <= 1e-5 * scale, f"tiled differs from whole image by {diff} (scale {scale})"


def test_cpu_inference_copy_is_channels_last_and_matches(small_unet):
    """for_inference: a channels_last copy on the CPU (faster kernels), same output up to
    float rounding, and the caller's model untouched (training and evaluation keep it)."""
    cpu = torch.device("cpu")
    fast = for_inference(small_unet, cpu)
    assert fast is not small_unet
    weights = [p for p in fast.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert any(not p.is_contiguous(memory_format=torch.channels_last)
               for p in small_unet.parameters() if p.dim() == 4)
    g = torch.Generator().manual_seed(2)
    cfa = torch.rand(1, 1, 240, 264, generator=g)
    with torch.inference_mode():
        ref, got = small_unet(cfa), fast(cfa)
    diff = (got - ref).abs().max().item()
    assert diff <= 1e-5 * ref.abs().max().item(), diff
    tiled = tiled_demosaic(fast, cfa, tile=120, device="cpu")
    assert (tiled - ref[0]).abs().max().item() <= 1e-5 * ref.abs().max().item()
    bilinear = create_model("bilinear")
    assert for_inference(bilinear, cpu) is bilinear  # nothing to re-lay out


def test_unet_tiling_with_too_little_overlap_is_measurably_different(small_unet):
    """The exactness above is not vacuous: cutting the context changes the result."""
    g = torch.Generator().manual_seed(1)
    cfa = torch.rand(1, 1, 240, 240, generator=g)
    with torch.inference_mode():
        whole = small_unet.demosaic(cfa)[0]
    tiled = tiled_demosaic(small_unet, cfa, tile=96, overlap=24, device="cpu")
    assert (tiled - whole).abs().max().item() > 1e-4


def test_tiled_accepts_shapes_and_rejects_bad_ones():
    model = create_model("bilinear", cfa="bayer_rggb")
    x = np.random.default_rng(0).random((10, 14)).astype(np.float32)
    a = tiled_demosaic(model, x, tile=4, overlap=2, device="cpu")
    b = tiled_demosaic(model, torch.from_numpy(x)[None], tile=None, device="cpu")
    assert a.shape == (3, 10, 14) and torch.equal(a, b)
    with pytest.raises(CFAError, match="mosaic of shape"):
        tiled_demosaic(model, torch.zeros(3, 10, 14), device="cpu")
    with pytest.raises(ConfigError, match="device"):
        tiled_demosaic(model, x, device="nonsense")


@pytest.mark.parametrize("dy,dx", [(0, 0), (1, 4), (5, 5), (2, 0)])
def test_pad_to_canonical_restores_canonical_phase(dy, dx):
    # an observed mosaic whose canonical phase starts at its pixel (dy, dx)
    h, w = 20, 27
    big = C.mask(C.XTRANS, h + 6, w + 6).argmax(0)  # canonical channel map
    obs = big[(6 - dy) % 6:(6 - dy) % 6 + h, (6 - dx) % 6:(6 - dx) % 6 + w]
    al = C.align(obs[:6, :6])
    values = torch.arange(h * w, dtype=torch.float32).reshape(h, w)
    padded, (a, b) = pad_to_canonical(values, al)
    assert (a, b) == ((6 - al.dy) % 6, (6 - al.dx) % 6)
    assert torch.equal(padded[a:, b:], values)  # the original pixels are untouched
    # every padded pixel copies a pixel of the same colour; the top-left is canonical
    idx_r = torch.cat([torch.arange(6 - a, 6), torch.arange(h)])
    idx_c = torch.cat([torch.arange(6 - b, 6), torch.arange(w)])
    colours = torch.from_numpy(obs)[idx_r][:, idx_c]
    assert np.array_equal(colours.numpy(), C.mask(C.XTRANS, h + a, w + b).argmax(0))


def test_device_resident_path_gives_the_same_output(monkeypatch):
    """The accelerator path (mosaic sent once, output kept on the device until the end) is
    exercised on the CPU and must equal the host path."""
    import torch

    from demosaic import cfa as C
    from demosaic.inference import tiling
    from demosaic.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=1).eval()
    mosaic = C.mosaic(torch.rand(3, 150, 174), C.XTRANS)[0]
    host = tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu")
    monkeypatch.setattr(tiling, "_RESIDENT_ON_CPU", True)
    resident = tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu")
    assert torch.equal(host, resident) and resident.device.type == "cpu"


def test_window_batches_give_the_same_output(monkeypatch):
    """Windows of one shape run together (``batch``, the accelerator lever): the output is
    the one-window-at-a-time output, on the host and on the device-resident path, also when
    the last batch of a shape is short; a batch below 1 is refused."""
    import pytest
    import torch

    from demosaic import cfa as C
    from demosaic.inference import tiling
    from demosaic.errors import ConfigError
    from demosaic.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=1).eval()
    mosaic = C.mosaic(torch.rand(3, 222, 258), C.XTRANS)[0]
    one = tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu")
    plan = tiling.plan_tiles(222, 264, 96, tiling.auto_overlap(model), 6)
    assert len(tiling._batches(plan, 4)) < len(plan)  # some windows really share a pass
    for batch in (3, 4):
        torch.testing.assert_close(tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu",
                                                         batch=batch), one, rtol=0, atol=1e-6)
    monkeypatch.setattr(tiling, "_RESIDENT_ON_CPU", True)
    torch.testing.assert_close(tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu", batch=4),
                               one, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="tile batch 0"):
        tiling.tiled_demosaic(model, mosaic, tile=96, device="cpu", batch=0)


@pytest.mark.parametrize("size", [(437, 545), (100, 130), (30, 50)])
def test_per_window_padding_equals_padding_the_frame(small_unet, size):
    """Edge windows are padded on their own (the frame is never copied whole): the output is
    bit-identical to tiling the frame padded by cfa.period_pad, as before."""
    g = torch.Generator().manual_seed(2)
    cfa = torch.rand(*size, generator=g)
    m = alignment_multiple(small_unet)
    padded, _ = C.period_pad(cfa, small_unet.pattern, m)
    assert padded.shape != cfa.shape  # the sizes really need padding
    h, w = size
    for tile in (144, 408):
        want = tiled_demosaic(small_unet, padded, tile=tile, device="cpu")[:, :h, :w]
        assert torch.equal(tiled_demosaic(small_unet, cfa, tile=tile, device="cpu"), want)


@pytest.mark.parametrize("size", [(6, 6), (7, 13), (50, 7), (121, 33)])
@pytest.mark.parametrize("prepend", [(5, 1), (1, 5), (0, 3)])
def test_prepended_rows_made_per_window_equal_padding_the_mosaic(size, prepend):
    """``prepend`` (the canonical-phase rows/columns) exists only inside the windows, for tiny
    and narrow mosaics too: the output equals tiling the mosaic padded with cfa.phase_extend."""
    torch.manual_seed(0)
    net = create_model("unet", cfa="xtrans", width=4, depth=2).eval()
    x = torch.rand(*size, generator=torch.Generator().manual_seed(3))
    a, b = prepend
    full = C.phase_extend(x, 6, top=a, left=b)
    for tile in (0, 48):
        want = tiled_demosaic(net, full, tile=tile, device="cpu")[:, a:, b:]
        assert torch.equal(tiled_demosaic(net, x, tile=tile, device="cpu", prepend=prepend), want)
    with pytest.raises(CFAError, match="prepend"):
        tiled_demosaic(net, x, device="cpu", prepend=(6, 0))
