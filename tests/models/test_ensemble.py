"""Geometric self-ensemble (models/ensemble.py) and the ``quality`` model built from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic import cfa as C
from demosaic.models.zoo import ENSEMBLES, ensemble_method, resolve_method
from demosaic.inference.tiling import tiled_demosaic
from demosaic.errors import ConfigError
from demosaic.models import create_model
from demosaic.models.ensemble import VIEW_ORDER, GeometricEnsemble


def _unet(cfa: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("unet", cfa=cfa, width=8, depth=2).eval()
    with torch.no_grad():  # use the whole receptive field, as a trained model does
        for name, p in model.named_parameters():
            if name.endswith("conv2.weight") or name.startswith("head"):
                p.mul_(10.0)
    return model


@pytest.mark.parametrize("cfa", ["xtrans", "bayer_rggb"])
def test_views_are_realigned_so_an_equivariant_base_is_unchanged(cfa):
    """Bilinear interpolation commutes with flips and rotations away from the borders, so
    every re-aligned view must give the base's own output there; a view fed in the wrong
    phase would interpolate the wrong colours and differ by far more."""
    base = create_model("bilinear", cfa=cfa)
    ens = GeometricEnsemble(base, views=8)
    pattern = C.get_pattern(cfa)
    rgb = torch.rand(1, 3, 72, 96, generator=torch.Generator().manual_seed(1))
    x = C.mosaic(rgb, pattern)
    with torch.inference_mode():
        ref, got = base(x), ens(x)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    torch.testing.assert_close(got[inner], ref[inner], rtol=0, atol=1e-5)
    assert any(a or b for _, _, a, b in ens._plan)  # some views really needed re-aligning
    assert [(k, f) for k, f, _, _ in ens._plan] == list(VIEW_ORDER)


@pytest.mark.parametrize("cfa", ["xtrans", "bayer_rggb"])
def test_ensemble_keeps_samples_exposure_tiling_and_highlights(cfa):
    base = _unet(cfa)
    ens = GeometricEnsemble(base, views=8)
    m = ens.size_multiple
    x = torch.rand(1, 1, 4 * m, 5 * m, generator=torch.Generator().manual_seed(2)) * 2.0
    with torch.inference_mode():
        y, y4, single = ens(x), ens(4.0 * x), base(x)
    mask = C.mask_like(ens.pattern, x)
    torch.testing.assert_close((y * mask).sum(1), x[:, 0], rtol=0, atol=0)  # samples exact
    torch.testing.assert_close(y4, 4.0 * y, rtol=1e-5, atol=1e-5)  # exposure-equivariant
    assert y.max() > 1.5  # highlights pass
    assert (y - single).abs().mean() > 1e-4  # the views really differ from the base alone
    tiled = tiled_demosaic(ens, x, tile=3 * m, device="cpu")
    assert (tiled - y[0]).abs().max().item() <= 1e-5 * y.abs().max().item()
    with torch.inference_mode():
        one = GeometricEnsemble(base, views=1)(x)
    torch.testing.assert_close(one, single, rtol=0, atol=0)


def test_ensemble_exports_to_onnx(tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    ens = GeometricEnsemble(_unet("xtrans"), views=8)
    m = ens.size_multiple
    x = torch.rand(1, 1, 2 * m, 3 * m, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "ens.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ens, (x,), str(path), dynamo=False, input_names=["cfa"],
                          output_names=["rgb"], dynamic_axes={"cfa": axes, "rgb": axes},
                          opset_version=17)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x2 = torch.rand(1, 1, 3 * m, 2 * m, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        ref = ens(x2).numpy()
    got = sess.run(None, {"cfa": x2.numpy()})[0]
    assert np.abs(got - ref).max() < 1e-4


def test_ensemble_is_the_shipped_default_of_each_family():
    """``ensemble``: the fast default of the family, 8 views (``quality``'s base is the
    quality network where there is one: tests/models/test_quality_model.py)."""
    for cfa, ckpt in (("xtrans", "default.pt"), ("bayer_rggb", "default_bayer.pt")):
        m = resolve_method(model="ensemble", cfa=cfa)
        assert isinstance(m.demosaicker, GeometricEnsemble) and m.demosaicker.views == 8
        assert Path(m.info["checkpoint"]).name == ckpt
        assert "x8 geometric self-ensemble" in m.description and ckpt in m.description
    four = resolve_method(model={"name": "quality", "views": 4}, cfa="xtrans")
    assert four.demosaicker.views == 4 and Path(four.info["checkpoint"]).name == "quality_xtrans.pt"
    with pytest.raises(ConfigError, match="views=3"):
        ensemble_method("quality", views=3)
    with pytest.raises(ConfigError, match="unknown ensemble"):
        ensemble_method("fancy")


def test_quality_ensemble_of_a_checkpoint_of_another_family_is_refused(tmp_path: Path):
    from demosaic.models.checkpoint import make_checkpoint, save_checkpoint

    model = create_model("unet", cfa="bayer_rggb", width=8, depth=1)
    ckpt = save_checkpoint(make_checkpoint(model, "unet", model.spec["kwargs"], cfa="bayer_rggb"),
                           tmp_path / "bayer.pt")
    with pytest.raises(ConfigError, match="bayer.pt.*not xtrans"):
        ensemble_method("quality", cfa="xtrans", checkpoint=ckpt)


def test_rotation_matches_torch_and_inverts():
    """The tensor rotation the ensemble uses (cfa.transform_image, exportable to ONNX) is
    torch.rot90, and its stated inverse undoes every transform."""
    x = torch.rand(2, 1, 4, 6, generator=torch.Generator().manual_seed(5))
    for k in range(-3, 5):
        assert torch.equal(C.transform_image(x, k, False), torch.rot90(x, k, dims=(-2, -1)))
        for flip in (False, True):
            y = C.transform_image(x, k, flip)
            assert torch.equal(C.transform_image(y, k if flip else -k, flip), x)


def test_demosaic_infer_model_quality_beats_the_default_on_a_dng(tmp_path: Path):
    """``demosaic-infer --model quality`` through the user's path (a DNG in a non-canonical
    phase with margins): better than the default model on the same file, and the output
    says what ran."""
    from demosaic import metrics
    from demosaic.cli.infer import main as infer_main
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_exr, read_image_linear
    from demosaic.data.common import SAMPLES_DIR

    truth = read_image_linear(SAMPLES_DIR / "val" / "145086.png")
    h, w = truth.shape[1] // 6 * 6, truth.shape[2] // 6 * 6
    truth = truth[:, :h, :w]
    layout = C.XTRANS.shifted(1, 4)
    mosaic = np.take_along_axis(truth, np.tile(layout, (h // 6, w // 6))[None], 0)[0]
    dng = write_dng(tmp_path / "scene.dng", mosaic, layout, black_level=256, white_level=16383,
                    margins=(4, 2, 0, 0), make="TestCam")
    scores = {}
    for label, extra in {"default": [], "quality": ["--model", "quality"]}.items():
        out = tmp_path / f"{label}.exr"
        assert infer_main([str(dng), str(out), "--white-balance", "none", "--color-space",
                           "camera", "--device", "cpu", "--no-progress", *extra]) == 0
        rgb, meta = read_exr(out)
        scores[label] = metrics.psnr(rgb, truth, border=12)
    views = ENSEMBLES["quality"][1]
    assert f"x{views} geometric self-ensemble" in meta["demosaic:model"]
    assert "quality_xtrans.pt" in meta["demosaic:model"]
    assert scores["quality"] > scores["default"] + 0.5, scores


def test_demosaic_export_quality_writes_a_checked_onnx_file(tmp_path: Path, capsys):
    """``demosaic-export quality --cfa bayer_rggb``: the named ensemble exports like a
    checkpoint, checked against PyTorch at two sizes, with the base weights' hash recorded."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from demosaic.cli.export import main as export_main
    from demosaic.models.checkpoint import file_sha256
    from demosaic.models.zoo import SHIPPED_CHECKPOINTS
    from demosaic.export import load_exported_metadata

    out = tmp_path / "quality_bayer.onnx"
    assert export_main(["quality", "--cfa", "bayer_rggb", "--out", str(out)]) == 0
    meta = load_exported_metadata(out)
    assert meta["cfa"] == "bayer_rggb"
    assert f"x{ENSEMBLES['ensemble'][1]} geometric self-ensemble" in meta["checkpoint"]  # no Bayer quality net
    assert meta["checkpoint_sha256"] == file_sha256(SHIPPED_CHECKPOINTS["bayer"])
    assert "max abs diff" in capsys.readouterr().out


