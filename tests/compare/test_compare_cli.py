"""``demosaic-compare`` end to end on small camera-realistic DNGs, and its errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from demosaic.cli.compare import main as compare_main


def run_compare(*args: str | Path) -> int:
    try:
        return compare_main([*map(str, args), "--device", "cpu"]) or 0
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.fixture
def dngs(tmp_path: Path, camera_dngs: list[Path]) -> list[Path]:
    folder = tmp_path / "raws"
    folder.mkdir()
    return [Path(shutil.copy2(p, folder / p.name)) for p in camera_dngs[:2]]


def test_cli_end_to_end_writes_the_page_and_the_sheet(tmp_path, dngs):
    out = tmp_path / "out" / "cmp.html"
    assert run_compare(*dngs, out, "--methods", "default", "markesteijn3", "markesteijn1",
                       "--crops", "auto", "0,0,24,24", "--crop-size", "32",
                       "--exposure", "0.5") == 0
    page = out.read_text(encoding="utf-8")
    for name in ("default", "markesteijn3", "markesteijn1", dngs[0].name, dngs[1].name):
        assert name in page
    assert "http://" not in page and "https://" not in page
    assert page.count("class='crop'") >= 2 * 2
    assert "x 0, y 0, 24x24 px (yours)" in page
    assert (tmp_path / "out" / "cmp.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cmp.html", "cmp.png"]


def test_cli_takes_a_folder(tmp_path, dngs):
    out = tmp_path / "f.html"
    assert run_compare(dngs[0].parent, out, "--methods", "bilinear", "--crop-size", "32") == 0
    assert all(p.name in out.read_text() for p in dngs)


@pytest.mark.parametrize("args, message", [
    (["--methods", "default", "magic"], "unknown method 'magic'"),
    (["--methods", "ckpt:/no/such.pt"], "ckpt:/no/such.pt"),
    (["--crops", "1,2,3"], "crop '1,2,3'"),
    (["--crops", "0,0,500,500", "--methods", "bilinear"], "leaves the 96x72"),
])
def test_bad_method_or_crop_is_one_clear_error_and_no_output(tmp_path, dngs, caplog, args,
                                                             message):
    out = tmp_path / "out"
    with caplog.at_level(logging.ERROR):
        assert run_compare(dngs[0], out / "cmp.html", *args) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0], errors
    assert not out.exists() or not list(out.iterdir())


def test_a_missing_file_is_named_and_nothing_is_written(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert run_compare(tmp_path / "nope.raf", tmp_path / "cmp.html") == 2
    assert "nope.raf" in caplog.text
    assert not (tmp_path / "cmp.html").exists()


def test_the_contact_sheet_may_not_replace_an_input(tmp_path, dngs, caplog):
    """OUT.html writes OUT.png beside it: a raw file of that name is refused before any work."""
    raw = Path(shutil.copy2(dngs[0], tmp_path / "cmp.png"))
    before = raw.read_bytes()
    with caplog.at_level(logging.ERROR):
        assert run_compare(raw, tmp_path / "cmp.html", "--methods", "bilinear") == 2
    assert "cmp.png" in caplog.text
    assert raw.read_bytes() == before and not (tmp_path / "cmp.html").exists()



def test_cli_on_a_bayer_file(tmp_path):
    """Bayer too: LibRaw's AHD and VNG and the packaged Bayer model, one page."""
    import numpy as np

    from demosaic.sim.raw_files import write_camera_raw

    rng = np.random.default_rng(3)
    scene = np.repeat(np.repeat(rng.random((3, 12, 16), dtype=np.float32), 8, 1), 8, 2)
    raw, _ = write_camera_raw(tmp_path / "bayer.dng", scene, "bayer_rggb")
    out = tmp_path / "b.html"
    assert run_compare(raw, out, "--methods", "markesteijn3", "vng", "default",
                       "--crop-size", "32") == 0
    page = out.read_text()
    assert "unet from default_bayer.pt" in page and "LibRaw VNG" in page
