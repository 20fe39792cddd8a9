"""End-to-end inference on DNGs written by io.dng: size, orientation, phase, colour, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch

from demosaic import cfa as C
from demosaic.cli.infer import main as infer_main
from demosaic.color import SRGB_TO_XYZ, XYZ_TO_REC2020, xyz_to_output
from demosaic.inference import colour as colour_mod
from demosaic.inference import develop as infer_mod
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.inference.batch import collect_inputs, infer_batch
from demosaic.inference.run import infer_file
from demosaic.metrics import psnr
from demosaic.models import zoo
from demosaic.models.zoo import ModelSource
from demosaic.sim.scenes import synthetic_scene
from demosaic.inference.tiling import plan_tiles
from demosaic.errors import CFAError, CheckpointError, ConfigError, RawReadError
from demosaic.io.dng import write_dng
from demosaic.io.images import read_exr, read_image_linear
from demosaic.io.raw import TIFF_ORIENTATION_TO_FLIP, apply_orientation
from demosaic.models import create_model

H, W = 96, 132
BLACK, WHITE = 512, 16383


def _truth() -> np.ndarray:
    """(3, H, W) linear scene with a highlight above 1.0 (kept by the DNG's headroom)."""
    return synthetic_scene(H, W, seed=3) * np.float32(0.8)


def _write_scene_dng(path: Path, truth: np.ndarray, family: str = "xtrans", shift=(2, 3),
                     orientation: int = 6, **kwargs) -> Path:
    """Mosaic ``truth`` in a **non-canonical** phase and store it with odd margins."""
    canonical = C.XTRANS if family == "xtrans" else C.BAYER_RGGB
    layout = canonical.shifted(*shift)
    pattern = C.CFAPattern("observed", canonical.family, tuple(map(tuple, layout.tolist())))
    mosaic = C.mosaic(truth, pattern)[0]
    margins = (4, 7, 2, 3) if family == "xtrans" else (4, 6, 2, 2)
    return write_dng(path, mosaic, layout, black_level=BLACK, white_level=WHITE,
                     margins=margins, orientation=orientation, make="TestCam",
                     model="XT-1000 (synthetic)", **kwargs)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("scene")
    truth = _truth()
    return _write_scene_dng(folder / "DSCF0001.dng", truth), truth


@pytest.fixture(scope="module")
def unet_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=1)  # receptive field 24 px
    ckpt = make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans", step=1234,
                           run_name="random-init")
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "best.pt")


def test_bilinear_infer_right_size_orientation_phase_and_highlights(scene, tmp_path):
    dng, truth = scene
    out = tmp_path / "out.exr"
    # this scene stores values above the white level (no real sensor does): with the default
    # highlight mode they would count as clipped, so the pass-through mode is measured here
    res = infer_file(dng, out, model="bilinear", device="cpu", color_space="camera", highlights="none")
    img, meta = read_exr(out)
    # orientation 6 = rotate 90 degrees clockwise: the EXR is W x H, upright
    expected = apply_orientation(truth, TIFF_ORIENTATION_TO_FLIP[6])
    assert img.shape == expected.shape == (3, W, H)
    assert res.size == (W, H)
    quality = psnr(img, expected, border=0)
    # a wrong CFA phase gives ~14 dB on this scene, a wrong rotation far less than 20
    assert quality > 23.0, quality
    assert psnr(img, np.ascontiguousarray(np.rot90(expected, 2, axes=(1, 2))), border=0) < quality - 5
    assert img.max() > 1.2  # highlights above 1.0 survive into the EXR
    assert meta["cameraMake"] == "TestCam" and "XT-1000" in meta["cameraModel"]
    assert "bilinear" in meta["demosaic:model"]
    assert '"color_space": "camera"' in meta["demosaic:settings"]
    assert _no_temp_files(tmp_path)


