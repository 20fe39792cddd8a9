"""The X-Trans model shipped in the package: loadable, self-describing, equivariant, keeps
highlights, and clearly better than bilinear through the real raw path (DNG -> EXR)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from demosaic import cfa, metrics
from demosaic.models.checkpoint import load_checkpoint, load_model
from demosaic.inference.run import infer_file
from demosaic.models.zoo import DEFAULT_CHECKPOINT
from demosaic.io.dng import write_dng
from demosaic.io.images import read_exr, read_image_linear

from conftest import assert_trained_on_training_sets, camera_capture_scores, demosaic_exposures

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "src" / "demosaic" / "assets" / "samples" / "val"
EXPERIMENTS = ROOT / "configs" / "lineage" / "experiment"  # the shipped models' stages


def test_default_checkpoint_is_small_and_records_how_it_was_made():
    assert DEFAULT_CHECKPOINT.is_file()
    assert DEFAULT_CHECKPOINT.stat().st_size < 5 * 2**20
    ckpt = load_checkpoint(DEFAULT_CHECKPOINT)  # weights_only=True inside
    assert ckpt["cfa"] == "xtrans" and ckpt["train_state"] is None
    cfg = ckpt["config"]
    # the run name is one that an experiment file of the default-model chain produces
    produced_by = {OmegaConf.load(f).get("trainer", {}).get("run_name"): f.stem
                   for f in EXPERIMENTS.glob("xtrans_default*.yaml")}
    assert cfg["trainer"]["run_name"] in produced_by, sorted(produced_by)
    if cfg["trainer"].get("init_from"):  # a fine-tune: it starts from a run of the same chain
        start = Path(cfg["trainer"]["init_from"])  # .../<run>/best.pt or .../<run>.pt
        assert start.parent.name in produced_by or start.stem in produced_by
    assert_trained_on_training_sets(cfg)
    assert ckpt["step"] > 0 and ckpt["metrics"]["psnr"] > 30


def test_default_model_is_exposure_equivariant_and_keeps_highlights():
    model = load_model(DEFAULT_CHECKPOINT)
    bright, mos = demosaic_exposures(model, cfa.XTRANS)
    assert bright.max() > 2.0  # no clamp at 1.0
    m = torch.from_numpy(cfa.mask(cfa.XTRANS, 96, 96))
    sampled = (bright[0] * m).sum(0)
    if model.keep_samples:  # trained on clean mosaics: the samples are copied through
        torch.testing.assert_close(sampled, mos[0, 0] * 4.0)
    else:  # trained on noisy captures (stage 7 on): a clean sample is still close to its value
        rel = ((sampled - mos[0, 0] * 4.0).abs().mean() / (mos[0, 0] * 4.0).mean()).item()
        assert rel < 0.03, rel


def test_default_model_beats_markesteijn_on_a_camera_capture(tmp_path):
    """The camera protocol on one bundled picture (X-T3 colour, ISO 800, random phase and
    margins): the shipped model through demosaic-infer's path against LibRaw's Markesteijn
    3-pass on the same DNG."""
    from demosaic.models.baselines import build_method

    scores = camera_capture_scores({"default": load_model(DEFAULT_CHECKPOINT),
                                    "markesteijn3": build_method("markesteijn3", cfa="xtrans")},
                                   tmp_path / "raws")
    assert scores["default"] > scores["markesteijn3"] + 2.0, scores


def test_default_model_beats_bilinear_through_a_dng(tmp_path):
    truth = read_image_linear(SAMPLES / "145086.png")
    h, w = truth.shape[1] // 6 * 6, truth.shape[2] // 6 * 6
    truth = truth[:, :h, :w]
    layout = cfa.XTRANS.shifted(4, 1)  # a non-canonical phase, as a real camera may have
    mosaic = np.take_along_axis(truth, np.tile(layout, (h // 6, w // 6))[None], 0)[0]
    dng = write_dng(tmp_path / "scene.dng", mosaic, layout, black_level=256, white_level=16383,
                    margins=(2, 8, 0, 0), make="TestCam")
    scores = {}
    for label, kwargs in {"default": {}, "bilinear": {"model": "bilinear"}}.items():
        out = tmp_path / f"{label}.exr"
        infer_file(dng, out, white_balance="none", **kwargs, color_space="camera")
        rgb, _ = read_exr(out)
        scores[label] = metrics.psnr(rgb, truth, border=12)
    assert scores["default"] > scores["bilinear"] + 5.0, scores
