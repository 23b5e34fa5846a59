"""The voxel projector (simulating from real CT anatomy): seconds per view on the default chest's volume.

Uses only ``VoxelVolume`` and ``VoxelLengths(volume)``, so the same script times an older volumedr too (A/B
in one run; the machine is noisy, compare the ratio):

    .venv/bin/python benchmarks/bench_voxel.py
    git worktree add /tmp/old <rev> && PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/bench_voxel.py
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from volumedr.geometry import Detector, Sweep
from volumedr.phantoms.volume import VoxelVolume
from volumedr.simulate.voxel import VoxelLengths

VOLUME = Path(__file__).resolve().parents[1] / "phantoms" / "chest.npz"


def main(path=VOLUME, repeats=3, views=20):
    with np.load(path) as z:
        vol = VoxelVolume(hu=z["hu"].astype(np.float32), spacing_mm=tuple(z["spacing_mm"]),
                          origin_mm=tuple(z["origin_mm"]), effective_energy_kev=70.0)
    t = time.perf_counter()
    lengths = VoxelLengths(vol)
    setup = time.perf_counter() - t
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=60, source_to_image_mm=1800, pivot_height_mm=100,
                  direction="y")
    out = {"volume": list(vol.hu.shape), "setup_s": setup}
    for b in (8, 4, 2):
        g = sweep.geometry(Detector().binned(b))
        lengths(g, 0)  # compile, upsampling tables
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            for v in range(views):
                lengths(g, v)
            best = min(best, (time.perf_counter() - t) / views)
        out[f"{g.detector.rows}x{g.detector.cols}_s_per_view"] = best
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(*(sys.argv[1:2] or [VOLUME]))
