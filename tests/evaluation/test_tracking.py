"""Run records (status transitions, names) and EXPERIMENTS.md regeneration."""

from __future__ import annotations

import json
import pytest

from demosaic import tracking
from demosaic.cli import report
from demosaic.errors import ConfigError


def test_run_names_follow_the_convention():
    assert tracking.parse_run_name("v5.0_ssim_wip") == tracking.RunName(5, 0, "ssim", "WIP")
    assert tracking.parse_run_name("v6.1_mixed_ft") == tracking.RunName(6, 1, "mixed_ft", None)
    assert tracking.parse_run_name("quickstart") is None
    assert tracking.base_name("v5.0_ssim_wip") == "v5.0_ssim"
    assert tracking.base_name("quickstart") == "quickstart"
    assert tracking.display_name("v5.0_ssim", "SUCCESS") == "v5.0_ssim_success"
    assert tracking.display_name("quickstart", "FAILED") == "quickstart"
    with pytest.raises(ConfigError, match="not usable as a file name"):
        tracking.record_path("../evil", "x")


def test_status_transitions(tmp_path):
    runs = tmp_path / "runs"
    cfg = {"model": {"name": "unet", "width": 16}, "trainer": {"max_steps": 10, "optim": {"lr": 1e-3}}}
    rec = tracking.start_run("v5.0_ssim_wip", config=cfg, ckpt_dir="ck/v5.0_ssim", log_path="l.log",
                             runs_dir=runs)
    assert rec.name == "v5.0_ssim" and rec.status == "WIP" and rec.started
    assert (runs / "v5.0_ssim.json").is_file()

    rec = tracking.finish_run("v5.0_ssim", {"psnr": 38.5, "best_psnr": float("-inf")}, runs_dir=runs)
    assert rec.status == "ANALYSIS" and rec.finished
    data = json.loads((runs / "v5.0_ssim.json").read_text())
    assert data["metrics"] == {"psnr": 38.5, "best_psnr": None}  # non-finite -> null, valid JSON
    assert data["config"]["model"]["width"] == 16

    rec = tracking.mark_run("v5.0_ssim_analysis", "success", "sharper than v4", runs_dir=runs)
    assert rec.status == "SUCCESS" and rec.notes[-1]["text"] == "sharper than v4"
    assert [h["status"] for h in rec.history] == ["WIP", "ANALYSIS", "SUCCESS"]

    # resume reopens the same record as WIP and keeps its history and notes
    rec = tracking.start_run("v5.0_ssim", runs_dir=runs)
    assert rec.status == "WIP" and rec.history[-1]["event"] == "resumed" and len(rec.notes) == 1
    assert rec.config["model"]["name"] == "unet"

    rec = tracking.fail_run("v5.0_ssim", "non-finite loss at step 7", runs_dir=runs)
    assert rec.status == "FAILED" and "step 7" in rec.notes[-1]["text"]
    assert tracking.load_run("v5.0_ssim", runs).status == "FAILED"

    with pytest.raises(ConfigError, match="not a status"):
        tracking.mark_run("v5.0_ssim", "GREAT", runs_dir=runs)
    with pytest.raises(tracking.TrackingError, match="no run record"):
        tracking.mark_run("v9.0_nothing", "SUCCESS", runs_dir=runs)
    planned = tracking.mark_run("v9.0_mixed", "PLANNED", "90% real + 10% torture", runs_dir=runs)
    assert planned.status == "PLANNED"
    assert [r.name for r in tracking.list_runs(runs)] == ["v5.0_ssim", "v9.0_mixed"]


def test_record_eval_attaches_only_to_known_runs(tmp_path):
    runs = tmp_path / "runs"
    assert tracking.record_eval("v1.0_x", "kodak24", {"psnr": 30.0}, runs_dir=runs) is None
    tracking.start_run("v1.0_x", runs_dir=runs)
    rec = tracking.record_eval("v1.0_x", "kodak24", {"psnr": 30.0, "ssim": float("nan")}, "r.json",
                               runs_dir=runs)
    assert rec is not None and rec.status == "WIP"
    assert tracking.load_run("v1.0_x", runs).evals["kodak24"]["metrics"] == {"psnr": 30.0, "ssim": None}


