"""Compile every numba kernel once, on tiny problems, so that numba's cache holds them.

    python -m volumedr.warmup

``scripts/dev.sh`` runs it after installing: numba compiles a kernel on its first call and holds
Python's global lock meanwhile (a few seconds per kernel), which would freeze the window the first
time a user acquires or reconstructs.  With the cache filled (``cache=True``), later processes load
the compiled kernels in milliseconds.
"""
from __future__ import annotations

import sys
import time
import warnings


def compile_kernels() -> float:
    """Run the simulator (analytic and voxel cases), FBP, SAA and SART once on small problems; seconds."""
    from .errors import VolumedrWarning
    from .geometry import Detector, Sweep
    from .phantoms.case import case_names, load_case
    from .reconstruct import ReconSettings, reconstruct
    from .simulate import simulate_study

    t0 = time.perf_counter()
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800, pivot_height_mm=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VolumedrWarning)
        names = [n for n in ("chest", "chest_phantom") if n in case_names()]  # voxels with objects; primitives
        for name in names:
            study = simulate_study(load_case(name), sweep=sweep, detector=Detector().binned(32), rng=0, ct=True)
        for method in ("fbp", "saa", "sart"):
            reconstruct(study.projections, study.geometry,
                        ReconSettings(method=method, spacing_mm=20, z_min_mm=20, z_max_mm=200, iterations=1))
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"volumedr: numba kernels compiled and cached in {compile_kernels():.1f} s", file=sys.stderr)
