"""The comparison page in a real browser: headless Chromium (Debian's ``chromium``) loads it
from disk; the page's own self-test (``#selftest``) checks that every canvas is drawn, no
script error happened, that key 2 changes the blink view's picture and that the exposure
control changes the zoomed views, and writes its verdict into the DOM, which ``--dump-dom``
returns. Skipped where no Chromium is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from demosaic.cli.compare import main as compare_main

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no chromium on PATH (apt-get install chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
                           "--enable-logging=stderr", "--virtual-time-budget=10000", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, camera_dngs: list[Path]) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    raw = Path(shutil.copy2(camera_dngs[0], folder / camera_dngs[0].name))
    out = folder / "cmp.html"
    try:
        compare_main([str(raw), str(out), "--methods", "markesteijn1", "bilinear", "default",
                      "--crop-size", "32", "--device", "cpu"])
    except SystemExit as exc:
        assert not exc.code
    return out


def test_page_loads_without_errors_and_key_2_changes_the_blink_view(page):
    run = _chromium("--dump-dom", page.resolve().as_uri() + "#selftest")
    found = re.search(r'<pre id="selftest">([^<]*)</pre>', run.stdout)
    assert found and found.group(1), run.stdout[-2000:] + run.stderr[-2000:]
    verdict = json.loads(found.group(1))
    assert verdict["errors"] == []
    assert verdict["methods"] == 3
    crops = run.stdout.count('class="crop"')
    # per crop: 3 at 1:1, 3 zoomed, the blink view and the slider's two
    assert crops >= 1 and verdict["canvases"] == crops * 9 == verdict["drawn"]
    assert (verdict["blink_before"], verdict["blink_after"]) == ("0", "1")
    assert verdict["picture_changed"] is True and verdict["exposure_changed"] is True
    assert verdict["ok"] is True
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []


def test_page_renders_a_screenshot(page, tmp_path):
    shot = tmp_path / "shot.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1200,900", page.resolve().as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, run.stderr[-2000:]
    from PIL import Image

    assert Image.open(shot).size == (1200, 900)
