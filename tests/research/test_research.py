"""Research toolbox: mixture schedules, curriculum, distillation, adversarial term, logged
periodic-artifact score, CFA statistics plots, forgetting report, adaptive tiling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demosaic import cfa as cfa_mod
from demosaic.data import build_dataset
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.evaluation.clean import evaluate
from demosaic.evaluation.report import ReportSpec, load_results, write_results
from demosaic.errors import CheckpointError, ConfigError
from demosaic.models import create_model
from demosaic.research.curriculum import crop_batch, curriculum_size
from demosaic.research.distill import distill_loss, load_teacher, teacher_output
from demosaic.research.forgetting import compute_forgetting, forgetting_report

SMALL = {"name": "unet", "cfa": "xtrans", "packing": 3, "width": 8, "depth": 2, "blocks": 1,
         "keep_samples": True, "residual": True}


def _mixture(schedule=None, n=100):
    cfg = {"name": "mixture", "samples_per_epoch": n, "components": [
        {"ratio": 1.0, "dataset": {"name": "torture", "patch_size": 24, "count": 4}},
        {"ratio": 1.0, "dataset": {"name": "torture", "patch_size": 24, "count": 4, "types": [3]}}]}
    if schedule is not None:
        cfg["schedule"] = schedule
    return build_dataset(cfg, pattern="xtrans", split="train", seed=0)


def test_mixture_schedule_changes_ratios_per_epoch():
    ds = _mixture([{"epoch": 0, "ratios": [0.9, 0.1]}, {"epoch": 4, "ratios": [0.5, 0.5]}])
    counts = []
    for epoch in range(7):
        ds.set_epoch(epoch)
        counts.append(np.bincount(ds.table()[0], minlength=2).tolist())
    assert counts == [[90, 10], [80, 20], [70, 30], [60, 40], [50, 50], [50, 50], [50, 50]]
    ds.set_epoch(2)
    again = ds.table()[0].copy()
    ds.set_epoch(3)
    ds.set_epoch(2)
    assert np.array_equal(again, ds.table()[0])  # pure function of (seed, epoch): exact resume
    fixed = _mixture()
    fixed.set_epoch(5)
    assert np.bincount(fixed.table()[0]).tolist() == [50, 50]  # no schedule: fixed ratios


@pytest.mark.parametrize("schedule, match", [
    ([{"epoch": 0, "ratios": [1.0]}], "one ratio per component"),
    ([{"epoch": 3, "ratios": [1, 1]}, {"epoch": 1, "ratios": [1, 0]}], "strictly increasing"),
    ([{"epoch": 0, "ratios": [-1, 2]}], ">= 0"),
])
def test_mixture_schedule_rejects_bad_keyframes(schedule, match):
    with pytest.raises(ConfigError, match=match):
        _mixture(schedule)


def test_curriculum_grows_and_keeps_the_cfa_phase():
    sizes = [curriculum_size(s, 96, 0.5, 100, 6) for s in (0, 50, 100, 500)]
    assert sizes == [48, 72, 96, 96]
    assert curriculum_size(0, 96, 0.1, 10, 24) == 24  # never below one multiple
    with pytest.raises(ConfigError, match="start_fraction"):
        curriculum_size(0, 96, 0.0, 10, 6)
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0, 1, (2, 3, 60, 60)).astype(np.float32))
    cfa = cfa_mod.mosaic(target, "xtrans").unsqueeze(1) if cfa_mod.mosaic(target[0], "xtrans").ndim == 2 \
        else torch.stack([cfa_mod.mosaic(t, "xtrans") for t in target])
    cfa = cfa.reshape(2, 1, 60, 60)
    offsets = set()
    for step in range(6):
        c, t = crop_batch(cfa, target, 24, 6, seed=1, step=step)
        assert c.shape == (2, 1, 24, 24) and t.shape == (2, 3, 24, 24)
        assert torch.equal(c[:, 0], cfa_mod.mosaic(t, "xtrans").reshape(2, 24, 24))  # canonical phase
        y0 = int(np.argwhere((cfa[0, 0] == c[0, 0, 0, 0]).numpy())[0][0])
        offsets.add(y0)
    c1, _ = crop_batch(cfa, target, 24, 6, seed=1, step=3)
    c2, _ = crop_batch(cfa, target, 24, 6, seed=1, step=3)
    assert torch.equal(c1, c2)  # reproducible per (seed, step)


def _save(model, path: Path, name: str = "unet", kwargs=None) -> Path:
    kwargs = dict(kwargs if kwargs is not None else {k: v for k, v in SMALL.items() if k != "name"})
    save_checkpoint(make_checkpoint(model, name, kwargs, cfa="xtrans", step=1), path)
    return path


def test_distillation_loss_decreases_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    big = {"cfa": "xtrans", "packing": 3, "width": 16, "depth": 2, "blocks": 1, "keep_samples": True,
           "residual": True}
    teacher_model = create_model("unet", **big)
    with torch.no_grad():  # a teacher that differs clearly from a fresh student
        for p in teacher_model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = _save(teacher_model, tmp_path / "teacher.pt", kwargs=big)
    teacher = load_teacher(path, "xtrans")
    assert not any(p.requires_grad for p in teacher.parameters())
    student = create_model("unet", **{k: v for k, v in SMALL.items() if k != "name"})
    rgb = torch.rand(2, 3, 48, 48)
    cfa = torch.stack([cfa_mod.mosaic(x, "xtrans") for x in rgb]).reshape(2, 1, 48, 48)
    target = teacher_output(teacher, cfa)
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = distill_loss(student(cfa), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    with pytest.raises(CheckpointError, match="teacher=PATH"):
        load_teacher(tmp_path / "missing.pt", "xtrans")
    bayer = create_model("unet", cfa="bayer_rggb", packing=2, width=8, depth=1, blocks=1)
    save_checkpoint(make_checkpoint(bayer, "unet", {"cfa": "bayer_rggb", "packing": 2, "width": 8, "depth": 1,
                                                    "blocks": 1}, cfa="bayer_rggb", step=1), tmp_path / "b.pt")
    with pytest.raises(ConfigError, match="same CFA"):
        load_teacher(tmp_path / "b.pt", "xtrans")


def _train_tiny(tmp_path: Path, trainer_extra: dict, steps: int = 3):
    from demosaic.training.loop import train, trainer_config_from

    t = trainer_config_from({
        "run_name": "r", "device": "cpu", "precision": "fp32", "max_steps": steps, "batch_size": 2,
        "num_workers": 0, "log_every": 1, "val_every": steps, "save_every": steps, "snapshot_every": 1,
        "snapshot_crop": 48, "val_max_images": 1, "optim": {"warmup_steps": 1},
        "checkpoint_dir": str(tmp_path / "ckpt"), "log_dir": str(tmp_path / "logs"), **trainer_extra})
    result = train(dataset_cfg={"train": {"name": "synthetic", "patch_size": 48},
                                "val": {"name": "folder", "max_size": 96}},
                   model_cfg=SMALL, loss_cfg={"terms": {"l1": 1.0}}, trainer=t)
    rows = [json.loads(line) for line in (tmp_path / "logs" / "metrics_r.jsonl").read_text().splitlines()]
    return result, rows


def test_trainer_distills_adversarially_with_curriculum_and_logs_periodic_score(tmp_path):
    teacher = _save(create_model("unet", **{k: v for k, v in SMALL.items() if k != "name"}),
                    tmp_path / "teacher.pt")
    result, rows = _train_tiny(tmp_path, {
        "distill": {"teacher": str(teacher), "weight": 0.5},
        "adversarial": {"weight": 0.01, "channels": 8, "start_step": 1},
        "curriculum": {"start_fraction": 0.5, "ramp_steps": 2}})
    assert result.step == 3
    train_rows = [r for r in rows if "loss/total" in r]
    assert all("loss/distill" in r and "loss/discriminator" in r for r in train_rows)
    assert "loss/adversarial" not in train_rows[0] and "loss/adversarial" in train_rows[1]
    snaps = [r["snapshot/periodic_artifact"] for r in rows if "snapshot/periodic_artifact" in r]
    assert len(snaps) == 3 and all(np.isfinite(snaps))
    val = [r for r in rows if "val/periodic_artifact" in r]
    assert len(val) == 1 and np.isfinite(val[0]["val/periodic_artifact"])
    state = torch.load(tmp_path / "ckpt" / "r" / "last.pt", weights_only=True)["train_state"]
    assert "discriminator" in state and "d_optimizer" in state


def test_adversarial_run_resumes_exactly(tmp_path, monkeypatch):
    """Ctrl-C after 2 of 4 steps, resume: generator and discriminator match 4 straight steps."""
    from demosaic.training.data_order import StepIndexedDataset

    extra = {"adversarial": {"weight": 0.01, "channels": 8}, "save_every": 2}
    _train_tiny(tmp_path / "a", extra, steps=4)
    original = StepIndexedDataset.__getitem__

    def interrupt_at_step_3(self, g):
        if g >= 2 * 2:
            raise KeyboardInterrupt
        return original(self, g)

    monkeypatch.setattr(StepIndexedDataset, "__getitem__", interrupt_at_step_3)
    first, _ = _train_tiny(tmp_path / "b", extra, steps=4)
    assert first.interrupted and first.step == 2
    monkeypatch.setattr(StepIndexedDataset, "__getitem__", original)
    _train_tiny(tmp_path / "b", {**extra, "resume": True}, steps=4)
    a = torch.load(tmp_path / "a" / "ckpt" / "r" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "ckpt" / "r" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0, msg=k)
    da, db = a["train_state"]["discriminator"], b["train_state"]["discriminator"]
    for k in da:
        torch.testing.assert_close(da[k], db[k], rtol=0, atol=0, msg=k)


def test_cfa_statistics_plots_and_detects_a_phase_bias(tmp_path):
    from demosaic.research.cfa_stats import compare_cfa_statistics, summary_table
    from demosaic.research.plots import have_matplotlib

    if not have_matplotlib():
        pytest.skip("the plots extra (matplotlib) is not installed")

    synthetic = build_dataset({"name": "synthetic", "patch_size": 48, "augment": False,
                               "exposure_range": [1.0, 1.0]}, pattern="xtrans", split="train", seed=0)

    class Biased(torch.utils.data.Dataset):
        """The same mosaics with one CFA position 20 % brighter (a phase-dependent bias)."""

        def __len__(self):
            return len(synthetic)

        def __getitem__(self, i):
            item = dict(synthetic[i])
            cfa = item["cfa"].clone()
            cfa[:, 0::6, 1::6] *= 1.2
            return {**item, "cfa": cfa}

    stats = compare_cfa_statistics({"synthetic": synthetic, "biased": Biased()}, tmp_path, period=6, max_items=6)
    for p in stats["plots"]:
        with Image.open(p) as im:
            assert im.size == (720, 420) and im.mode == "RGB"
            assert len(np.unique(np.asarray(im).reshape(-1, 3), axis=0)) > 3  # something was drawn
    ratio = np.asarray(stats["biased"]["phase_means"]) / np.asarray(stats["synthetic"]["phase_means"])
    assert ratio[0, 1] > 1.15 and np.abs(np.delete(ratio.ravel(), 1) - 1).max() < 0.05
    assert abs(sum(stats["synthetic"]["histograms"]["G"]) - 1.0) < 0.05
    saved = json.loads((tmp_path / "cfa_stats.json").read_text())
    assert saved["synthetic"]["items"] == 6
    assert "| biased |" in summary_table(stats)


def _eval(model, images, out: Path) -> Path:
    result = evaluate(model, images, border=6, hdr_gain=0.0,
                      report=ReportSpec(evalset=out.name, worst_crops=0, out_dir=out, progress=False))
    write_results(result, out)
    return out


def test_forgetting_report_from_evaluation_runs(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    original = [(f"o{i}", np.stack([0.5 + 0.3 * np.sin(0.1 * (i + 1) * yy + c + 0.05 * xx) for c in range(3)])
                 .astype(np.float32)) for i in range(2)]
    new = [(f"n{i}", rng.uniform(0.1, 0.9, (3, 48, 48)).astype(np.float32)) for i in range(2)]
    before = create_model("bilinear", cfa="xtrans")
    after = create_model("unet", **{k: v for k, v in SMALL.items() if k != "name"}).eval()
    runs = {name: _eval(m, imgs, tmp_path / name) for name, m, imgs in
            (("before_orig", before, original), ("before_new", before, new),
             ("after_orig", after, original), ("after_new", after, new))}
    report = forgetting_report({"original": runs["before_orig"], "new": runs["before_new"]},
                               {"ft": {"original": runs["after_orig"], "new": runs["after_new"]}},
                               out_dir=tmp_path / "report")
    row = report["runs"]["ft"]["psnr"]
    bo = load_results(runs["before_orig"])["summary"]["psnr"]
    ao = load_results(runs["after_orig"])["summary"]["psnr"]
    an = load_results(runs["after_new"])["summary"]["psnr"]
    bn = load_results(runs["before_new"])["summary"]["psnr"]
    assert row["forgetting"] == pytest.approx(bo - ao) and row["gain"] == pytest.approx(an - bn)
    per = report["runs"]["ft"]["periodic_artifact_score"]  # lower is better: sign flipped
    assert per["forgetting"] == pytest.approx(per["after_original"] - per["before_original"])
    md = (tmp_path / "report" / "forgetting.md").read_text()
    assert "## ft" in md and f"{row['forgetting']:.4g}" in md
    assert json.loads((tmp_path / "report" / "forgetting.json").read_text())["runs"]["ft"]["psnr"] == row


def test_forgetting_signs_and_errors():
    res = lambda psnr, per: {"summary": {"psnr": psnr, "periodic_artifact_score": per}}  # noqa: E731
    rows = compute_forgetting({"original": res(40, 1.0), "new": res(30, 1.0)},
                              {"original": res(38.5, 3.0), "new": res(33, 0.5)})
    assert rows["psnr"]["forgetting"] == pytest.approx(1.5) and rows["psnr"]["gain"] == pytest.approx(3)
    assert rows["periodic_artifact_score"]["forgetting"] == pytest.approx(2.0)
    assert rows["periodic_artifact_score"]["gain"] == pytest.approx(0.5)
    tex = lambda v: {"summary": {"texture_score": v}}  # noqa: E731  ideal 1.0
    t = compute_forgetting({"original": tex(0.9), "new": tex(3.0)}, {"original": tex(0.6), "new": tex(1.5)})
    assert t["texture_score"]["forgetting"] == pytest.approx(0.3) and t["texture_score"]["gain"] == pytest.approx(1.5)
    with pytest.raises(ConfigError, match="new"):
        compute_forgetting({"original": res(1, 1)}, {"original": res(1, 1), "new": res(1, 1)})
    with pytest.raises(ConfigError, match="ssim"):
        compute_forgetting({"original": res(1, 1), "new": res(1, 1)},
                           {"original": res(1, 1), "new": res(1, 1)}, metrics=["ssim"])


def test_adaptive_tiling_is_exact_without_smooth_blocks_and_cheaper_with_them():
    from demosaic.inference.tiling import tiled_demosaic
    from demosaic.research.speed import adaptive_tiled_demosaic, block_detail

    torch.manual_seed(0)
    model = create_model("unet", **{k: v for k, v in SMALL.items() if k != "name"}).eval()
    yy, xx = np.mgrid[0:144, 0:150].astype(np.float32)
    rgb = np.stack([0.4 + 0.1 * np.sin(0.02 * yy + c) + 0.0 * xx for c in range(3)]).astype(np.float32)
    rgb[:, :48, :48] = np.random.default_rng(0).uniform(0, 1, (3, 48, 48))  # one detailed corner
    mosaic = torch.from_numpy(cfa_mod.mosaic(rgb, "xtrans"))
    whole = tiled_demosaic(model, mosaic, tile=0, device="cpu")
    exact, plan_exact = adaptive_tiled_demosaic(model, mosaic, tile=24, smooth_threshold=0.0)
    assert plan_exact.smooth_blocks == 0
    assert torch.allclose(exact, whole, atol=1e-5)
    fast, plan_fast = adaptive_tiled_demosaic(model, mosaic, tile=24, smooth_threshold=0.2)
    assert 0 < plan_fast.smooth_blocks and plan_fast.detailed_blocks >= 1
    assert plan_fast.pixels < plan_exact.pixels
    assert fast.shape == whole.shape and torch.isfinite(fast).all()
    flat = torch.full((48, 48), 0.3)
    assert block_detail(flat, 6) == pytest.approx(0.0, abs=1e-6)
    m2 = mosaic.reshape(mosaic.shape[-2:])
    assert block_detail(m2[:48, :48], 6) > 5 * block_detail(m2[96:, 96:], 6)