def test_infer_views_wrap_a_users_checkpoint(tmp_path: Path):
    """``demosaic-infer --checkpoint best.pt --views 2``: the user's own model as an ensemble
    (its CFA taken from the checkpoint), recorded in the output; bilinear refuses views."""
    from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
    from demosaic.inference.run import infer_file
    from demosaic.models.zoo import ModelSource
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_exr

    model = _unet("xtrans")
    ckpt = save_checkpoint(make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans",
                                           step=7), tmp_path / "best.pt")
    rgb = np.random.default_rng(0).random((3, 48, 60)).astype(np.float32) * 0.5
    layout = C.XTRANS.shifted(2, 5)
    mosaic = np.take_along_axis(rgb, np.tile(layout, (8, 10))[None], 0)[0]
    dng = write_dng(tmp_path / "in.dng", mosaic, layout, black_level=0, white_level=16383)
    outs = {}
    for views in (1, 2):
        out = tmp_path / f"v{views}.exr"
        infer_file(dng, out, checkpoint=ckpt, views=views, device="cpu", float32=True,
                   color_space="camera", white_balance="none")
        outs[views] = read_exr(out)
    assert "x2 geometric self-ensemble" in outs[2][1]["demosaic:model"]
    assert "self-ensemble" not in outs[1][1]["demosaic:model"]
    assert np.abs(outs[2][0] - outs[1][0]).max() > 1e-4  # the views changed the result
    with pytest.raises(ConfigError, match="views"):
        ModelSource(model="bilinear", views=2, device="cpu")
    with pytest.raises(ConfigError, match="give a checkpoint or a CFA"):
        ensemble_method("ensemble", cfa=None)
