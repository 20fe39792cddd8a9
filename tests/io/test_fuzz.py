"""Bounded fuzz test: damaged raw files through ``demosaic-infer``.

Over 200 deterministic variants of two camera-realistic DNGs (X-Trans and Bayer; bit flips,
truncations, broken TIFF/DNG tags, zeroed and random blocks: tests/io/fuzz_cases.py) each end
with a valid output or with one error line that names the file; never a traceback, a hang or
a crash of the interpreter, and a failed case leaves no file behind.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_camera_dngs
from fuzz_cases import damaged_files

HERE = Path(__file__).resolve().parent
#: Per-case limit (s): a case past it counts as a hang (the slowest takes about 1 s here).
CASE_TIMEOUT = 30


def _run_worker(cases: list[Path], out: Path, results: Path) -> dict[str, dict]:
    """Run tests/io/fuzz_worker.py until every case has a line; a case whose run ended the
    process (hang or crash) is recorded as such and the worker restarts after it."""
    listing = results.with_suffix(".cases.json")
    listing.write_text(json.dumps([str(c) for c in cases]))
    for _ in range(len(cases)):
        proc = subprocess.run([sys.executable, str(HERE / "fuzz_worker.py"), str(listing),
                               str(out), str(results), str(CASE_TIMEOUT)],
                              capture_output=True, text=True, timeout=600)
        rows = [json.loads(line) for line in results.read_text().splitlines()]
        if proc.returncode == 0:
            break
        last = rows[-1]  # "started" and no result: this case ended the process
        with results.open("a") as fh:
            fh.write(json.dumps({"case": last["case"], "rc": None, "errors": [],
                                 "exception": f"process ended ({proc.returncode}): "
                                              f"{proc.stderr[-500:]}"}) + "\n")
    return {r["case"]: r for r in map(json.loads, results.read_text().splitlines()) if "rc" in r}


@pytest.mark.slow
def test_damaged_raw_files_end_in_an_output_or_one_clear_error(tmp_path):
    from demosaic.io.atomic import is_temporary
    from demosaic.io.images import read_exr

    sources = [*write_camera_dngs(tmp_path / "src", 1),
               *write_camera_dngs(tmp_path / "src", 1, family="bayer", size=(64, 80))]
    cases = damaged_files(sources, tmp_path / "cases")
    classes = collections.Counter(cls for _, cls in cases)
    assert len(cases) >= 200 and set(classes) == {"flip", "trunc", "tag", "zero", "junk"}
    out = tmp_path / "out"
    out.mkdir()
    results = _run_worker([p for p, _ in cases], out, tmp_path / "results.jsonl")

    problems = []
    outcome = collections.Counter()
    for path, cls in cases:
        r = results.get(str(path))
        written = out / (path.stem + ".exr")
        if r is None or r["rc"] not in (0, 2) or r["exception"]:
            problems.append(f"{path.name}: {r and (r['exception'] or r['rc'])}")
        elif r["rc"] == 0:
            rgb = read_exr(written)[0]
            if rgb.ndim != 3 or rgb.shape[0] != 3 or not np.isfinite(rgb).all():
                problems.append(f"{path.name}: invalid output {rgb.shape}")
        else:
            if len(r["errors"]) != 1 or path.name not in r["errors"][0] or "\n" in r["errors"][0]:
                problems.append(f"{path.name}: errors {r['errors']}")
            if written.exists():
                problems.append(f"{path.name}: failed but left {written.name}")
        outcome[(cls, r and r["rc"])] += 1
    assert not problems, problems[:10]
    assert not [p for p in out.iterdir() if is_temporary(p.name)]
    # The campaign exercises both ends: damaged files refused and survivable damage developed.
    assert outcome[("trunc", 2)] > 10 and outcome[("tag", 2)] > 10 and outcome[("tag", 0)] > 10
    for src in sources:  # the originals are untouched by the campaign
        assert src.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")