def test_unet_checkpoint_runs_full_path(scene, unet_ckpt, tmp_path):
    dng, truth = scene
    out = tmp_path / "unet.exr"
    # 96 px tiles with the automatic overlap (24 px): several windows on the padded 102 x 138
    assert len(plan_tiles(102, 138, 96, 24, 6)) == 4
    infer_file(dng, out, checkpoint=unet_ckpt, device="cpu", color_space="camera", tile=96)
    img, meta = read_exr(out)
    expected = apply_orientation(truth, TIFF_ORIENTATION_TO_FLIP[6])
    assert img.shape == (3, W, H)
    assert np.isfinite(img).all()
    # random init starts near its bilinear base: sane, and proof the phase was aligned
    assert psnr(img, expected, border=0) > 20.0
    assert meta["demosaic:checkpoint"] == "best.pt" and meta["demosaic:step"] == "1234"
    assert "unet" in meta["demosaic:model"]
    # tiled equals untiled through the whole pipeline
    whole = tmp_path / "whole.exr"
    infer_file(dng, whole, checkpoint=unet_ckpt, device="cpu", color_space="camera", tile=0, float32=True)
    tiled32 = tmp_path / "tiled32.exr"
    infer_file(dng, tiled32, checkpoint=unet_ckpt, device="cpu", color_space="camera", tile=96, float32=True)
    a, b = read_exr(whole)[0], read_exr(tiled32)[0]
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_colour_spaces_and_white_balance(tmp_path):
    truth = _truth()
    # the DNG's default colour matrix makes camera RGB = linear sRGB; neutral (0.5, 1, 0.8)
    # means as-shot multipliers (2, 1, 1.25)
    dng = _write_scene_dng(tmp_path / "wb.dng", truth, orientation=1,
                           as_shot_neutral=(0.5, 1.0, 0.8))
    outs = {}
    for cs, wb in [("camera", "none"), ("camera", "as_shot"), ("srgb", "as_shot"),
                   ("rec2020", "as_shot"), ("acescg", "as_shot")]:
        path = tmp_path / f"{cs}_{wb}.exr"
        infer_file(dng, path, model="bilinear", device="cpu", color_space=cs,
                   white_balance=wb, float32=True)
        outs[cs, wb] = read_exr(path)[0]
        assert read_exr(path)[1]["demosaic:colorSpace"].startswith(cs)
    raw = outs["camera", "none"]
    np.testing.assert_allclose(outs["camera", "as_shot"],
                               raw * np.array([2.0, 1.0, 1.25], np.float32)[:, None, None],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["srgb", "as_shot"], outs["camera", "as_shot"], atol=2e-3)
    to2020 = (XYZ_TO_REC2020 @ SRGB_TO_XYZ).astype(np.float32)
    np.testing.assert_allclose(outs["rec2020", "as_shot"],
                               np.einsum("ck,khw->chw", to2020, outs["camera", "as_shot"]),
                               atol=3e-3)
    to_aces = (xyz_to_output("acescg") @ SRGB_TO_XYZ).astype(np.float32)
    np.testing.assert_allclose(outs["acescg", "as_shot"],
                               np.einsum("ck,khw->chw", to_aces, outs["camera", "as_shot"]),
                               atol=3e-3)


def test_tiff16_output(scene, tmp_path):
    dng, _ = scene
    exr, tif = tmp_path / "a.exr", tmp_path / "a.tif"
    infer_file(dng, exr, model="bilinear", device="cpu", color_space="camera", float32=True)
    infer_file(dng, tif, model="bilinear", device="cpu", color_space="camera")
    lin = read_image_linear(tif)
    ref = np.clip(read_exr(exr)[0], 0, 1)
    assert lin.shape == ref.shape
    assert np.abs(lin - ref).max() < 2e-3  # 16-bit sRGB quantisation, clipped at 1.0


def test_mismatched_cfa_gives_clear_error_and_no_output(unet_ckpt, tmp_path):
    bayer = _write_scene_dng(tmp_path / "bayer.dng", _truth(), family="bayer", shift=(1, 0))
    out = tmp_path / "never.exr"
    with pytest.raises(CFAError, match="Bayer sensor.*X-Trans"):
        infer_file(bayer, out, checkpoint=unet_ckpt, device="cpu")
    assert not out.exists() and _no_temp_files(tmp_path)
    # the parameter-free model adapts to the file's family
    infer_file(bayer, tmp_path / "ok.exr", model="bilinear", device="cpu", color_space="camera")
    assert read_exr(tmp_path / "ok.exr")[0].shape == (3, W, H)


