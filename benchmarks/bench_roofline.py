"""Where the backprojection kernel stands against this machine's limits (one run).

    .venv/bin/python benchmarks/bench_roofline.py

Measures, in the same process: memory bandwidth (a numba triad over 512 MiB, 2 threads), the
backprojection kernel's time per voxel-view at 1024² from 60 views, and the bytes and flops it
needs per voxel-view, and prints the ratios (docs/benchmarks.md, "Roofline").
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import best_of  # noqa: E402  (one timing helper for the benchmarks)

from volumedr.geometry import Detector, Sweep
from volumedr.reconstruct import SliceGrid, plane_coefficients
from volumedr.reconstruct._kernels import backproject as K


@njit(parallel=True, fastmath=True, cache=True)
def triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


def bandwidth() -> float:
    """Bytes per second of a triad a = b + s c over three 256 MiB arrays."""
    n = 64 * 2**20
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    triad(a, b, c, np.float32(2.0))
    return 3 * a.nbytes / best_of(lambda: triad(a, b, c, np.float32(2.0)), 3)


def main():
    bw = bandwidth()
    print(f"memory bandwidth (triad, 2 threads): {bw / 1e9:.1f} GB/s")

    V, N, S = 60, 1024, 16
    det = Detector(rows=N, cols=N, pitch_row_mm=0.4, pitch_col_mm=0.4)
    geo = Sweep(kind="linear", total_angle_deg=30, n_projections=V, source_to_image_mm=1800,
                pivot_height_mm=100).geometry(det)
    proj = np.random.default_rng(0).random((V, N, N), dtype=np.float32)
    grid = SliceGrid.default(geo, 100.0, (N, N))
    heights = np.linspace(80, 120, S)[:, None]
    coeffs = plane_coefficients(geo, grid, heights)
    out = np.empty((S, N, N), np.float32)
    K.backproject(proj, *coeffs, np.float32(1.0 / V), out)
    t = best_of(lambda: K.backproject(proj, *coeffs, np.float32(1.0 / V), out), 3)
    vv = S * N * N * V
    ns = t / vv * 1e9
    # per voxel-view: a row blend of two detector samples per detector column (amortised over the
    # slice row: C values for nx voxels, 2 loads + 1 store + 3 flops each) and a gather (2 loads of the
    # blended row, 4 flops) -> about 20 bytes of L1/L2 traffic and 7 flops per voxel-view
    print(f"backprojection {S} x {N}² from {V} views: {t:.2f} s = {ns:.3f} ns per voxel-view (2 threads)")
    dram = proj.nbytes * S / t  # each slice sweeps the whole projection stack once
    print(f"projection stack streamed per slice: {dram / 1e9:.1f} GB/s effective = {dram / bw:.2f} of the bandwidth")
    print(f"flops: {7 / ns:.1f} GFLOP/s at about 7 flops per voxel-view")


if __name__ == "__main__":
    main()
