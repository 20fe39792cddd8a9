"""CFA patterns, masks, mosaics, phase alignment and CFA-safe transforms."""

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.errors import CFAError

ALL = list(cfa.PATTERNS.values())


def test_xtrans_cell_counts_and_rows_columns():
    a = cfa.XTRANS.array
    assert a.shape == (6, 6)
    assert [(a == c).sum() for c in (cfa.R, cfa.G, cfa.B)] == [8, 20, 8]
    for line in list(a) + list(a.T):
        assert cfa.R in line and cfa.B in line


def test_xtrans_docstring_drawing_matches_layout():
    drawing = cfa.XTRANS.ascii().splitlines()
    doc = cfa.__doc__
    for y, row in enumerate(drawing):
        assert f"y={y}    {row}" in doc


@pytest.mark.parametrize("pattern", ALL, ids=lambda p: p.name)
def test_mask_partitions_pixels(pattern):
    m = cfa.mask(pattern, 13, 17)
    assert m.shape == (3, 13, 17)
    assert set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(m.sum(0), np.ones((13, 17)))
    np.testing.assert_array_equal(m[:, :pattern.period, :pattern.period], pattern.cell_mask)


@pytest.mark.parametrize("pattern", ALL, ids=lambda p: p.name)
def test_mosaic_keeps_exactly_the_sampled_values_numpy_and_torch(pattern):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-0.1, 3.0, size=(2, 3, 12, 18)).astype(np.float32)
    m = cfa.mask(pattern, 12, 18)
    out_np = cfa.mosaic(rgb, pattern)
    assert out_np.shape == (2, 1, 12, 18)
    expected = np.take_along_axis(rgb, m.argmax(0)[None, None].repeat(2, 0), axis=1)
    np.testing.assert_array_equal(out_np, expected)
    out_t = cfa.mosaic(torch.from_numpy(rgb[0]), pattern)
    assert out_t.shape == (1, 12, 18)
    np.testing.assert_array_equal(out_t.numpy(), expected[0])
    # spreading back: masked mosaic holds the sample in its channel only
    np.testing.assert_array_equal(cfa.masked_mosaic(out_np, pattern), rgb * m)


def test_mosaic_rejects_wrong_shape():
    with pytest.raises(CFAError, match="3, H, W"):
        cfa.mosaic(np.zeros((4, 8, 8)), cfa.XTRANS)


@pytest.mark.parametrize("dy", range(6))
@pytest.mark.parametrize("dx", range(6))
def test_align_all_36_xtrans_shifts(dy, dx):
    big = np.tile(cfa.XTRANS.array, (4, 4))
    observed = big[dy:dy + 14, dx:dx + 15]  # an array starting at phase (dy, dx), odd size
    al = cfa.align(observed)
    assert al.pattern is cfa.XTRANS
    cropped = cfa.crop_to_canonical(observed, al)
    np.testing.assert_array_equal(cropped[:6, :6], cfa.XTRANS.array)
    # X-Trans repeats under a (3, 3) shift: of the two equivalent crops, the smaller is returned
    crops = {((-dy) % 6, (-dx) % 6), ((3 - dy) % 6, (3 - dx) % 6)}
    assert (al.dy, al.dx) == min(crops)


@pytest.mark.parametrize("name", ["bayer_rggb", "bayer_bggr", "bayer_grbg", "bayer_gbrg"])
def test_align_bayer_phases(name):
    p = cfa.get_pattern(name)
    al = cfa.align(np.tile(p.array, (3, 3)))
    assert al.pattern is cfa.BAYER_RGGB
    np.testing.assert_array_equal(cfa.crop_to_canonical(np.tile(p.array, (3, 3)), al)[:2, :2],
                                  cfa.BAYER_RGGB.array)


def test_align_accepts_libraw_second_green():
    layout = np.array([[0, 1], [3, 2]])
    assert cfa.align(layout).is_canonical


@pytest.mark.parametrize("layout", [
    np.array([[0, 1], [1, 1]]),                 # not Bayer (no blue)
    np.tile(np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]]), (2, 2)),  # 3x3 diagonal stripes
    np.zeros((6, 6), dtype=int),
])
def test_align_rejects_other_layouts_and_names_them(layout):
    with pytest.raises(CFAError, match="neither X-Trans nor Bayer") as exc:
        cfa.align(layout)
    assert "R" in str(exc.value) or "G" in str(exc.value)


def test_align_checks_periodicity_of_larger_arrays():
    obs = np.tile(cfa.XTRANS.array, (2, 2))
    obs[7, 7] = cfa.R if obs[7, 7] != cfa.R else cfa.B
    with pytest.raises(CFAError):
        cfa.align(obs)


@pytest.mark.parametrize("k,flip", cfa.ALL_TRANSFORMS)
@pytest.mark.parametrize("pattern", [cfa.XTRANS, cfa.BAYER_RGGB], ids=lambda p: p.name)
def test_transform_rgb_before_mosaic_keeps_canonical_pattern(pattern, k, flip):
    rgb = np.random.default_rng(1).uniform(size=(3, 24, 30)).astype(np.float32)
    t = cfa.transform_image(rgb, k, flip)
    m = cfa.mosaic(t, pattern)
    # every sampled value is the transformed image's value in the canonical filter colour
    np.testing.assert_array_equal(m[0], (t * cfa.mask(pattern, *t.shape[-2:])).sum(0))


