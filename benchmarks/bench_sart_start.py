"""What SART's start would cost with its scale fitted on every view, against one SART iteration, in one run.

    .venv/bin/python benchmarks/bench_sart_start.py [--quick] [--rounds 3]

The FBP start is scaled by a least-squares fit; SART fits it on the first subset's views, from the forward
projection the first update needs anyway (free).  This script times the fit on every view (a forward
projection of all of them through the model, what the start cost before) and one full SART iteration
(every subset and the TV step), alternately, on problem 2 of bench_sart.py (60 x 1024² -> 100 planes;
--quick: the peer problem), so the saving is a same-run ratio.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from volumedr.progress import drive
from volumedr.reconstruct import Reconstructor
from volumedr.reconstruct.engine import plane_coefficients
from volumedr.reconstruct.iterative import Sart

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import problem  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    p, geo, s = problem(40, 256, 64, 1.0) if a.quick else problem(60, 1024, 100, 0.4)
    r = Reconstructor(p, geo, replace(s, method="sart", iterations=1))
    hm = r.model_heights_mm
    mg, _ = r._model_grid()
    coeffs = plane_coefficients(geo, mg, hm[:, None])
    x = np.random.default_rng(0).random((len(hm),) + mg.shape, dtype=np.float32)

    def sart():
        return Sart(p, coeffs, mg.shape, hm, iterations=1, subsets=r.subsets, relaxation=s.relaxation,
                    tv_weight=s.tv_weight)

    sart().fit_scale(x, [0])  # compile
    for _ in range(a.rounds):
        t = time.perf_counter()
        sart().fit_scale(x)
        fit = time.perf_counter() - t
        y = x.copy()
        t = time.perf_counter()
        drive(sart().run(y))
        it = time.perf_counter() - t
        print(f"{len(hm)} planes of {mg.shape[0]} x {mg.shape[1]}, {geo.n_views} views: fit on every view {fit:.2f} s, "
              f"one SART iteration ({r.subsets} subsets + TV) {it:.2f} s, fit / iteration {fit / it:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
