"""Today's engine against an earlier commit's, in one run (the machine is noisy: only same-run ratios).

    .venv/bin/python benchmarks/bench_ab.py --baseline REV [--bench reconstruct|sart] [--rounds 2] [--quick]
                                            [--json FILE]

Checks REV out into a temporary git worktree and runs benchmarks/bench_reconstruct.py (or bench_sart.py;
this checkout's script, on the engine of each side through PYTHONPATH) alternately on the baseline and on this checkout,
``--rounds`` times each, then prints every figure's best on each side and their ratio (baseline / now:
above 1 means faster now).  The worktree is removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)):
            out[f"{prefix}{k}"] = float(v)
    return out


def run_side(src: Path, script: str, args: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    try:
        env = dict(os.environ, PYTHONPATH=str(src))
        subprocess.run([sys.executable, str(HERE / script), "--json", path, *args],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        return flat(json.loads(Path(path).read_text()))
    finally:
        os.unlink(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", required=True, help="the commit to compare against (e.g. the one before a change)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bench", choices=["reconstruct", "sart"], default="reconstruct")
    ap.add_argument("--quick", action="store_true", help="the script's --quick (no 2022² problem; SART: the peer only)")
    ap.add_argument("--json")
    a = ap.parse_args()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", a.baseline], check=True,
                         capture_output=True, text=True).stdout.strip()
    extra = ["--quick"] if a.quick else []
    script = f"bench_{a.bench}.py"
    if a.bench == "reconstruct":
        extra.append("--no-simulator")
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(wt), rev], check=True)
        try:
            sides = {"baseline": wt / "src", "now": ROOT / "src"}
            best: dict[str, dict[str, float]] = {k: {} for k in sides}
            for r in range(a.rounds):
                for name, src in sides.items():
                    print(f"round {r + 1}: {name}", flush=True)
                    for k, v in run_side(src, script, extra).items():
                        keep = max if k == "numpy_ratio.ratio" else min  # times (and time ratios): the least
                        best[name][k] = keep(best[name].get(k, v), v)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=False)
    print(f"\n{'figure':45s} {'baseline ' + rev:>16s} {'now':>10s} {'baseline/now':>13s}")
    for k in best["baseline"]:
        b, n = best["baseline"][k], best["now"].get(k)
        if n is None:
            continue
        print(f"{k:45s} {b:16.4g} {n:10.4g} {b / n if n else float('nan'):13.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"baseline": rev, **best}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
