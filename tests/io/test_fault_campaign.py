"""Fault campaign: ``kill -9`` of a folder run and of a training run at chosen points (the
child stops itself there: tests/io/fault_child.py), then a rerun or resume. Afterwards the
folders hold only complete outputs and loadable checkpoints, no partial file, and the sources
are unchanged by hash. Also: a live concurrent run's temporary is not swept; two runs on one
folder at once both finish with valid files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demosaic.io.atomic import is_temporary
from demosaic.io.images import read_exr
from conftest import compose_train, hashes, run_infer

CHILD = Path(__file__).resolve().parent / "fault_child.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def start_child(tmp_path: Path, point: str, *args: str | Path) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / f"stopped-{point.replace(':', '-')}"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, str(CHILD), str(marker), point, *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    return proc, marker


def wait_stopped(proc: subprocess.Popen, marker: Path, limit: float = 240) -> None:
    """Wait until the child has stopped at its point (or fail with its error output)."""
    end = time.monotonic() + limit
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child ended ({proc.returncode}) before its stop point: "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("child never reached its stop point")
        time.sleep(0.05)


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_temporary(p.name)]


def assert_complete_outputs(out: Path, raws: Path) -> None:
    """``out`` holds exactly one complete EXR per raw file, and nothing else of ours."""
    exrs = sorted(p for p in out.iterdir() if p.suffix == ".exr")
    assert [p.stem for p in exrs] == sorted(p.stem for p in raws.glob("*.dng"))
    for p in exrs:
        rgb, meta = read_exr(p)
        assert rgb.shape == (3, 72, 96) and "demosaic:settings" in meta
    assert temporaries(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("point, same_folder", [
    ("temp:1", False),     # first output's temporary just made, empty
    ("rename:1", False),   # first output written in full, not renamed
    ("rename:2", True),    # one output done; the second complete but not renamed; out == in
    ("temp:3", True),      # two outputs done, the third begun
])
def test_kill9_during_a_folder_run_then_rerun(tmp_path, raws, point, same_folder):
    before = hashes(raws)
    out = raws if same_folder else tmp_path / "out"
    proc, marker = start_child(tmp_path, point, "infer", raws, out, "--no-progress", "--device", "cpu")
    wait_stopped(proc, marker)
    kill9(proc)
    assert len(temporaries(out)) == 1  # the killed run's partial file
    assert run_infer(raws, out) == 0
    assert_complete_outputs(out, raws)
    assert {k: v for k, v in hashes(raws).items() if k.endswith(".dng")} == before


@pytest.mark.slow
def test_a_live_runs_temporary_is_kept_and_a_dead_ones_removed(tmp_path, raws):
    out = tmp_path / "out"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy2(sorted(raws.iterdir())[0], one)
    # A: alive, stopped with its first output complete but not yet renamed.
    alive, marker = start_child(tmp_path, "rename:1", "infer", one, out, "--no-progress",
                                "--device", "cpu")
    try:
        wait_stopped(alive, marker)
        live_tmp = temporaries(out)
        assert len(live_tmp) == 1
        # B: killed mid-write of another folder's file into the same output folder.
        dead, marker = start_child(tmp_path, "rename:2", "infer", raws, out, "--no-progress",
                                   "--device", "cpu")
        wait_stopped(dead, marker)
        kill9(dead)
        assert len(temporaries(out)) == 2
        # C: a rerun sweeps B's debris and leaves A's file alone.
        assert run_infer(raws, out) == 0
        assert temporaries(out) == live_tmp
    finally:
        kill9(alive)
    assert run_infer(raws, out) == 0  # A is dead now: its partial file goes too
    assert_complete_outputs(out, raws)


@pytest.mark.slow
def test_two_runs_on_one_folder_at_once(tmp_path, raws):
    before = hashes(raws)
    out = tmp_path / "out"
    procs = [start_child(tmp_path / str(i), "never", "infer", raws, out, "--no-progress",
                         "--device", "cpu", "--overwrite")[0] for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
        p.stderr.close()
    assert_complete_outputs(out, raws)
    assert hashes(raws) == before


def _train_args(tmp_path: Path, steps: int = 6) -> list[str]:
    return [
        "+experiment=quickstart", f"trainer.max_steps={steps}", "trainer.batch_size=2",
        "trainer.device=cpu", "trainer.log_every=1", "trainer.val_every=2", "trainer.save_every=2",
        "trainer.snapshot_every=100", "trainer.val_max_images=1", "trainer.optim.warmup_steps=1",
        "dataset.train.patch_size=24", "++dataset.val.max_size=48", "trainer.run_name=fault",
        f"trainer.checkpoint_dir={tmp_path / 'ckpt'}", f"trainer.log_dir={tmp_path / 'logs'}",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["save:2:last.pt", "rename:2:last.pt"])
def test_kill9_during_training_then_resume(tmp_path, point):
    """``save``: killed half-way through writing ``last.pt`` at step 4; ``rename``: killed
    with that checkpoint complete, not yet renamed. Either way the step-2 ``last.pt`` loads, the
    partial file is swept and ``trainer.resume=true`` finishes the run."""
    from demosaic.cli.train import run_training
    from demosaic.models.checkpoint import load_checkpoint

    run = tmp_path / "ckpt" / "fault"
    proc, marker = start_child(tmp_path, point, "train", *_train_args(tmp_path))
    wait_stopped(proc, marker)
    kill9(proc)
    assert temporaries(run), "the kill left no partial file: the stop point moved"
    assert load_checkpoint(run / "last.pt")["step"] == 2
    run_training(compose_train([*_train_args(tmp_path), "trainer.resume=true"]))
    assert load_checkpoint(run / "last.pt")["step"] == 6
    assert load_checkpoint(run / "best.pt")["step"] in (2, 4, 6)
    assert temporaries(tmp_path) == []


@pytest.mark.slow
def test_kill9_during_a_shard_build_then_resume(tmp_path, raws):
    """Killed with the second file's shard written but not renamed: the rerun removes the
    partial file, skips the first file, builds the others and writes the manifest."""
    import json

    from demosaic.cli.prepare import main as prepare_main

    before = hashes(raws)
    out = tmp_path / "shards"
    args = ["raw_teacher", f"source={raws}", f"out={out}", "progress=false"]
    proc, marker = start_child(tmp_path, "rename:2:.target.npy", "prepare", *args)
    wait_stopped(proc, marker)
    kill9(proc)
    assert temporaries(out)
    prepare_main(args)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == 3 and not manifest.get("failed")
    assert temporaries(out) == []
    assert hashes(raws) == before
