"""The Bayer model shipped in the package (issue "Every camera out of the box"): loadable,
self-describing, trained only on the training sets, exposure-equivariant, keeps highlights,
beats LibRaw's AHD on a camera capture, and is what demosaic-infer picks for a Bayer file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from demosaic import cfa
from demosaic.inference.run import infer_file
from demosaic.models.checkpoint import load_checkpoint, load_model
from demosaic.models.zoo import SHIPPED_CHECKPOINTS
from demosaic.io.images import read_exr, read_image_linear

from conftest import assert_trained_on_training_sets, camera_capture_scores, demosaic_exposures

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "src" / "demosaic" / "assets" / "samples" / "val"
BAYER = SHIPPED_CHECKPOINTS["bayer"]


def test_shipped_bayer_checkpoint_records_how_it_was_made():
    assert BAYER.is_file() and BAYER.stat().st_size < 5 * 2**20
    ckpt = load_checkpoint(BAYER)
    assert ckpt["cfa"] == "bayer_rggb" and ckpt["train_state"] is None
    cfg = ckpt["config"]
    produced_by = {OmegaConf.load(f).get("trainer", {}).get("run_name"): f.stem
                   for f in (ROOT / "configs" / "lineage" / "experiment").glob("bayer_default*.yaml")}
    assert cfg["trainer"]["run_name"] in produced_by, sorted(produced_by)
    assert_trained_on_training_sets(cfg)


def test_shipped_bayer_model_is_exposure_equivariant_and_keeps_highlights():
    bright, _ = demosaic_exposures(load_model(BAYER), cfa.BAYER_RGGB)
    assert bright.max() > 2.0  # no clamp at 1.0


def test_shipped_bayer_model_beats_libraw_ahd_on_a_camera_capture(tmp_path):
    from demosaic.models.baselines import build_method

    scores = camera_capture_scores({"shipped": load_model(BAYER),
                                    "ahd": build_method("ahd", cfa="bayer_rggb")}, tmp_path / "raws")
    assert scores["shipped"] > scores["ahd"] + 2.0, scores


@pytest.mark.parametrize("shift", [(0, 0), (1, 1)])
def test_demosaic_infer_picks_the_bayer_model_for_a_bayer_file(tmp_path, shift):
    from demosaic.io.dng import write_dng

    truth = read_image_linear(SAMPLES / "145086.png")[:, :120, :160]
    layout = cfa.BAYER_RGGB.shifted(*shift)
    mosaic = np.take_along_axis(truth, np.tile(layout, (60, 80))[None], 0)[0]
    dng = write_dng(tmp_path / "bayer.dng", mosaic, layout, black_level=256, white_level=16383,
                    margins=(2, 4, 0, 0))
    _, meta = read_exr(infer_file(dng, tmp_path / "out.exr", device="cpu").output)
    assert meta["demosaic:checkpoint"] == BAYER.name and "bayer_rggb" in meta["demosaic:modelSpec"]
