"""Where SART's time goes: every kernel call timed on the clinical problem (or the peer problem).

    .venv/bin/python benchmarks/profile_sart.py [--quick] [--iterations 4]

Runs one FBP and one SART (default settings, 4 iterations) of bench_sart.py's problem with each numba
kernel wrapped in a timer, and prints the time, calls and time per call of each, and what is left
(Python, NumPy).  One run on a noisy machine: use it to find the biggest cost, then measure a change with
bench_ab.py.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from dataclasses import replace
from pathlib import Path

from volumedr.progress import drive
from volumedr.reconstruct import Reconstructor
from volumedr.reconstruct._kernels import backproject as K
from volumedr.reconstruct._kernels import sart as S

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import problem  # noqa: E402

KERNELS = {K: ("forward_project", "sart_update", "sart_update_project", "forward_project_ones", "backproject",
               "coverage_tapered"),
           S: ("tv_gradient", "descend", "normalised_residual", "diff_sum_squares", "copy_volume", "resample")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the peer problem (40 x 256² -> 64 slices)")
    ap.add_argument("--iterations", type=int, default=4)
    a = ap.parse_args()
    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()

    def timed(name, fn):
        def wrapper(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[name] += time.perf_counter() - t
                calls[name] += 1
        return wrapper

    for mod, names in KERNELS.items():
        for name in names:
            setattr(mod, name, timed(name, getattr(mod, name)))
    p, geo, s = problem(40, 256, 64, 1.0) if a.quick else problem(60, 1024, 100, 0.4)
    drive(Reconstructor(p, geo, replace(s, method="sart", iterations=1)).run())  # compile
    for method in ("fbp", "sart"):
        spent.clear()
        calls.clear()
        t = time.perf_counter()
        drive(Reconstructor(p, geo, replace(s, method=method, iterations=a.iterations)).run())
        total = time.perf_counter() - t
        print(f"{method.upper()}: {total:.2f} s")
        for name, sec in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {name:22s} {sec:7.2f} s {calls[name]:5d} calls {sec / calls[name] * 1e3:8.1f} ms a call")
        print(f"  {'the rest':22s} {total - sum(spent.values()):7.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
