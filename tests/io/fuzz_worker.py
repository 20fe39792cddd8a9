"""Runs damaged raw files through ``demosaic-infer``'s entry point, one after the other in one
process, and appends one JSON line per case to a results file (tests/io/test_fuzz.py).

Usage: ``python tests/io/fuzz_worker.py CASES.json OUT_DIR RESULTS.jsonl TIMEOUT_S``

Each line: ``{"case", "rc", "errors": [ERROR log lines], "exception": null or the type and
message of an exception that escaped the entry point, "seconds"}``. A case that runs past
``TIMEOUT_S`` ends the process with a traceback dump (faulthandler), and a crash of the
interpreter ends it too: the parent sees fewer lines than cases and names the case.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import sys
import time
from pathlib import Path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main() -> None:
    cases_file, out_dir, results_file, timeout = sys.argv[1:]
    from demosaic.cli.infer import main as infer_main

    cases = json.loads(Path(cases_file).read_text())
    done = {json.loads(line)["case"] for line in Path(results_file).read_text().splitlines()} \
        if Path(results_file).exists() else set()
    collect = _Collect()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().addHandler(collect)
    with open(results_file, "a") as results:
        for case in cases:
            if case in done:
                continue
            results.write(json.dumps({"case": case, "started": True}) + "\n")
            results.flush()
            collect.lines = []
            out = Path(out_dir) / (Path(case).stem + ".exr")
            faulthandler.dump_traceback_later(float(timeout), exit=True)
            t0 = time.perf_counter()
            rc, exception = 0, None
            try:
                rc = infer_main([case, str(out), "--no-progress", "--device", "cpu"]) or 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - what the test is looking for
                rc, exception = 1, f"{type(exc).__name__}: {exc}"
            faulthandler.cancel_dump_traceback_later()
            results.write(json.dumps({"case": case, "rc": rc, "errors": collect.lines,
                                      "exception": exception,
                                      "seconds": time.perf_counter() - t0}) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
