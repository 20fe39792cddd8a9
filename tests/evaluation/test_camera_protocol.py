"""The camera protocol of demosaic-eval: DNG round trip, LibRaw scale and alignment, the
model/mosaic routes, determinism and the CLI key. Tiny images only (< 30 s in all)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

from demosaic.sim.camera import body_by_name, simulate_capture
from demosaic.cfa import XTRANS
from demosaic.cli import evaluate as cli_eval
from demosaic.color import white_balance_mosaic
from demosaic.evaluation import camera as cp
from demosaic.evaluation import capture
from demosaic.evaluation.report import ReportSpec
from demosaic.errors import ConfigError
from demosaic.io.dng import write_dng
from demosaic.io.libraw import develop
from demosaic.io.raw import read_raw
from demosaic.metrics import psnr
from demosaic.models import create_model
from demosaic.models.baselines import build_method

QUIET = ReportSpec(worst_crops=0, progress=False)  # nothing written, no bar


@pytest.fixture(scope="module")
def bundled() -> list[tuple[str, np.ndarray]]:
    """The two bundled validation images, centre crops of 72 x 96 px (linear sRGB)."""
    from demosaic.data import DATASETS
    from demosaic.evaluation.clean import images_from_dataset

    ds = DATASETS.build({"name": "folder", "root": None, "mode": "crop"}, where="test",
                        pattern="xtrans", split="val", seed=0)
    out = []
    for name, rgb, _ in images_from_dataset(ds):
        h, w = rgb.shape[1:]
        y, x = (h - 72) // 2, (w - 96) // 2
        out.append((name, np.ascontiguousarray(rgb[:, y:y + 72, x:x + 96])))
    return out


def _smooth(h: int = 72, w: int = 96) -> np.ndarray:
    """A smooth colourful linear image (period ~ 25-40 px), in [0.1, 0.7]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.4 + 0.3 * np.sin(0.17 * yy + 0.11 * xx + c) for c in range(3)]).astype(np.float32)