@pytest.mark.parametrize("k,flip", cfa.ALL_TRANSFORMS)
@pytest.mark.parametrize("pattern", [cfa.XTRANS, cfa.BAYER_RGGB], ids=lambda p: p.name)
def test_transform_mosaic_returns_canonical_crop(pattern, k, flip):
    rgb = np.random.default_rng(2).uniform(size=(3, 36, 42)).astype(np.float32)
    mos = cfa.mosaic(rgb, pattern)[0]
    out, al = cfa.transform_mosaic(mos, pattern, k, flip)
    # the transformed, cropped mosaic equals the transformed RGB, cropped the same way, then mosaicked
    ref = cfa.crop_to_canonical(cfa.transform_image(rgb, k, flip), al)
    np.testing.assert_array_equal(out, cfa.mosaic(ref, pattern)[0])


def test_torch_and_numpy_transforms_agree():
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    for k, flip in cfa.ALL_TRANSFORMS:
        np.testing.assert_array_equal(cfa.transform_image(x, k, flip),
                                      cfa.transform_image(torch.from_numpy(x), k, flip).numpy())


@pytest.mark.parametrize("pattern", [cfa.XTRANS, cfa.BAYER_GRBG], ids=lambda p: p.name)
def test_period_pad_keeps_a_valid_mosaic(pattern):
    p = pattern.period
    h, w = 5 * p + 1, 3 * p + (p - 1)
    idx = np.tile(pattern.array, (8, 8))[:h, :w].astype(np.float32)
    padded, size = cfa.period_pad(idx, pattern, 4 * p)
    assert size == (h, w) and padded.shape[0] % (4 * p) == 0 and padded.shape[1] % (4 * p) == 0
    np.testing.assert_array_equal(padded, np.tile(pattern.array, (8, 8))[:padded.shape[0], :padded.shape[1]])
    np.testing.assert_array_equal(padded[:h, :w], idx)
    t, _ = cfa.period_pad(torch.from_numpy(idx)[None, None], pattern, 4 * p)
    np.testing.assert_array_equal(t[0, 0].numpy(), padded)


def test_period_pad_errors():
    with pytest.raises(CFAError, match="multiple of the CFA period"):
        cfa.period_pad(np.zeros((12, 12)), cfa.XTRANS, 8)
    with pytest.raises(CFAError, match="smaller than one CFA period"):
        cfa.period_pad(np.zeros((4, 12)), cfa.XTRANS, 12)


def test_get_pattern_aliases_and_error():
    assert cfa.get_pattern("RGGB") is cfa.BAYER_RGGB
    assert cfa.get_pattern("X-Trans") is cfa.XTRANS
    with pytest.raises(CFAError, match="unknown CFA pattern 'quad'"):
        cfa.get_pattern("quad")


def test_periodic_component_is_the_centred_phase_mean_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    cell = rng.normal(size=(3, 6, 6))
    x = np.tile(cell, (1, 4, 5)) + 0.5  # a pure 6x6 pattern plus an offset
    x = np.pad(x, ((0, 0), (0, 5), (0, 3)), constant_values=9.0)  # partial cells: left out
    expected = cell - cell.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cfa.periodic_component(x, 6), expected, atol=1e-12)
    out = cfa.periodic_component(torch.from_numpy(x)[None], 6)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 6, 6)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-12)
    assert np.abs(cfa.periodic_component(np.full((3, 12, 12), 2.0), 6)).max() == 0


def test_one_same_phase_extension_for_every_padding() -> None:
    """period_pad (bottom/right), pad_to_canonical (top/left) and the LibRaw paddings all go
    through phase_extend: every added pixel has the colour of its position."""
    import numpy as np
    import torch

    from demosaic import cfa as C
    from demosaic.inference.tiling import pad_to_canonical

    for pattern in (C.XTRANS, C.BAYER_RGGB):
        p = pattern.period
        colours = np.tile(pattern.array, (3, 4)).astype(np.float32)  # a mosaic of its colours
        for top, bottom, left, right in ((0, 5, 0, 7), (3, 0, 1, 0), (p, p, p, p)):
            out = C.phase_extend(colours, p, top, bottom, left, right)
            expect = np.tile(pattern.shifted(-top % p, -left % p), (8, 8))[:out.shape[0], :out.shape[1]]
            assert np.array_equal(out, expect)
            assert torch.equal(C.phase_extend(torch.from_numpy(colours), p, top, bottom, left, right),
                               torch.from_numpy(out))
        padded, _ = C.period_pad(torch.from_numpy(colours), pattern, 4 * p)
        assert torch.equal(padded, C.phase_extend(torch.from_numpy(colours), p, bottom=padded.shape[0] - colours.shape[0],
                                                  right=padded.shape[1] - colours.shape[1]))
        observed = pattern.shifted(1, 1)
        shifted = np.tile(observed, (3, 4)).astype(np.float32)
        canon, (a, b) = pad_to_canonical(shifted, C.align(observed))
        assert np.array_equal(canon.numpy()[: 2 * p, : 2 * p], np.tile(pattern.array, (2, 2)))


def test_rgb_layout_folds_libraws_second_green():
    """LibRaw numbers the second green of a Bayer 2x2 as 3; every colour step reads it as G."""
    import numpy as np

    from demosaic.cfa import rgb_layout

    assert rgb_layout([[0, 1], [3, 2]]).tolist() == [[0, 1], [1, 2]]
    assert rgb_layout(np.array([[2, 3], [1, 0]], dtype=np.uint8)).dtype == np.int64
