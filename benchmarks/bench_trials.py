"""Virtual-trial throughput: runs per minute with 1 and 2 local Dask workers, and the overhead per task.

    .venv/bin/python benchmarks/bench_trials.py [--json FILE]

A small protocol grid (chest, 2 angles x 3 doses x 2 seeds at --bin 8 by default) is run serially in
this process, then on a LocalCluster of 1 and of 2 workers, each into a fresh results file, in one
process one after the other (the machine is shared and noisy: read the ratios).  The overhead per task
is (wall time on one worker - the sum of the runs' own times) / runs: scheduling, pickling the rows,
the journal and the output rewrite.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv=None):
    from volumedr.trials.engine import read_results, run_trial
    from volumedr.trials.spec import make_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    spec = make_spec({"cases": ["chest"], "angle": [15, 30], "mas": [2, 10, 20], "seeds": 2, "bin": [8]})
    out = {"runs": spec.n_runs}
    with tempfile.TemporaryDirectory() as d:
        run_trial(make_spec({"cases": ["chest"], "bin": [8]}), Path(d) / "warm.csv", scheduler="none")  # compile
        for label, sched, n in (("serial", "none", None), ("1 worker", "local", 1), ("2 workers", "local", 2)):
            t = time.perf_counter()
            path = Path(d) / f"{label.replace(' ', '_')}.csv"
            res = run_trial(spec, path, scheduler=sched, n_workers=n)
            wall = time.perf_counter() - t
            own = sum({r["run_id"]: r["seconds"] for r in read_results(path)}.values())
            out[label] = {"wall_s": round(wall, 1), "runs_per_min": round(60 * res["ran"] / wall, 1),
                          "mean_run_s": round(own / res["ran"], 2),
                          "overhead_per_task_s": round((wall * (n or 1) - own) / res["ran"], 2)}
            print(f"{label:9s}: {res['ran']} runs in {wall:.1f} s = {out[label]['runs_per_min']} runs/min; "
                  f"a run's own time {out[label]['mean_run_s']} s, overhead per task "
                  f"{out[label]['overhead_per_task_s']} s (worker-seconds)")
    s1, s2 = out["1 worker"]["runs_per_min"], out["2 workers"]["runs_per_min"]
    print(f"scaling 1 -> 2 workers: {s2 / s1:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