def test_dng_round_trip_gives_back_the_capture(tmp_path, bundled):
    proto = capture.CameraProtocol(iso=800, seed=3)
    for index, (name, rgb) in enumerate(bundled):
        case = capture.prepare_case(name, rgb, index, proto, tmp_path)
        cap = simulate_capture(rgb, case.layout, capture.capture_rng(proto, index), capture.sim_config(),
                               body=body_by_name("X-T3", "xtrans"), iso=800)
        raw = read_raw(case.dng)
        assert raw.cfa.shape == rgb.shape[1:]
        assert np.array_equal(raw.layout, XTRANS.shifted(*case.phase))
        assert raw.margins == case.margins[:2]
        np.testing.assert_allclose(raw.wb_multipliers, cap.multipliers, rtol=1e-5)
        balanced = white_balance_mosaic(np.asarray(raw.cfa), raw.layout, raw.wb_multipliers)
        np.testing.assert_allclose(balanced, cap.cfa, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(case.target, cap.target)
        assert case.padded is not None and case.padded.is_file()  # < 512 px: LibRaw copy


def test_geometry_is_seeded_and_bayer_margins_even():
    a = capture.geometry(capture.CameraProtocol(seed=1), 4)
    assert a == capture.geometry(capture.CameraProtocol(seed=1, iso=3200), 4)  # same at every ISO
    assert len({capture.geometry(capture.CameraProtocol(seed=s), 0) for s in range(8)}) > 1
    for s in range(10):
        (dy, dx), (top, left, bottom, right) = capture.geometry(capture.CameraProtocol("bayer", seed=s), 0)
        assert 0 <= dy < 2 and 0 <= dx < 2 and top % 2 == 0 and left % 2 == 0
        assert max(top, left, bottom, right) <= 12


def test_libraw_output_scale_neutral_is_grey(tmp_path):
    """LibRaw's camera-WB output divided back by min(multipliers): a grey gives (L, L, L)."""
    body = body_by_name("X-T3", "xtrans")
    lay = XTRANS.shifted(2, 3)
    h, w, level, black, white = 516, 522, 0.3, 1024, 16383
    tiled = np.tile(lay, (h // 6, w // 6))
    raw = np.rint(black + level * body.neutral[tiled] * (white - black)).astype(np.uint16)
    path = write_dng(tmp_path / "grey.dng", raw, lay, black_level=black, white_level=white,
                     as_shot_neutral=body.neutral, color_matrix=body.xyz_to_cam,
                     margins=(3, 5, 2, 7), make="demosaic", model="camera-protocol X-T3")
    out = develop(path, "AHD")
    assert out.shape == (3, h, w)
    np.testing.assert_allclose(out[:, 12:-12, 12:-12].reshape(3, -1).mean(1), level, rtol=1e-3)


def test_libraw_is_aligned_with_the_truth(tmp_path):
    images = [("a", _smooth()), ("b", _smooth()[:, ::-1].copy())]
    method = build_method("libraw_linear", "xtrans")
    runner, route = cp.make_runner(method)
    assert route == "libraw"
    proto = capture.CameraProtocol(iso=100, seed=0)
    dev_runner, _ = cp.make_runner(create_model("bilinear", cfa="xtrans"))
    for index, (name, rgb) in enumerate(images):
        case = capture.prepare_case(name, rgb, index, proto, tmp_path)
        pred, t = runner(case), case.target
        assert pred.shape == t.shape
        aligned = psnr(pred, t, border=12)
        for shifted in (pred[:, 1:, :], pred[:, :, 1:]):
            ref = t[:, :-1, :] if shifted.shape[1] < t.shape[1] else t[:, :, :-1]
            assert aligned > psnr(shifted, ref, border=12) + 3.0
        assert aligned > 30.0
        # LibRaw's linear interpolation and our bilinear model agree closely
        assert psnr(pred, dev_runner(case), border=12) > 35.0


class _MosaicBilinear:
    """A non-Module method: exercises the mosaic route with the bilinear model's maths."""

    def __init__(self) -> None:
        self.net = create_model("bilinear", cfa="xtrans").eval()
        self.pattern = self.net.pattern
        self.name = "mosaic_bilinear"

    def demosaic(self, cfa: torch.Tensor) -> torch.Tensor:
        return self.net.demosaic(cfa)


def test_bilinear_model_and_mosaic_route(tmp_path, bundled):
    res = cp.evaluate_camera(create_model("bilinear", cfa="xtrans"), bundled, iso=800,
                             cache_dir=tmp_path / "raws",
                             report=ReportSpec(worst_crops=0, out_dir=tmp_path / "out", progress=False))
    assert res.info["protocol"] == "camera" and res.info["camera"] == "Fujifilm X-T3"
    assert res.info["camera_protocol"]["route"] == "develop"
    for r in res.images:
        for key in ("psnr", "psnr_srgb", "ssim", "periodic_levels", "false_colour_score"):
            assert np.isfinite(r.metrics[key]), key
        assert 15.0 < r.metrics["psnr"] < 45.0
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["info"]["iso"] == 800 and data["info"]["seed"] == 0
    assert "Camera protocol" in (tmp_path / "out" / "results.md").read_text()
    other = cp.evaluate_camera(_MosaicBilinear(), bundled, iso=800, cache_dir=tmp_path / "raws",
                               report=QUIET)
    assert other.info["camera_protocol"]["route"] == "mosaic"
    assert other.mean["psnr"] == pytest.approx(res.mean["psnr"], abs=1e-3)


def test_protocol_is_deterministic(tmp_path, bundled):
    net = create_model("bilinear", cfa="xtrans")
    a = cp.evaluate_camera(net, bundled, iso=3200, seed=5, cache_dir=tmp_path / "c1", report=QUIET)
    dng = tmp_path / "c1" / f"{bundled[0][0]}.dng"
    stamp = dng.stat().st_mtime_ns
    b = cp.evaluate_camera(net, bundled, iso=3200, seed=5, cache_dir=tmp_path / "c1", report=QUIET)
    c = cp.evaluate_camera(net, bundled, iso=3200, seed=5, cache_dir=tmp_path / "c2", report=QUIET)
    assert dng.stat().st_mtime_ns == stamp  # reused from the cache
    assert (tmp_path / "c1" / f"{bundled[0][0]}.dng").read_bytes() == (
        tmp_path / "c2" / f"{bundled[0][0]}.dng").read_bytes()
    for r in (b, c):
        assert [x.metrics["psnr"] for x in r.images] == [x.metrics["psnr"] for x in a.images]
    d = cp.evaluate_camera(net, bundled, iso=3200, seed=6, cache_dir=tmp_path / "c1", report=QUIET)
    assert [x.metrics["psnr"] for x in d.images] != [x.metrics["psnr"] for x in a.images]


def _compose(overrides: list[str]):
    cli_eval.register_schemas()
    with initialize_config_module(config_module="demosaic.configs", version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_cli_camera_protocol_with_bilinear(tmp_path):
    cfg = _compose(["model=bilinear", "evalset=bundled", "protocol=camera", "iso=800",
                    f"out_dir={tmp_path}", "compare=[]", "progress=false", "device=cpu",
                    "worst_crops=1"])
    res = cli_eval.run_evaluation(cfg, "bundled")
    assert res.info["protocol"] == "camera" and len(res.images) == 2
    assert 15.0 < res.mean["psnr"] < 50.0
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.md").is_file()
    assert list((tmp_path / "raws" / "bundled_iso800").glob("*.dng"))
    assert len(res.crops) == 1 and (tmp_path / res.crops[0].path).is_file()


def test_cli_capture_conditions_reach_the_files(tmp_path):
    cfg = _compose(["model=bilinear", "evalset=bundled", "protocol=camera", "iso=800",
                    f"out_dir={tmp_path}", "compare=[]", "progress=false", "device=cpu",
                    "worst_crops=0", "conditions.illuminant=tungsten", "conditions.bits=12",
                    "highlights=clip"])
    res = cli_eval.run_evaluation(cfg, "bundled")
    assert res.info["camera_protocol"]["conditions"]["illuminant"] == "tungsten"
    assert res.info["camera_protocol"]["highlights"] == "clip"
    sides = list((tmp_path / "raws" / "bundled_iso800_tungsten_12bit").glob("*.json"))
    assert sides and all(json.loads(p.read_text())["white"] == 4095 for p in sides)


@pytest.mark.parametrize("override, key", [("protocol=noisy", "protocol"), ("iso=-5", "iso"),
                                           ("protocol_seed=-1", "protocol_seed"),
                                           ("camera=NoSuchBody", "camera"),
                                           ("conditions.illuminant=candle", "conditions.illuminant"),
                                           ("conditions.exposure=0", "conditions.exposure"),
                                           ("highlights=magenta", "highlights")])
def test_cli_bad_values_name_the_key(tmp_path, override, key):
    base = ["model=bilinear", f"out_dir={tmp_path}", "progress=false", "device=cpu"]
    cfg = _compose(base + ([] if key == "protocol" else ["protocol=camera"]) + [override])
    with pytest.raises(ConfigError, match=key):
        cli_eval.run_evaluation(cfg, "bundled")


def test_capture_conditions_change_the_file_as_stated(tmp_path):
    """Tungsten moves the as-shot white balance towards blue, 12 bit sets LibRaw's levels,
    over-exposure clips, and the default conditions write the published protocol's file."""
    rgb = _smooth()
    base = capture.CameraProtocol(iso=800, seed=2)
    day = capture.prepare_case("x", rgb, 0, base, tmp_path / "day")
    assert day.meta["bits"] == 14 and day.meta["conditions"] == {
        "illuminant": "daylight", "wb_error": 0.0, "bits": 14, "exposure": 1.0}
    # Without conditions the capture is the one simulate_capture makes with the fixed settings.
    cap = simulate_capture(rgb, day.layout, capture.capture_rng(base, 0), capture.sim_config(),
                           body=body_by_name("X-T3", "xtrans"), iso=800)
    assert day.meta["raw_sha1"] == capture.array_sha1(cap.raw)

    tung = capture.prepare_case("x", rgb, 0, capture.CameraProtocol(
        iso=800, seed=2, conditions=capture.CaptureConditions(illuminant="tungsten")), tmp_path / "t")
    r_day, _, b_day = day.multipliers
    r_t, _, b_t = tung.multipliers
    np.testing.assert_allclose([r_t, b_t], [r_day / 1.6, b_day / 0.55], rtol=1e-6)
    np.testing.assert_allclose(read_raw(tung.dng).wb_multipliers, tung.multipliers, rtol=1e-5)

    twelve = capture.prepare_case("x", rgb, 0, capture.CameraProtocol(
        iso=800, seed=2, conditions=capture.CaptureConditions(bits=12)), tmp_path / "b12")
    raw12 = read_raw(twelve.dng)
    assert (twelve.meta["black"], twelve.meta["white"]) == (256, 4095)
    assert float(np.abs(raw12.cfa - read_raw(day.dng).cfa).mean()) < 0.01  # same scene, other depth

    over = capture.prepare_case("x", rgb, 0, capture.CameraProtocol(
        iso=100, seed=2, conditions=capture.CaptureConditions(exposure=3.0)), tmp_path / "o")
    assert float((read_raw(over.dng).cfa >= 0.999).mean()) > 0.05
    assert float((read_raw(day.dng).cfa >= 0.999).mean()) == 0.0


@pytest.mark.parametrize("kwargs, key", [({"illuminant": "candle"}, "illuminant"),
                                         ({"exposure": "bright"}, "exposure"),
                                         ({"wb_error": -0.1}, "wb_error"),
                                         ({"bits": 10}, "bits"),
                                         ({"exposure": 0.0}, "exposure")])
def test_capture_conditions_reject_bad_values(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        capture.CameraProtocol(conditions=capture.CaptureConditions(**kwargs)).check()


def test_highlights_reach_the_model_route(tmp_path):
    """``highlights`` is passed to develop: on an over-exposed capture ``clip`` and ``none``
    differ, and ``clip`` keeps clipped areas neutral (green = red = blue there)."""
    proto = capture.CameraProtocol(iso=100, seed=0, conditions=capture.CaptureConditions(exposure=2.0))
    rgb = _smooth()
    rgb[:, 20:50, 30:70] = 4.0  # a lamp: every raw channel clips, red and blue too
    case = capture.prepare_case("x", rgb, 0, proto, tmp_path)
    net = create_model("bilinear", cfa="xtrans")
    none = cp.make_runner(net, highlights="none")[0](case)
    clip = cp.make_runner(net, highlights="clip")[0](case)
    assert not np.allclose(none, clip)
    # where a whole 7x7 neighbourhood is clipped (every channel), the output is neutral
    from demosaic.inference.highlights import clip_mask

    raw = read_raw(case.dng)
    clipped = clip_mask(raw.cfa, raw.layout).float()
    core = torch.nn.functional.max_pool2d(-clipped[None], 7, 1, 3)[0].numpy() == -1
    assert core.sum() > 20
    spread = clip.max(axis=0)[core] - clip.min(axis=0)[core]
    assert float(spread.max()) < 1e-3
    assert float((none.max(axis=0) - none.min(axis=0))[core].max()) > 0.1  # magenta without
