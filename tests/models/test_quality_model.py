"""The X-Trans quality network shipped in the package (issue 16): self-describing, trained
only on the training sets, exposure-equivariant, keeps highlights, exact when tiled, exports
to ONNX, better than the fast default and Markesteijn on a camera capture, and the base of
``quality`` wherever a model is chosen by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from demosaic import cfa
from demosaic.models.checkpoint import load_checkpoint, load_model
from demosaic.models.zoo import (ENSEMBLES, QUALITY_CHECKPOINTS, SHIPPED_CHECKPOINTS,
                                 resolve_method, shipped_checkpoint)
from demosaic.inference.tiling import tiled_demosaic
from demosaic.errors import CheckpointError
from demosaic.io.images import read_image_linear

from conftest import assert_trained_on_training_sets, camera_capture_scores, demosaic_exposures

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "src" / "demosaic" / "assets" / "samples" / "val"
QUALITY = QUALITY_CHECKPOINTS["xtrans"]


@pytest.fixture(scope="module")
def quality_net() -> torch.nn.Module:
    return load_model(QUALITY)


def test_quality_checkpoint_records_how_it_was_made():
    assert QUALITY.is_file() and QUALITY.stat().st_size < 24 * 2**20
    ckpt = load_checkpoint(QUALITY)
    assert ckpt["cfa"] == "xtrans" and ckpt["train_state"] is None and ckpt["ema_state_dict"] is None
    assert ckpt["release"]["weights"] == "float16"  # demosaic-export --format checkpoint --half
    cfg = ckpt["config"]
    experiment = OmegaConf.load(ROOT / "configs" / "lineage" / "experiment" / "xtrans_quality_gpu.yaml")
    assert cfg["trainer"]["run_name"] == experiment.trainer.run_name == ckpt["run_name"]
    assert ckpt["model"]["kwargs"]["width"] == OmegaConf.load(
        ROOT / "configs" / "model" / "xtrans_unet_quality.yaml").width
    assert_trained_on_training_sets(cfg)


def test_quality_network_is_exposure_equivariant_and_keeps_highlights(quality_net):
    bright, _ = demosaic_exposures(quality_net, cfa.XTRANS)
    assert bright.max() > 2.0  # no clamp at 1.0


def test_quality_network_is_exact_when_tiled(quality_net):
    """Windows with the automatic overlap give the whole-image output (float rounding)."""
    rgb = torch.from_numpy(read_image_linear(SAMPLES / "145086.png"))[:, :216, :312]
    mosaic = cfa.mosaic(rgb, cfa.XTRANS)
    whole = tiled_demosaic(quality_net, mosaic, tile=0, device="cpu")
    tiled = tiled_demosaic(quality_net, mosaic, tile=96, device="cpu")
    assert torch.allclose(tiled, whole, atol=2e-5), float((tiled - whole).abs().max())


def test_quality_network_beats_the_default_and_markesteijn_on_a_camera_capture(tmp_path, quality_net):
    from demosaic.models.baselines import build_method

    scores = camera_capture_scores({"quality": quality_net,
                                    "default": load_model(SHIPPED_CHECKPOINTS["xtrans"]),
                                    "markesteijn3": build_method("markesteijn3", cfa="xtrans")},
                                   tmp_path / "raws")
    assert scores["quality"] > scores["default"] + 0.5, scores
    assert scores["quality"] > scores["markesteijn3"] + 2.0, scores


def test_quality_network_exports_to_onnx(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from demosaic.export import export_model

    report = export_model(QUALITY, "onnx", tmp_path / "quality.onnx", size=(96, 96))
    assert report.max_abs_diff < 1e-4


def test_quality_is_the_quality_network_for_xtrans_and_the_default_for_bayer():
    xt = resolve_method(model="quality", cfa="xtrans")
    assert Path(xt.info["checkpoint"]) == QUALITY
    assert xt.demosaicker.views == ENSEMBLES["quality"][1]
    assert Path(resolve_method(model="ensemble", cfa="xtrans").info["checkpoint"]).name == "default.pt"
    bayer = resolve_method(model="quality", cfa="bayer_rggb")  # no Bayer quality network
    assert Path(bayer.info["checkpoint"]) == SHIPPED_CHECKPOINTS["bayer"]
    assert bayer.demosaicker.views == ENSEMBLES["ensemble"][1] == 8
    assert shipped_checkpoint("bayer", "quality") == SHIPPED_CHECKPOINTS["bayer"]
    with pytest.raises(CheckpointError, match="unknown packaged model"):
        shipped_checkpoint("xtrans", "fastest")


def test_a_missing_quality_network_is_an_error_not_a_silent_fallback(monkeypatch, tmp_path):
    monkeypatch.setitem(QUALITY_CHECKPOINTS, "xtrans", tmp_path / "gone.pt")
    with pytest.raises(CheckpointError, match="lacks its xtrans quality network"):
        shipped_checkpoint("xtrans", "quality")


def test_release_checkpoint_keeps_the_ema_weights_and_checks_float16(tmp_path):
    """``demosaic-export CKPT --format checkpoint [--half]``: the EMA weights become the
    release's weights, the training state goes, and float16 weights are checked against the
    float32 model within the tolerance (and refused above it, writing nothing)."""
    from demosaic.cli.export import main as export_main
    from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
    from demosaic.export import ExportError, export_model
    from demosaic.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=2)
    ema = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    src = save_checkpoint(make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans",
                                          ema_state_dict=ema, train_state={"opt": 1}, run_name="r"),
                          tmp_path / "best.pt")
    out = tmp_path / "release.pt"
    assert export_main([str(src), "--format", "checkpoint", "--half", "--tolerance", "1e-2",
                        "--out", str(out)]) == 0
    rel = load_checkpoint(out)
    assert rel["train_state"] is None and rel["ema_state_dict"] is None and rel["run_name"] == "r"
    key = next(k for k, v in ema.items() if v.is_floating_point())
    assert rel["state_dict"][key].dtype == torch.float16
    torch.testing.assert_close(rel["state_dict"][key].float(), ema[key], atol=1e-3, rtol=1e-3)
    with pytest.raises(ExportError, match="nothing was written"):
        export_model(src, "checkpoint", tmp_path / "strict.pt", half=True, tolerance=1e-9)
    assert not (tmp_path / "strict.pt").exists()
    full = export_model(src, "checkpoint", tmp_path / "full.pt")
    assert full.max_abs_diff == 0.0
    # the release carries the measured receptive field, so loading it measures nothing
    from demosaic.inference.tiling import receptive_field

    assert rel["receptive_field"] == receptive_field(create_model("unet", cfa="xtrans", width=8,
                                                                  depth=2))
    assert "receptive_field" not in load_checkpoint(src)  # a training checkpoint does not


@pytest.mark.parametrize("family", ["xtrans", "bayer"])
def test_shipped_receptive_field_is_the_measured_one(family, monkeypatch):
    """The fast models ship their receptive field; it equals a fresh measurement, and loading
    them does not run the model to measure it again."""
    from demosaic.models.checkpoint import load_model
    from demosaic.models.zoo import SHIPPED_CHECKPOINTS
    from demosaic.inference.tiling import receptive_field
    from demosaic.models import create_model

    ckpt = load_checkpoint(SHIPPED_CHECKPOINTS[family])
    fresh = create_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
    assert ckpt["receptive_field"] == receptive_field(fresh)
    net = load_model(ckpt)
    monkeypatch.setattr(type(net), "forward", lambda *a, **k: pytest.fail("measured again"))
    assert receptive_field(net) == ckpt["receptive_field"]
