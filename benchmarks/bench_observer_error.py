"""Is the model observer's standard error honest?  The spread of d' over noise seeds against its error.

    .venv/bin/python benchmarks/bench_observer_error.py [SEEDS]     (default 60; ~0.4 s a seed)

A uniform soft-tissue block whose "finding" is made of soft tissue (no signal, tests/test_trials.py's
blank) is simulated and read at 2 mAs with SEEDS noise seeds; for the slice and the film it prints the
mean d' (0 without a signal), its standard deviation over the seeds, and the mean bootstrap standard
error of one run.  An honest error makes the last two agree (docs/trials.md gives the figures).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_trials import uniform_case  # noqa: E402

from volumedr.trials.engine import read_results, run_trial  # noqa: E402
from volumedr.trials.spec import make_spec  # noqa: E402


def main(seeds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        blank = uniform_case(Path(d), "soft_tissue", name="blank")
        out = Path(d) / "q.csv"
        run_trial(make_spec({"cases": [blank], "mas": [2.0], "bin": [4], "seeds": seeds}), out, scheduler="none")
        rows = read_results(out)
    for m in ("dprime_slice", "dprime_film"):
        v = np.array([r[m] for r in rows])
        se = np.array([r[m + "_se"] for r in rows])
        print(f"{m:13s} mean {v.mean():+.3f}  spread over {len(v)} seeds {v.std(ddof=1):.3f}  "
              f"mean standard error {se.mean():.3f}  ratio {v.std(ddof=1) / se.mean():.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
