"""Run many ``volumedr`` command lines in one process, as the console script would run each.

    python cli_driver.py CASES.json RESULTS.json

CASES.json is a list of {"argv": [...], "cwd": "..."}.  For each case this
prints ``CASE i`` (flushed) to stdout first, so that a crash or a hang of the
process names the case, then runs ``volumedr.cli.main.main(argv)`` with its
stdout and stderr captured.  An exception escaping ``main`` is what a user
would see as a traceback; it is recorded as such.  RESULTS.json gets one
{"rc", "stdout", "stderr", "traceback"} per case.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
import warnings


def main() -> int:
    cases_path, results_path = sys.argv[1], sys.argv[2]
    with open(cases_path) as fh:
        cases = json.load(fh)
    from volumedr.cli.main import main as volumedr_main

    results = []
    for i, case in enumerate(cases):
        print(f"CASE {i}", flush=True)
        out, err = io.StringIO(), io.StringIO()
        tb = None
        os.chdir(case["cwd"])
        saved = warnings.showwarning
        # the interpreter's default warning filters, as for the console script (catch_warnings
        # restores them after each case, which also resets the once-per-location registries)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            try:
                rc = volumedr_main(case["argv"])
            except SystemExit as exc:  # what the console script does with sys.exit
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - a traceback is what this driver looks for
                rc, tb = 1, traceback.format_exc()
        warnings.showwarning = saved
        results.append({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(), "traceback": tb})
    with open(results_path, "w") as fh:
        json.dump(results, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
