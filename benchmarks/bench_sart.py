"""SART against FBP on the same data, in one run (the machine is noisy: compare the ratios).

    .venv/bin/python benchmarks/bench_sart.py [--quick] [--json FILE]

Problems (random projections: the cost does not depend on the values):
  peer:     40 views of 256 x 256 -> 64 slices of 256 x 256 (the peer problem of FIELD-NOTES)
  clinical: 60 views of 1024 x 1024 -> 100 slices of 1024 x 1024
SART runs 4 iterations with the default subsets (two views each) and TV weight, and again without
TV; its model covers the user's range (the object range is not known for random data).

With --rtk-python PYTHON (an interpreter with itk-rtk, which volumedr never depends on), RTK's voxel
backprojection and one iteration of its SART run on the peer problem in the same run, between two
measurements of volumedr's, so every peer figure is a same-run ratio (benchmarks/peer_rtk.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from volumedr.progress import drive
from volumedr.reconstruct import Reconstructor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import problem  # noqa: E402  (the same problems as the FBP benchmark)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the peer problem only")
    ap.add_argument("--json")
    ap.add_argument("--rtk-python", help="a Python with itk-rtk, for RTK on the peer problem in the same run")
    a = ap.parse_args()
    p, geo, s = problem(40, 64, 8, 1.0)
    drive(Reconstructor(p, geo, replace(s, method="sart", iterations=1)).run())  # compile every kernel
    out = {}
    probs = [("peer", 40, 256, 64, 1.0)] + ([] if a.quick else [("clinical", 60, 1024, 100, 0.4)])
    for name, v, n, k, pitch in probs:
        p, geo, s = problem(v, n, k, pitch)
        fbp = min(timed(lambda: drive(Reconstructor(p, geo, s).run()))[0] for _ in range(2))
        t_sart, rec = timed(lambda: drive(Reconstructor(p, geo, replace(s, method="sart", iterations=4)).run()))
        t_notv, _ = timed(lambda: drive(Reconstructor(p, geo, replace(s, method="sart", iterations=4,
                                                                       tv_weight=0.0)).run()))
        if name == "peer" and a.rtk_python:
            r = subprocess.run([a.rtk_python, str(Path(__file__).with_name("peer_rtk.py")), "--views", str(v),
                                "--size", str(n), "--slices", str(k)], capture_output=True, text=True, check=True)
            rtk = json.loads(r.stdout.strip().splitlines()[-1])
            fbp = min(fbp, min(timed(lambda: drive(Reconstructor(p, geo, s).run()))[0] for _ in range(2)))
            out["rtk"] = rtk
            print(f"RTK, same run: voxel backprojection {rtk['backprojection_s']:.2f} s "
                  f"(volumedr's FBP, filter included, is {rtk['backprojection_s'] / fbp:.1f}x faster); one SART "
                  f"iteration {rtk['sart_1_s']:.2f} s (volumedr's 4 SART iterations: {t_sart:.2f} s, "
                  f"{rtk['sart_1_s'] / t_sart:.2f}x)", flush=True)
        out[name] = {"fbp_s": fbp, "sart4_s": t_sart, "sart4_no_tv_s": t_notv, "ratio": t_sart / fbp,
                     "ratio_no_tv": t_notv / fbp, "subsets": rec.parameters["subsets"],
                     "model_planes": rec.parameters["model_planes_mm"][2]}
        print(f"{name}: {v} x {n}^2 -> {k} slices: FBP {fbp:.2f} s; SART 4 iterations x {rec.parameters['subsets']} "
              f"subsets on {rec.parameters['model_planes_mm'][2]} planes {t_sart:.2f} s ({t_sart / fbp:.1f}x FBP), "
              f"without TV {t_notv:.2f} s ({t_notv / fbp:.1f}x)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
