"""Evaluation: metrics flow end to end, artifact detection, crops/EXR/JSON outputs, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

from demosaic import cfa as cfa_mod
from demosaic import tracking
from demosaic.cli import evaluate as cli_eval
from demosaic.models import zoo
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.evaluation.clean import evaluate, images_from_dataset
from demosaic.evaluation.report import ReportSpec, load_results
from demosaic.errors import CheckpointError, ConfigError
from demosaic.models import create_model

QUIET = ReportSpec(worst_crops=0, progress=False)  # nothing written, no bar


def _images(n: int = 2, h: int = 96, w: int = 102, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Smooth colourful test images (linear, in [0.05, 0.95])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i in range(n):
        f = rng.uniform(0.03, 0.12, size=(3, 2))
        rgb = np.stack([0.5 + 0.45 * np.sin(f[c, 0] * yy + f[c, 1] * xx + c) for c in range(3)])
        out.append((f"img{i}", rgb.astype(np.float32)))
    return out


class Oracle:
    """Knows the truth (via ``lookup``) and returns ``truth + perturbation``: makes the
    expected metric values computable by hand."""

    def __init__(self, truths: dict[int, np.ndarray], perturb) -> None:
        self.pattern = cfa_mod.XTRANS
        self.truths = truths
        self.perturb = perturb
        self.name = "oracle"

    def demosaic(self, cfa: torch.Tensor) -> torch.Tensor:
        key = round(float(cfa.sum()), 2)
        if key not in self.truths:  # warm-up crop or HDR probe: answer with bilinear
            return create_model("bilinear", cfa="xtrans").demosaic(cfa)
        t = torch.from_numpy(self.truths[key])
        return t + torch.from_numpy(self.perturb(t.shape).astype(np.float32))


def _oracle(images, perturb) -> Oracle:
    truths = {}
    for _, rgb in images:
        h, w = rgb.shape[1] // 6 * 6, rgb.shape[2] // 6 * 6
        crop = np.ascontiguousarray(rgb[:, :h, :w])
        truths[round(float(cfa_mod.mosaic(torch.from_numpy(crop), "xtrans").sum()), 2)] = crop
    return Oracle(truths, perturb)


def test_metrics_flow_with_hand_computed_psnr(tmp_path):
    images = _images(2, 96, 100)  # 100 is cropped to 96 (period multiple)
    method = _oracle(images, lambda shape: np.full(shape, 0.01))  # MSE 1e-4 -> exactly 40 dB
    res = evaluate(method, images, border=6, hdr_gain=0,
                   report=ReportSpec(evalset="tiny", worst_crops=0, out_dir=tmp_path, progress=False))
    assert [r.name for r in res.images] == ["img0", "img1"]
    assert all((r.height, r.width) == (96, 96) for r in res.images)
    for r in res.images:
        assert r.metrics["psnr"] == pytest.approx(40.0, abs=1e-3)
        assert r.metrics["ssim"] > 0.99
        assert np.isnan(r.metrics["hdr_error"])  # no highlights in the truth
    assert res.mean["psnr"] == pytest.approx(40.0, abs=1e-3)
    assert res.megapixels_per_s > 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["summary"]["psnr"] == pytest.approx(40.0, abs=1e-3)
    assert data["images"][0]["metrics"]["hdr_error"] is None  # NaN -> null: valid JSON
    md = (tmp_path / "results.md").read_text()
    assert "| oracle | tiny | 2 | 40.00 |" in md


def test_bilinear_end_to_end_with_crops_exr_and_hdr_probe(tmp_path):
    images = _images(2, 120, 126, seed=1)
    model = create_model("bilinear", cfa="xtrans")
    res = evaluate(model, images, border=12, compare=["libraw_linear", "not_a_method"],
                   save_exr=True, hdr_gain=4.0, hdr_probe_size=96,
                   report=ReportSpec(evalset="tiny", worst_crops=1, crop_size=48, zoom=2,
                                     out_dir=tmp_path, progress=False))
    assert 25 < res.mean["psnr"] < 60
    # bilinear is linear in exposure: highlights scale exactly, probe ratio 1
    assert res.mean["hdr_probe_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert res.summary["periodic_artifact_flag"] == 0.0
    (crop,) = res.crops
    assert crop.panels == ["truth", "bilinear", "libraw_linear"]  # unknown baseline skipped
    from demosaic.io.images import read_exr, read_image

    png = read_image(tmp_path / crop.path)
    assert png.shape == (48 * 2, 3 * 48 * 2 + 2 * 4, 3)
    exr, _ = read_exr(tmp_path / "exr" / "img0.exr")
    expected = model.demosaic(cfa_mod.mosaic(torch.from_numpy(images[0][1][:, :120, :126]), "xtrans"))
    np.testing.assert_allclose(exr, expected.numpy(), atol=1e-6)


def test_periodic_artifact_detector_flags_a_6px_grid(tmp_path):
    images = _images(2, 120, 120, seed=2)
    cell = np.random.default_rng(0).normal(size=(3, 6, 6))
    cell = (cell - cell.mean()) / cell.std()  # unit RMS: same error energy as the noise
    grid = _oracle(images, lambda shape: 0.02 * np.tile(cell, (1, shape[1] // 6, shape[2] // 6)))
    noise = _oracle(images, lambda shape: np.random.default_rng(1).normal(0, 0.02, size=shape))
    flagged = evaluate(grid, images, hdr_gain=0, report=QUIET)
    clean = evaluate(noise, images, hdr_gain=0, report=QUIET)
    assert flagged.summary["periodic_artifact_flag"] == 1.0
    assert clean.summary["periodic_artifact_flag"] == 0.0
    assert flagged.mean["periodic_artifact_score"] > 10 * clean.mean["periodic_artifact_score"]
    # similar error energy: the detector reacts to structure, not to magnitude
    assert abs(flagged.mean["psnr"] - clean.mean["psnr"]) < 1.0
    assert flagged.mean["periodic_levels"] > 3.0 > 0.5 > clean.mean["periodic_levels"]
    assert tracking.artifact_label(flagged.summary).startswith("6×6 grid")
    # a faint but perfectly periodic error (what every demosaicker leaves): a huge spectral
    # score, yet far below a visible level -> not flagged
    faint = _oracle(images, lambda shape: 0.0005 * np.tile(cell, (1, shape[1] // 6, shape[2] // 6)))
    res = evaluate(faint, images, hdr_gain=0, report=QUIET)
    assert res.mean["periodic_artifact_score"] > 100 and res.mean["periodic_levels"] < 0.5
    assert res.summary["periodic_artifact_flag"] == 0.0


def test_torture_results_per_pattern_type():
    from demosaic.data import DATASETS

    ds = DATASETS.build({"name": "torture", "count": 3, "patch_size": 60, "types": [0, 4, 12]},
                        pattern="xtrans", split="val", seed=0)
    res = evaluate(create_model("bilinear", cfa="xtrans"), images_from_dataset(ds), border=6,
                   hdr_gain=0, report=QUIET)
    assert list(res.per_type) == ["0_stripes", "4_edges", "12_perlin_fbm"]
    assert all(v["count"] == 1.0 for v in res.per_type.values())
    assert res.images[1].name == "00001_edges" and res.images[1].type_id == 4


def _compose(overrides: list[str]):
    cli_eval.register_schemas()
    with initialize_config_module("demosaic.configs", version_base="1.3"):
        return compose("eval", overrides=overrides)


@pytest.mark.parametrize("choice", ["model=bilinear", "baseline=bilinear"])
def test_cli_config_on_bundled_set_with_bilinear(tmp_path, choice):
    n = 2 if choice.startswith("model") else 1
    cfg = _compose([choice, f"out_dir={tmp_path}", "compare=[]", "progress=false",
                    "worst_crops=1", "hdr_probe_size=96", f"evalset.max_images={n}"])
    res = cli_eval.run_evaluation(cfg, "bundled")
    assert res.evalset == "bundled" and res.kind == choice.split("=")[0] and len(res.images) == n
    assert load_results(tmp_path)["method"] == "bilinear"
    assert (tmp_path / "results.md").is_file() and len(list((tmp_path / "crops").glob("*.png"))) == 1


def test_cli_checkpoint_attaches_results_to_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = create_model("bilinear", cfa="xtrans")
    ckpt = save_checkpoint(make_checkpoint(model, "bilinear", model.spec["kwargs"], cfa="xtrans",
                                           run_name="v0.1_probe"), tmp_path / "ck" / "best.pt")
    runs = tmp_path / "runs"
    tracking.start_run("v0.1_probe", runs_dir=runs)
    cfg = _compose([f"ckpt={ckpt}", f"runs_dir={runs}", "compare=[]", "progress=false",
                    "worst_crops=0", "hdr_gain=0", "evalset.max_images=1"])
    res = cli_eval.run_evaluation(cfg, "bundled")
    assert res.kind == "checkpoint" and res.method == "v0.1_probe"
    assert (tmp_path / "logs" / "eval" / "v0.1_probe_bundled" / "results.json").is_file()
    rec = tracking.load_run("v0.1_probe", runs)
    assert rec.evals["bundled"]["metrics"]["psnr"] == pytest.approx(res.mean["psnr"])


def test_cli_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.SHIPPED_CHECKPOINTS, "xtrans", tmp_path / "missing.pt")
    monkeypatch.setitem(zoo.SHIPPED_CHECKPOINTS, "bayer", tmp_path / "missing_b.pt")
    with pytest.raises(CheckpointError, match="ships no xtrans model.*ckpt=PATH"):
        cli_eval.run_evaluation(_compose([]), "bundled")
    with pytest.raises(CheckpointError, match="ships no bayer model"):
        cli_eval.run_evaluation(_compose(["cfa=bayer_rggb"]), "bundled")
    with pytest.raises(ConfigError, match="only one of"):
        cli_eval.run_evaluation(_compose(["baseline=vng", "ckpt=x.pt"]), "bundled")
    with pytest.raises(ConfigError, match="evalset.root"):
        cli_eval.run_evaluation(_compose(["baseline=vng", "evalset=folder"]), "folder")
    cfg = _compose(["evalset=kodak24", "evalset.root=/data/my photos"])
    assert cli_eval.set_name(dict(cfg), "kodak24") == "kodak24"
    assert cli_eval.set_name({"evalset": {"root": "/data/holiday"}}, "folder") == "holiday"
    assert _compose(["evalset=torture"]).evalset.name == "torture"


def test_console_script_composes_the_config():
    """The installed entry point finds the packaged configs (prints, evaluates nothing)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "demosaic.cli.evaluate", "--cfg", "job",
                           "model=bilinear", "evalset=kodak24"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "name: bilinear" in proc.stdout and "kodak24" in proc.stdout
