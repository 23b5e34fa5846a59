"""What metal artefact reduction costs on top of the reconstruction it wraps (issue 13: at most 1.5x more).

    .venv/bin/python benchmarks/bench_mar.py [--repeat 3] [--json FILE]

For each arthroplasty case (simulated at the evidence panel, as the tests measure it) and for FBP and SART,
the best of ``--repeat`` runs with and without MAR, in the same process, interleaved (the machine is shared
and noisy: read the ratios).  The MAR stages are timed apart from the first MAR run's progress.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import best_of  # noqa: E402


def main(argv=None):
    from volumedr.evidence import evidence_detector
    from volumedr.phantoms.case import load_case
    from volumedr.progress import drive
    from volumedr.reconstruct import ReconSettings, Reconstructor
    from volumedr.simulate import simulate_study

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--methods", default="fbp,sart", help="comma-separated (default fbp,sart)")
    ap.add_argument("--cases", default="hip,knee", help="comma-separated (default hip,knee)")
    a = ap.parse_args(argv)
    rows = []
    for name in a.cases.split(","):
        case = load_case(name)
        det = evidence_detector(case)
        st = simulate_study(case, detector=det, rng=1, ct=False, plain_film=False)
        rng = st.metadata["object_height_range_mm"]
        for method in a.methods.split(","):
            s = replace(ReconSettings.from_case(case.reconstruction), method=method)

            def run(mar, s=s):
                r = Reconstructor(st.projections, st.geometry, replace(s, mar=mar), object_range_mm=rng)
                drive(r.run())
                return r

            run(True)  # compile and warm
            stages = {}
            r = Reconstructor(st.projections, st.geometry, replace(s, mar=True), object_range_mm=rng)
            last = [time.perf_counter(), None]

            def on_progress(p):
                now = time.perf_counter()
                stages[p.stage] = stages.get(p.stage, 0.0) + now - last[0]
                last[0] = now

            drive(r.run(), on_progress=on_progress)
            # interleaved (plain, MAR, plain, MAR, ...), the best of each: a burst of load on this shared machine
            # then hits both alike instead of one block of runs
            plain, with_mar = float("inf"), float("inf")
            for _ in range(a.repeat):
                plain = min(plain, best_of(lambda: run(False), 1))
                with_mar = min(with_mar, best_of(lambda: run(True), 1))
            row = {"case": name, "method": method, "views": st.geometry.n_views, "detector": list(det.shape),
                   "slices": len(r.heights_mm), "grid": list(r.grid.shape), "plain_s": round(plain, 3),
                   "mar_s": round(with_mar, 3), "added_x": round(with_mar / plain - 1.0, 2),
                   "metal": r.mar_summary.as_dict(),
                   "stages_s": {k: round(v, 3) for k, v in stages.items() if k.startswith("MAR")}}
            rows.append(row)
            print(f"{name:5s} {method:4s} {row['detector']} -> {row['slices']} x {row['grid']}: plain {plain:.2f} s, "
                  f"with MAR {with_mar:.2f} s (adds {row['added_x']:.2f}x); stages {row['stages_s']}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
