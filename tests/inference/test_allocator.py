"""The allocator tuning: set where glibc allows it, harmless everywhere, and output-neutral."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from demosaic.allocator import keep_freed_memory


def test_keep_freed_memory_reports_what_it_did() -> None:
    ok = keep_freed_memory()
    if sys.platform.startswith("linux"):
        import platform

        if platform.libc_ver()[0] == "glibc":
            assert ok
    else:
        assert not ok


def test_keep_freed_memory_does_nothing_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False


def test_the_command_writes_the_same_file_with_and_without_it(tmp_path) -> None:
    """demosaic-infer tunes the allocator; the numbers it writes do not depend on it."""
    from demosaic import cfa as C
    from demosaic.sim.scenes import synthetic_scene
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_exr

    scene = synthetic_scene(120, 144, seed=2)
    dng = write_dng(tmp_path / "s.dng", C.mosaic(scene, C.XTRANS)[0], C.XTRANS.array,
                    black_level=512, white_level=16383)
    code = ("import sys; from demosaic.allocator import keep_freed_memory as k; "
            "from demosaic.inference.run import infer_file as f; "
            "(k() if sys.argv[3] == '1' else None); "
            "f(sys.argv[1], sys.argv[2], device='cpu', tile=48)")  # the shipped model, tiled
    for flag in ("0", "1"):
        subprocess.run([sys.executable, "-c", code, str(dng), str(tmp_path / f"o{flag}.exr"), flag],
                       check=True)
    assert np.array_equal(read_exr(tmp_path / "o0.exr")[0], read_exr(tmp_path / "o1.exr")[0])


def test_demosaic_infer_tunes_the_allocator(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import demosaic.cli.infer as cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "missing.raf"), str(tmp_path / "out.exr")])
    assert calls == [1]