def _populate(runs):
    tracking.start_run("v5.0_ssim", config={"model": {"name": "unet"}}, ckpt_dir="c", log_path="l",
                       runs_dir=runs)
    tracking.finish_run("v5.0_ssim", {"psnr": 37.0}, runs_dir=runs)
    tracking.record_eval("v5.0_ssim", "kodak24", {
        "psnr": 38.25, "psnr_srgb": 36.0, "ssim": 0.97, "texture_score": 0.93,
        "periodic_artifact_score": 4.2, "periodic_artifact_flag": True, "period": 6,
        "hdr_probe_error": 0.01, "hdr_probe_ratio": 1.02}, runs_dir=runs)
    tracking.start_run("v5.1_mixed", runs_dir=runs)


def test_dashboard_content(tmp_path):
    runs = tmp_path / "runs"
    _populate(runs)
    text = tracking.render_experiments(tracking.list_runs(runs))
    row = next(line for line in text.splitlines() if line.startswith("| [v5.0_ssim_analysis]"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "38.25 (kodak24)" and cells[2] == "0.9700" and cells[3] == "0.930"
    assert cells[4] == "Yes (×1.02)" and cells[5].startswith("6×6 grid")
    assert cells[6] == tracking.STATUS_LABELS["ANALYSIS"]
    wip = next(line for line in text.splitlines() if line.startswith("| [v5.1_mixed_wip]"))
    assert "⚠️ WIP" in wip


def test_hdr_and_artifact_labels():
    assert tracking.hdr_label({"hdr_probe_ratio": 8.0}) == "No (×8.00)"
    assert tracking.hdr_label({"hdr_probe_ratio": 2.0}).startswith("Partial")
    assert tracking.hdr_label({"hdr_error": 0.01}) == "Yes (1.0%)"
    assert tracking.hdr_label({"hdr_error": None}) == "?"
    assert tracking.artifact_label({"periodic_artifact_score": 1.2, "periodic_artifact_flag": 0.0,
                                    "period": 6.0}) == "None (1.2)"


def test_regeneration_is_idempotent_and_keeps_notes(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "EXPERIMENTS.md"
    _populate(runs)
    path, changed = tracking.regenerate(out, runs)
    assert changed and path.is_file()
    first = out.read_text()
    assert "<!-- notes:run:v5.0_ssim -->" in first and "<!-- notes:history -->" in first

    # hand-written notes in a run block and a fixed block survive regeneration
    edited = first.replace("<!-- notes:run:v5.0_ssim -->\n_(no notes yet)_\n",
                           "<!-- notes:run:v5.0_ssim -->\nGrid visible on kodim19 fences.\n", 1)
    edited = edited.replace("<!-- notes:history -->\n_(no notes yet)_\n",
                            "<!-- notes:history -->\nv4: 48.2 dB vs its teacher.\n\nSecond para.\n", 1)
    assert edited != first
    out.write_text(edited)
    _, changed = tracking.regenerate(out, runs)
    assert not changed  # nothing new: byte-identical
    tracking.mark_run("v5.0_ssim", "FAILED", "grid artifact", runs_dir=runs)
    _, changed = tracking.regenerate(out, runs)
    text = out.read_text()
    assert changed and "Grid visible on kodim19 fences." in text
    assert "v4: 48.2 dB vs its teacher.\n\nSecond para.\n" in text
    assert "v5.0_ssim_failed" in text and "grid artifact" in text
    _, changed = tracking.regenerate(out, runs)
    assert not changed and out.read_text() == text

    # a record that disappears leaves its notes under "Orphaned notes"
    (runs / "v5.0_ssim.json").unlink()
    tracking.regenerate(out, runs)
    text = out.read_text()
    assert "## Orphaned notes" in text and "Grid visible on kodim19 fences." in text


def test_report_cli_mark_and_check(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "EXPERIMENTS.md"
    _populate(runs)
    base = ["--runs-dir", str(runs), "--out", str(out)]
    assert report.run(base + ["--check"]) == 1  # missing file: out of date
    assert report.run(base) == 0
    assert report.run(base + ["--check"]) == 0
    assert report.run(base + ["mark", "v5.1_mixed", "success", "--note", "best so far"]) == 0
    assert tracking.load_run("v5.1_mixed", runs).status == "SUCCESS"
    assert "v5.1_mixed_success" in out.read_text()
    assert report.run(base + ["list"]) == 0
    assert "v5.1_mixed_success" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        report.run(base + ["mark", "v5.1_mixed", "GREAT"])


def test_env_var_selects_runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(tracking.RUNS_ENV, str(tmp_path / "elsewhere"))
    rec = tracking.start_run("v1.0_env")
    assert (tmp_path / "elsewhere" / "v1.0_env.json").is_file() and rec.status == "WIP"
    assert [r.name for r in tracking.list_runs()] == ["v1.0_env"]
