"""Never lose a user's file: an output never replaces an input (same path, symbolic or hard
link, another letter case on a case-insensitive file system), whatever the flags; a folder
that is both input and output is refused or works with a suffix; temporaries of killed runs
are removed and those of live runs kept; write failures are clear errors that leave nothing.

Every case asserts the sources' hashes before and after. The kill -9 campaign is in
tests/io/test_fault_campaign.py, the fuzz test in tests/io/test_fuzz.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from demosaic.errors import WriteError
from demosaic.io import atomic, clash
from demosaic.io.atomic import atomic_path, is_temporary, sweep_stale_temporaries, temp_prefix
from demosaic.io.clash import OutputClashError, check_outputs, is_case_insensitive

from conftest import hashes, run_infer


# ---------------------------------------------------------------------------------------
# The clash rule
# ---------------------------------------------------------------------------------------


def test_an_output_on_its_input_is_refused_by_path_link_and_inode(tmp_path):
    src = tmp_path / "a.dng"
    src.write_bytes(b"raw")
    (tmp_path / "sym.dng").symlink_to(src)
    os.link(src, tmp_path / "hard.dng")
    for out in (src, tmp_path / "." / "a.dng", tmp_path / "sym.dng", tmp_path / "hard.dng"):
        with pytest.raises(OutputClashError, match="would replace the input"):
            check_outputs([src], [out], hint="use another folder")
    (tmp_path / "linkdir").symlink_to(tmp_path)
    with pytest.raises(OutputClashError):
        check_outputs([src], [tmp_path / "linkdir" / "a.dng"], hint="x")
    check_outputs([src], [tmp_path / "a.exr", tmp_path / "new" / "a.dng"], hint="x")
    assert src.read_bytes() == b"raw"


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    with pytest.raises(OutputClashError, match="one file"):
        check_outputs([], [tmp_path / "x.exr", tmp_path / "sub" / ".." / "x.exr"], hint="x")


def test_case_folding_is_detected_per_folder_not_assumed(tmp_path, monkeypatch):
    src = tmp_path / "IMG_0001.DNG"
    src.write_bytes(b"raw")
    # This machine's file system is case-sensitive: the probe says so, and the names differ.
    assert is_case_insensitive(tmp_path) is False
    assert is_case_insensitive(tmp_path / "not" / "made" / "yet") is False
    assert not [p for p in tmp_path.iterdir() if p.name != "IMG_0001.DNG"]  # probe removed
    check_outputs([src], [tmp_path / "img_0001.dng"], hint="x")
    # A folder whose file system ignores case (macOS, Windows): the same names clash.
    monkeypatch.setattr(clash, "is_case_insensitive", lambda folder: True)
    with pytest.raises(OutputClashError, match="IMG_0001.DNG"):
        check_outputs([src], [tmp_path / "img_0001.dng"], hint="x")
    with pytest.raises(OutputClashError, match="one file"):
        check_outputs([], [tmp_path / "A.exr", tmp_path / "a.exr"], hint="x")


def test_case_probe_falls_back_on_a_read_only_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "read-only")

    monkeypatch.setattr(clash.tempfile, "mkstemp", refuse)
    clash._probe_case_insensitive.cache_clear()
    (tmp_path / "Photos").mkdir()
    try:
        assert clash.is_case_insensitive(tmp_path / "Photos") is False
    finally:
        clash._probe_case_insensitive.cache_clear()


# ---------------------------------------------------------------------------------------
# demosaic-infer and the other writers
# ---------------------------------------------------------------------------------------


def test_infer_never_replaces_its_source(raws, caplog):
    before = hashes(raws)
    src = raws / next(iter(before))
    assert run_infer(src, src) == 2
    assert "would replace the input" in caplog.text and "--suffix" in caplog.text
    (raws / "link.dng").symlink_to(src)
    assert run_infer(src, raws / "link.dng") == 2
    assert run_infer(raws, raws, "--format", "dng", "--overwrite") == 2
    assert run_infer(src, raws, "--format", "dng") == 2  # folder output: raws/<stem>.dng
    assert hashes(raws) == before | {"link.dng": before[src.name]}
    assert not [p for p in raws.iterdir() if p.name.startswith(".")]


def test_case_insensitive_output_name_is_refused(raws, monkeypatch, caplog):
    monkeypatch.setattr(clash, "is_case_insensitive", lambda folder: True)
    before = hashes(raws)
    src = raws / next(iter(before))
    assert run_infer(src, raws / src.name.upper()) == 2
    assert "would replace the input" in caplog.text
    assert hashes(raws) == before


def test_folder_in_is_out_with_a_suffix_and_reruns(raws, caplog):
    caplog.set_level(logging.INFO)
    before = hashes(raws)
    assert run_infer(raws, raws, "--format", "dng") == 2
    assert "Nothing was written" in caplog.text
    assert hashes(raws) == before
    assert run_infer(raws, raws, "--format", "dng", "--suffix", "_dm") == 0
    made = sorted(set(hashes(raws)) - set(before))
    assert made == sorted(n.replace(".dng", "_dm.dng") for n in before)
    caplog.clear()
    # Again: the earlier outputs are neither inputs nor replaced; nothing to do is said.
    assert run_infer(raws, raws, "--format", "dng", "--suffix", "_dm") == 0
    assert "not reading 3 linear DNG(s) written by demosaic-infer" in caplog.text
    assert "nothing written: all 3 output(s) already exist" in caplog.text
    assert run_infer(raws, raws, "--format", "dng", "--suffix", "_dm", "--overwrite") == 0
    assert {k: v for k, v in hashes(raws).items() if k in before} == before
    # EXR outputs beside their raws need no suffix.
    assert run_infer(raws, raws) == 0
    assert {k: v for k, v in hashes(raws).items() if k in before} == before


def test_a_camera_raw_named_like_an_output_is_still_a_source(raws):
    """With --suffix _dm, a real raw called x_dm.dng beside x.dng is an input, not an earlier
    output: the plan is refused rather than replacing it."""
    first = sorted(raws.iterdir())[0]
    shutil.copy2(first, raws / (first.stem + "_dm.dng"))
    before = hashes(raws)
    assert run_infer(raws, raws, "--format", "dng", "--suffix", "_dm") == 2
    assert hashes(raws) == before


def test_suffix_with_a_file_name_is_a_clear_error(raws, caplog):
    src = sorted(raws.iterdir())[0]
    assert run_infer(src, raws / "out.exr", "--suffix", "_dm") == 2
    assert "--suffix" in caplog.text


def test_export_never_replaces_its_checkpoint(tmp_path):
    from demosaic.export import export_model
    from demosaic.models.zoo import DEFAULT_CHECKPOINT

    ckpt = tmp_path / "model.pt"
    shutil.copy2(DEFAULT_CHECKPOINT, ckpt)
    before = hashes(tmp_path)
    for out in (ckpt, tmp_path / "." / "model.pt"):
        with pytest.raises(OutputClashError):
            export_model(ckpt, "checkpoint", out, half=True)
    assert hashes(tmp_path) == before


def test_prepare_and_eval_reports_never_replace_inputs(tmp_path, camera_dngs):
    import json

    from demosaic.cli.evaluate import report_spec
    from demosaic.data.shards import FORMAT, build_raw_teacher, rank_sharpness

    src = tmp_path / "raws"
    src.mkdir()
    shutil.copy2(camera_dngs[0], src / "a.dng")
    (src / "manifest.json").write_text("a user's file, read as input here")
    before = hashes(src)
    with pytest.raises(OutputClashError, match="manifest.json"):
        build_raw_teacher(src, src, extensions=[".dng", ".json"], progress=False)
    assert hashes(src) == before
    shards = tmp_path / "shards"
    shards.mkdir()
    manifest = json.dumps({"format": FORMAT, "items": []})
    (shards / "manifest.json").write_text(manifest)
    with pytest.raises(OutputClashError):
        rank_sharpness(shards, out=shards / "manifest.json")
    assert (shards / "manifest.json").read_text() == manifest
    images = tmp_path / "images"
    images.mkdir()
    (images / "results.json").write_text("mine")
    with pytest.raises(OutputClashError):
        report_spec({"evalset": {"root": str(images)}}, "s", "n", "checkpoint", images, {})
    assert (images / "results.json").read_text() == "mine"


# ---------------------------------------------------------------------------------------
# Temporaries, debris and write failures
# ---------------------------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_carry_one_pattern_and_stale_ones_are_swept(tmp_path):
    with atomic_path(tmp_path / "x.exr") as tmp:
        assert is_temporary(tmp.name) and tmp.name.startswith(".x.exr.demosaic-tmp-")
        assert tmp.suffix == ".exr"
        tmp.write_bytes(b"1")
    assert [p.name for p in tmp_path.iterdir()] == ["x.exr"]
    mine = temp_prefix(tmp_path / "b.exr")
    live = tmp_path / f"{mine}live.exr"  # this process: alive
    stale = tmp_path / f"{mine.replace(f'-{os.getpid()}-', f'-{dead_pid()}-')}dead.exr"
    other_host = tmp_path / f".c.exr.demosaic-tmp-00000000-{dead_pid()}-x.exr"
    user_file = tmp_path / ".c.exr.notours"
    for p in (live, stale, other_host, user_file):
        p.write_bytes(b"partial")
    assert sweep_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["x.exr", live.name, other_host.name, user_file.name])


def test_a_write_sweeps_its_folder_once(tmp_path, monkeypatch):
    stale = tmp_path / f".y.exr.demosaic-tmp-{atomic.host_tag()}-{dead_pid()}-abc.exr"
    stale.write_bytes(b"partial")
    monkeypatch.setattr(atomic, "_swept", set())
    with atomic_path(tmp_path / "z.txt") as tmp:
        tmp.write_text("z")
    assert not stale.exists()


def test_full_disk_is_a_clear_error_that_leaves_nothing(raws, tmp_path, monkeypatch, caplog):
    from demosaic.io import images

    before = hashes(raws)
    out = tmp_path / "out"
    real = images.OpenEXR.File

    class Full:
        def __init__(self, *args):
            self.inner = real(*args)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, path):
            Path(path).write_bytes(b"partial")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(images.OpenEXR, "File", Full)
    assert run_infer(raws, out) == 2
    assert "No space left on device" in caplog.text
    assert list(out.iterdir()) == []
    assert hashes(raws) == before


def _mount_tmpfs(where: Path, *options: str) -> bool:
    """Mount a tmpfs (root only); False where this machine does not allow it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def make(name: str, *options: str) -> Path:
        where = tmp_path / name
        if not _mount_tmpfs(where, *options):
            pytest.skip("needs root and mount (a tmpfs); CI runs as root")
        mounts.append(where)
        return where

    yield make
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_small_real_disk_fills_up_cleanly(raws, tmpfs, caplog):
    """A 160 KiB tmpfs holds some 230 KiB float EXRs' worth of work and not the rest: the
    files that fit are complete, the others fail with the disk-full error, nothing partial."""
    before = hashes(raws)
    out = tmpfs("small", "size=160k")
    rc = run_infer(raws, out, "--float", "--exr-compression", "none")
    assert rc == 2
    assert "No space left on device" in caplog.text or "disk is full" in caplog.text
    from demosaic.io.images import read_exr

    for p in out.iterdir():
        assert not is_temporary(p.name)
        assert read_exr(p)[0].shape[0] == 3
    assert hashes(raws) == before


