"""``demosaic-research``: the research tools under one command (argparse subcommands)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from demosaic.cli.research import TOOLS, main

NAMES = ["cfa-stats", "forgetting", "periodic-timeline", "speed", "proxy-raws", "eval-table"]


def _exit_code(argv: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_help_lists_the_six_tools(capsys):
    assert [t[0] for t in TOOLS] == NAMES
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demosaic-research" in out
    for name in NAMES:
        assert name in out


@pytest.mark.parametrize("tool", NAMES)
def test_each_tool_answers_help(tool, capsys):
    assert _exit_code([tool, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"demosaic-research {tool}" in out and "python scripts/" not in out


def test_unknown_tool_and_missing_tool_exit_2(capsys):
    assert _exit_code(["no-such-tool"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert _exit_code([]) == 2


def _write_eval_run(folder: Path, psnr: float, method: str) -> None:
    """A results.json as demosaic-eval writes it (EvalResult through write_results)."""
    from demosaic.evaluation.report import EvalResult, ImageResult, write_results

    metrics = {"psnr": psnr, "psnr_srgb": psnr - 2.0, "ssim": 0.95, "texture_score": 0.8,
               "periodic_artifact_score": 1.3, "periodic_levels": 0.2, "hdr_probe_error": math.nan}
    images = [ImageResult(name=f"img{i}", height=96, width=96, seconds=0.01, metrics=dict(metrics))
              for i in range(3)]
    result = EvalResult(method=method, kind="checkpoint", pattern="xtrans", evalset="cbsd68",
                        border=12, images=images, mean=dict(metrics), megapixels_per_s=4.5,
                        per_type={}, crops=[], info={"verdicts": {"periodic_artifact_flag": False}})
    folder.mkdir(parents=True)
    write_results(result, folder)


def test_eval_table_prints_both_runs(tmp_path, capsys):
    _write_eval_run(tmp_path / "base_cbsd68", 31.25, "base")
    _write_eval_run(tmp_path / "v5.0_ssim_cbsd68", 32.5, "v5.0_ssim")
    assert main(["eval-table", str(tmp_path / "base_cbsd68"),
                 str(tmp_path / "v5.0_ssim_cbsd68" / "results.json")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("| run | images | PSNR (dB) | sRGB PSNR (dB) | SSIM |")
    assert lines[1] == "|---|---|" + "---|" * 6
    assert lines[2] == "| base_cbsd68 | 3 | 31.25 | 29.25 | 0.9500 | 0.800 | 1.30 | 4.50 |"
    assert lines[3].startswith("| results.json | 3 | 32.50 |")  # a file is named as given


def test_eval_table_missing_run_is_a_config_error(tmp_path, caplog):
    assert _exit_code(["eval-table", str(tmp_path / "absent")]) == 2
    assert "cannot read evaluation results" in caplog.text


def test_forgetting_reports_each_run(tmp_path, capsys):
    """--run (append, three values) next to the tool dispatch: two runs, one table each."""
    for name, psnr in (("base_orig", 31.0), ("base_new", 25.0), ("ft_orig", 30.0), ("ft_new", 28.0)):
        _write_eval_run(tmp_path / name, psnr, name)
    out_dir = tmp_path / "forgetting"
    assert main(["forgetting", "--before", str(tmp_path / "base_orig"), str(tmp_path / "base_new"),
                 "--run", "plain", str(tmp_path / "ft_orig"), str(tmp_path / "ft_new"),
                 "--run", "again", str(tmp_path / "base_orig"), str(tmp_path / "ft_new"),
                 "--metrics", "psnr", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "## plain" in out and "## again" in out
    assert "| psnr | 31 | 30 | **1** | 25 | 28 | **3** |" in out
    assert (out_dir / "forgetting.json").is_file() and (out_dir / "forgetting.md").is_file()


def test_periodic_timeline_prints_its_table(tmp_path, capsys):
    from demosaic.training.outputs import log_scalars
    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

    jsonl = tmp_path / "metrics_v4.1_ft.jsonl"
    log_scalars(None, jsonl, 50, {"train/loss": 0.1})  # no validation: no row
    log_scalars(None, jsonl, 100, {"val/psnr": 30.123, "val/periodic_artifact": 1.5})
    log_scalars(None, jsonl, 100, {"snapshot/periodic_artifact": 2.25})
    log_scalars(None, jsonl, 200, {"snapshot/periodic_artifact": math.nan})
    assert main(["periodic-timeline", str(jsonl)]) == 0
    out = capsys.readouterr().out
    assert f"v4.1_ft (flag threshold {PERIODIC_ARTIFACT_THRESHOLD:g})" in out
    assert "| step | val PSNR (dB) | val periodic | snapshot periodic |" in out
    assert "| 100 | 30.12 | 1.50 | 2.25 |" in out
    assert "| 200 | - | - | - |" in out
    assert "| 50 |" not in out


def test_periodic_timeline_bad_file_is_a_config_error(tmp_path, caplog):
    bad = tmp_path / "metrics_bad.jsonl"
    bad.write_text('{"val/psnr": 30}\n')
    assert _exit_code(["periodic-timeline", str(bad)]) == 2
    assert "metrics_bad.jsonl line 1" in caplog.text
    assert _exit_code(["periodic-timeline", str(tmp_path / "absent.jsonl")]) == 2


def test_cfa_stats_rejects_a_spec_without_label(capsys, caplog):
    assert _exit_code(["cfa-stats", "cbsd432"]) == 2
    assert "expected LABEL=PRESET or LABEL=FOLDER" in caplog.text


def test_cfa_stats_reads_presets_from_the_packaged_configs():
    from demosaic.cli.research import _dataset_cfg

    cfg = _dataset_cfg("cbsd432", 48, no_augment=True)
    assert cfg["name"] == "synthetic" and cfg["patch_size"] == 48
    assert cfg["augment"] is False and cfg["exposure_range"] == [1.0, 1.0]
    assert _dataset_cfg(".", 48, no_augment=False)["name"] == "raw_teacher"