def test_corrupt_input_gives_clear_error_and_no_output(scene, tmp_path):
    dng, _ = scene
    truncated = tmp_path / "truncated.dng"
    truncated.write_bytes(dng.read_bytes()[: dng.stat().st_size // 2])
    garbage = tmp_path / "garbage.raf"
    garbage.write_bytes(os.urandom(4096))
    for bad in (truncated, garbage):
        out = tmp_path / f"{bad.stem}.exr"
        with pytest.raises(RawReadError, match=bad.name):
            infer_file(bad, out, model="bilinear", device="cpu")
        assert not out.exists()
    # an older output survives a failed rerun untouched
    old = tmp_path / "old.exr"
    old.write_bytes(b"previous result")
    with pytest.raises(RawReadError):
        infer_file(garbage, old, model="bilinear", device="cpu")
    assert old.read_bytes() == b"previous result"
    assert _no_temp_files(tmp_path)


def test_default_checkpoint_missing_or_present(monkeypatch, tmp_path, unet_ckpt):
    shipped = zoo.SHIPPED_CHECKPOINTS
    for family in ("xtrans", "bayer"):
        monkeypatch.setitem(shipped, family, tmp_path / "assets" / f"{family}.pt")
    with pytest.raises(CheckpointError, match="ships no .*checkpoint.*bilinear"):
        ModelSource(device="cpu")
    monkeypatch.setitem(shipped, "xtrans", unet_ckpt)
    assert ModelSource(device="cpu").info_for("xtrans")["name"] == "unet"
    with pytest.raises(ConfigError, match="not both"):
        ModelSource(unet_ckpt, "bilinear")
    with pytest.raises(ConfigError, match="extension"):
        infer_file("x.dng", tmp_path / "x.jpg", model="bilinear")
    with pytest.raises(ConfigError, match="color_space"):
        infer_file("x.dng", tmp_path / "x.exr", model="bilinear", color_space="p3")


def test_batch_skips_done_files_and_reports_failures(scene, tmp_path):
    dng, truth = scene
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dng").write_bytes(dng.read_bytes())
    _write_scene_dng(src / "b.DNG", truth[:, :60, :72].copy(), orientation=1)
    (src / "c.raf").write_bytes(b"not a raw file" * 100)
    (src / "notes.txt").write_text("ignored: not a raw extension")
    assert [p.name for p in collect_inputs(src)] == ["a.dng", "b.DNG", "c.raf"]
    out = tmp_path / "out"
    first = infer_batch(src, out, model="bilinear", device="cpu", progress=False)
    assert sorted(r.output.name for r in first.done) == ["a.exr", "b.exr"]
    assert [p.name for p, _ in first.failed] == ["c.raf"] and "c.raf" in first.failed[0][1]
    assert read_exr(out / "b.exr")[0].shape == (3, 60, 72)
    assert not (out / "c.exr").exists()
    stamp = (out / "a.exr").stat().st_mtime_ns
    second = infer_batch(str(src / "*.dng"), out, model="bilinear", device="cpu", progress=False)
    assert [r.input.name for r in second.skipped] == ["a.dng"] and not second.done
    assert (out / "a.exr").stat().st_mtime_ns == stamp
    third = infer_batch([src / "a.dng"], out, model="bilinear", device="cpu", overwrite=True,
                        progress=False)
    assert len(third.done) == 1
    with pytest.raises(ConfigError, match="no raw files"):
        collect_inputs(str(tmp_path / "*.nef"))


def test_cli_single_batch_and_errors(scene, tmp_path, caplog):
    dng, _ = scene
    # a path with '=' and ',' (why the CLI is argparse, not Hydra)
    odd = tmp_path / "shot=1,a.dng"
    odd.write_bytes(dng.read_bytes())
    out = tmp_path / "res=1,b.exr"
    assert infer_main([str(odd), str(out), "--model", "bilinear", "--device", "cpu",
                       "--color-space", "srgb", "--no-progress"]) == 0
    assert read_exr(out)[0].shape == (3, W, H)
    folder = tmp_path / "dir"
    assert infer_main([str(odd), str(folder) + "/", "--model", "bilinear", "--no-progress",
                       "--exr-compression", "zip"]) == 0
    assert (folder / "shot=1,a.exr").exists()
    with OpenEXR.File(str(folder / "shot=1,a.exr")) as f:  # PIZ by default, ZIP asked for
        assert "ZIP" in str(f.header()["compression"]).upper()
    with OpenEXR.File(str(out)) as f:
        assert "PIZ" in str(f.header()["compression"]).upper()
    np.testing.assert_array_equal(read_exr(folder / "shot=1,a.exr")[0], read_exr(out)[0])
    bad = tmp_path / "bad.raf"
    bad.write_bytes(b"x" * 1000)
    with pytest.raises(SystemExit) as exc:
        infer_main([str(bad), str(tmp_path / "bad.exr"), "--model", "bilinear"])
    assert exc.value.code == 2 and not (tmp_path / "bad.exr").exists()
    assert "bad.raf" in caplog.text
    batch_out = tmp_path / "batch"
    code = infer_main([str(odd), str(bad), str(batch_out), "--model", "bilinear", "--format",
                       "tiff", "--no-progress"])
    assert code == 2  # one of the two failed
    assert (batch_out / "shot=1,a.tif").exists()


def test_console_scripts_are_declared(capsys):
    with pytest.raises(SystemExit) as exc:
        infer_main(["--help"])
    assert exc.value.code == 0 and "--color-space" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # a bad white balance: usage error naming the flag
        infer_main(["in.raf", "out.exr", "--white-balance", "2,0,1"])
    assert exc.value.code == 2 and "--white-balance" in capsys.readouterr().err
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert names.get("demosaic-infer") == "demosaic.cli.infer:run"
    assert names.get("demosaic-export") == "demosaic.cli.export:main"


def test_folder_mode_pipeline_writes_what_single_files_write(scene, tmp_path):
    """The batch reads ahead and writes behind on threads; its outputs are bit-identical to
    infer_file's, failures are reported in order and the others still written."""
    dng, truth = scene
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.dng").write_bytes(dng.read_bytes())
    (src / "b.raf").write_bytes(b"not a raw file" * 100)
    _write_scene_dng(src / "c.dng", truth[:, :60, :72].copy(), orientation=3)
    result = infer_batch(src, tmp_path / "out", model="bilinear", device="cpu", progress=False,
                         float32=True, color_space="rec2020")
    assert [r.output.name for r in result.done] == ["a.exr", "c.exr"]
    assert [p.name for p, _ in result.failed] == ["b.raf"]
    for name in ("a", "c"):
        single = infer_file(src / f"{name}.dng", tmp_path / f"{name}_single.exr", model="bilinear",
                            device="cpu", float32=True, color_space="rec2020").output
        assert np.array_equal(read_exr(single)[0], read_exr(tmp_path / "out" / f"{name}.exr")[0])
    with pytest.raises(ConfigError, match="unknown setting"):
        infer_batch(src, tmp_path / "out2", model="bilinear", device="cpu", progress=False, tiles=3)


def test_colour_step_is_numpys_product_bit_for_bit(caplog):
    """The chunked torch colour step gives numpy.einsum's float32 sums exactly, on a strided
    view (the cropped network output), with infinities, NaN and the half-range warning."""
    rgb = (torch.rand(3, 90, 130, generator=torch.Generator().manual_seed(5)) * 3)[:, 5:, 3:]
    rgb[0, 4, 4], rgb[1, 6, 6], rgb[2, 8, 8] = 1e5, float("inf"), float("nan")
    m = np.array([[1.6, -0.5, -0.1], [-0.2, 1.4, -0.2], [0.02, -0.4, 1.4]])
    ref = np.einsum("ck,khw->chw", m.astype(np.float32), rgb.numpy())
    for dtype in (np.float32, np.float16):
        caplog.clear()
        with np.errstate(over="ignore"):
            want = ref.astype(dtype)
        got = colour_mod.apply_matrix_chunked(rgb, m, dtype)
        assert got.dtype == dtype and got.shape == rgb.shape
        assert np.array_equal(got, want, equal_nan=True)
        assert ("half-float range" in caplog.text) == (dtype == np.float16)
    with np.errstate(over="ignore"):
        want = rgb.numpy().astype(np.float16)
    assert np.array_equal(colour_mod.apply_matrix_chunked(rgb, None, np.float16), want,
                          equal_nan=True)


def test_the_console_script_exits_at_once_with_its_status_and_complete_output(scene, tmp_path):
    """demosaic-infer skips the interpreter's teardown: its status, its log lines and its
    output file must all be complete anyway."""
    import subprocess
    import sys

    dng, _ = scene
    code = "from demosaic.cli.infer import run; run()"
    ok = subprocess.run([sys.executable, "-c", code, str(dng), str(tmp_path / "o.exr"),
                         "--model", "bilinear", "--no-progress"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stderr  # the INFO line was flushed before the exit
    rgb, _meta = read_exr(tmp_path / "o.exr")
    assert rgb.shape[0] == 3 and np.isfinite(rgb).all()
    bad = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.raf"),
                          str(tmp_path / "x.exr")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "missing.raf" in bad.stderr
    assert not (tmp_path / "x.exr").exists()


@pytest.mark.parametrize("body, status, err", [
    ("return None", 0, ""), ("return 3", 3, ""), ("raise SystemExit(2)", 2, ""),
    ("raise SystemExit('bad key')", 1, "bad key"),
    ("import logging; logging.getLogger('demosaic').error('logged'); return 0", 0, "logged"),
])
def test_exit_without_teardown_keeps_status_and_messages(body, status, err):
    import subprocess
    import sys

    code = ("import logging, sys\nfrom demosaic.cli.common import exit_without_teardown, "
            "setup_logging\nsetup_logging()\ndef main():\n    " + body +
            "\nexit_without_teardown(main)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == status and err in out.stderr


def test_the_raw_to_exr_path_imports_only_what_it_uses(scene, tmp_path):
    """Start-up is part of the command's time: a raw file to EXR with the shipped model loads
    neither OmegaConf/Hydra (the checkpoint's spec is rebuilt without them) nor Pillow."""
    import subprocess
    import sys

    dng, _ = scene
    code = ("import sys\nfrom demosaic.cli.infer import main\n"
            f"main([{str(dng)!r}, {str(tmp_path / 'o.exr')!r}, '--no-progress'])\n"
            "print(sorted(m for m in ('omegaconf', 'hydra', 'PIL') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("family, shift", [("xtrans", (2, 3)), ("xtrans", (0, 0)), ("bayer", (1, 1))])
def test_develop_balances_window_by_window_as_the_whole_mosaic(tmp_path, monkeypatch, family,
                                                               shift):
    """White balance, the clip step and the canonical-phase rows happen inside the windows;
    the result is bit-identical to balancing, clipping and padding the whole mosaic first."""
    from demosaic.color import normalize_multipliers, white_balance_mosaic
    from demosaic.inference.highlights import clip_mask, clip_mosaic
    from demosaic.inference.develop import develop
    from demosaic.inference.tiling import pad_to_canonical, tiled_demosaic
    from demosaic.io.raw import read_raw

    truth = synthetic_scene(150, 174, seed=4) * np.float32(1.4)  # clips
    dng = _write_scene_dng(tmp_path / "s.dng", truth, family, shift=shift,
                           as_shot_neutral=(0.55, 1.0, 0.7))
    raw = read_raw(dng)
    torch.manual_seed(0)
    net = create_model("unet", cfa=raw.alignment.pattern.name, width=8, depth=2).eval()
    mult = normalize_multipliers(raw.wb_multipliers)
    clipped = clip_mask(raw.cfa, raw.layout)
    assert bool(clipped.any())
    balanced = white_balance_mosaic(raw.cfa, raw.layout, mult)
    clip_input = clip_mosaic(balanced, clipped, mult)
    for tile in (48, 0):  # many windows (edge windows padded on their own), one window

        def whole_mosaic_first(mosaic):
            padded, (a, b) = pad_to_canonical(torch.from_numpy(mosaic), raw.alignment)
            return tiled_demosaic(net, padded, tile=tile, device="cpu")[:, a:, b:]

        cpu = torch.device("cpu")
        assert torch.equal(develop(raw, net, device=cpu, tile=tile, highlights="none"),
                           whole_mosaic_first(balanced))
        clip_want = apply_clip_output(whole_mosaic_first(clip_input), clipped, raw, mult)
        assert torch.equal(develop(raw, net, device=cpu, tile=tile, highlights="clip"), clip_want)
        # the accelerator path (mosaic, mask and windows resident on the device), on the CPU
        from demosaic.inference import tiling

        monkeypatch.setattr(tiling, "_RESIDENT_ON_CPU", True)
        assert torch.equal(develop(raw, net, device=cpu, tile=tile, highlights="clip"), clip_want)
        monkeypatch.setattr(tiling, "_RESIDENT_ON_CPU", False)


def test_highlights_none_computes_no_clip_mask(scene, monkeypatch):
    """The clip mask serves the highlight modes only: without one it is not computed."""
    from demosaic.inference.develop import develop
    from demosaic.io.raw import read_raw

    raw = read_raw(scene[0])
    net = create_model("bilinear", cfa="xtrans")
    want = develop(raw, net, device=torch.device("cpu"), highlights="none")
    monkeypatch.setattr(infer_mod, "clip_mask", lambda *a, **k: pytest.fail("mask computed"))
    assert torch.equal(develop(raw, net, device=torch.device("cpu"), highlights="none"), want)
    gain = torch.from_numpy(colour_mod.output_gain(raw, "daylight").astype(np.float32))
    assert torch.equal(develop(raw, net, device=torch.device("cpu"), highlights="none",
                               white_balance="daylight"), want * gain.view(3, 1, 1))


def apply_clip_output(rgb, clipped, raw, mult):
    """The clip mode's output step, as develop applies it after the network."""
    from demosaic.inference.highlights import apply_highlights

    with torch.inference_mode():
        return apply_highlights(rgb.clone(), clipped, raw.layout, mult, "clip")