def test_a_read_only_output_folder_is_refused(raws, tmpfs, caplog):
    before = hashes(raws)
    out = tmpfs("ro", "size=1m", "ro")
    assert run_infer(raws, out) == 2
    assert "not writable" in caplog.text
    caplog.clear()
    assert run_infer(sorted(raws.iterdir())[0], out / "one.exr") == 2
    assert "read-only file system" in caplog.text
    assert list(out.iterdir()) == []
    assert hashes(raws) == before


def test_unreadable_inputs_are_named_and_the_others_written(raws, tmp_path, caplog):
    (raws / "garbage.dng").write_bytes(os.urandom(5000))
    (raws / "empty.raf").write_bytes(b"")
    (raws / "dangling.nef").symlink_to(tmp_path / "nowhere.nef")
    before = hashes(raws)
    out = tmp_path / "out"
    assert run_infer(raws, out) == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.stem + ".exr" for p in raws.iterdir() if p.suffix == ".dng" and "garbage" not in p.name)
    for bad in ("garbage.dng", "empty.raf"):
        assert bad in caplog.text
    assert hashes(raws) == before


def test_checkpoint_save_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from demosaic.models.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
    from demosaic.models import create_model

    model = create_model("unet", width=8, depth=3, packing=3, blocks=1)
    path = tmp_path / "last.pt"
    save_checkpoint(make_checkpoint(model, "unet", {"width": 8, "depth": 3, "packing": 3, "blocks": 1}, cfa="xtrans", step=1), path)

    def full(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(WriteError, match="disk is full"):
        save_checkpoint(make_checkpoint(model, "unet", {"width": 8, "depth": 3, "packing": 3, "blocks": 1}, cfa="xtrans", step=2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
