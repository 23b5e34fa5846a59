"""Benchmarks of the reconstruction engine and the simulator (run on demand, not in the tests).

    .venv/bin/python benchmarks/bench_reconstruct.py [--quick] [--json out.json]

Each figure is the best of a few runs (the machine is shared and noisy);
inputs are float32 in memory.  Reconstruction cost does not depend on the
pixel values, so the speed cases use random projections with the geometry of
the issue (linear sweep +-21 deg, 1 m SID); correctness is the tests' job.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def problem(n_views, n, n_slices, pitch):
    from volumedr.geometry import Detector, Sweep
    from volumedr.reconstruct import ReconSettings

    det = Detector(rows=n, cols=n, pitch_row_mm=pitch, pitch_col_mm=pitch)
    geo = Sweep(kind="linear", total_angle_deg=42, n_projections=n_views, source_to_image_mm=1000,
                pivot_height_mm=0, direction="x").geometry(det)
    p = np.random.default_rng(0).random((n_views, n, n), dtype=np.float32)
    return p, geo, ReconSettings(method="fbp", spacing_mm=1.0, thickness_mm=1.0, z_min_mm=10,
                                 z_max_mm=10 + n_slices - 1)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def full_fbp(n_views, n, n_slices, pitch, repeat=3):
    from volumedr.progress import drive
    from volumedr.reconstruct import Reconstructor

    p, geo, s = problem(n_views, n, n_slices, pitch)
    drive(Reconstructor(p[:, :64, :64], geo.__class__(geo.detector.__class__(rows=64, cols=64), geo.source_positions_mm),
                        s).run())  # compile
    res = {}

    def run():
        r = Reconstructor(p, geo, s)
        t = time.perf_counter()
        drive(r.prepare())
        res["filter"] = min(res.get("filter", 1e9), time.perf_counter() - t)
        t = time.perf_counter()
        drive(r.run())
        res["backproject"] = min(res.get("backproject", 1e9), time.perf_counter() - t)
        return r

    total = best_of(run, repeat)
    return total, res


def single_slice(repeat=10):
    from volumedr.progress import drive
    from volumedr.reconstruct import Reconstructor

    p, geo, s = problem(60, 1024, 1, 0.4)
    r = Reconstructor(p, geo, s)
    drive(r.prepare())
    r.slice_at(50.0)
    return best_of(lambda: r.slice_at(50.0 + np.random.rand()), repeat)


def numpy_ratio():
    from volumedr.reconstruct import Reconstructor
    from volumedr.reconstruct._kernels import backproject as K
    from volumedr.reconstruct.engine import plane_coefficients
    from volumedr.reconstruct.reference import backproject_numpy

    p, geo, s = problem(40, 256, 64, 1.0)
    r = Reconstructor(p, geo, s)
    f = r.filtered_projections
    coeffs = plane_coefficients(geo, r.grid, r.heights_mm[:, None])
    out = np.empty((64, 256, 256), np.float32)
    K.backproject(f, *coeffs, np.float32(1 / 40), out)
    t_nb = best_of(lambda: K.backproject(f, *coeffs, np.float32(1 / 40), out), 5)
    t_np = best_of(lambda: backproject_numpy(f, *coeffs, 1 / 40, out.shape), 1)
    return t_nb, t_np


COLD = r"""
import time, numpy as np
t0 = time.perf_counter()
from volumedr.geometry import Detector, Sweep
from volumedr.reconstruct import Reconstructor, ReconSettings
from volumedr.progress import drive
det = Detector(rows=256, cols=256, pitch_row_mm=1.0, pitch_col_mm=1.0)
geo = Sweep(total_angle_deg=42, n_projections=40, source_to_image_mm=1000, pivot_height_mm=0, direction="x").geometry(det)
p = np.random.default_rng(0).random((40, 256, 256), dtype=np.float32)
t1 = time.perf_counter()
drive(Reconstructor(p, geo, ReconSettings(z_min_mm=10, z_max_mm=73)).run())
print(time.perf_counter() - t1)
"""


def cold_start():
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        cold = float(subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                                    check=True).stdout)
        warm = float(subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    return cold, warm


CLINICAL = r"""
import resource, sys, time, numpy as np, h5py, os
from volumedr.geometry import Detector, Sweep
from volumedr.reconstruct import Reconstructor, ReconSettings
from volumedr.progress import drive
from volumedr.io.study_file import ReconstructionWriter
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) * 1024
det = Detector(rows=2022, cols=2022, pitch_row_mm=0.2, pitch_col_mm=0.2)
geo = Sweep(total_angle_deg=42, n_projections=60, source_to_image_mm=1000, pivot_height_mm=0, direction="x").geometry(det)
# warm the kernels on a small problem first
small = Detector(rows=64, cols=64)
g2 = Sweep(total_angle_deg=42, n_projections=60, source_to_image_mm=1000, pivot_height_mm=0, direction="x").geometry(small)
drive(Reconstructor(np.zeros((60, 64, 64), np.float32), g2, ReconSettings(z_min_mm=10, z_max_mm=20)).run())
p = np.random.default_rng(0).random((60, 2022, 2022), dtype=np.float32)
path = sys.argv[1]
with h5py.File(path, 'w') as f:
    f.attrs['format'] = 'volumedr-study'; f.attrs['format_version'] = 1
base = rss()
t = time.perf_counter()
r = Reconstructor(p, geo, ReconSettings(z_min_mm=10, z_max_mm=69))
w = ReconstructionWriter(path, shape=(60,) + r.grid.shape, heights_mm=r.heights_mm, pixel_spacing_mm=r.grid.pixel_spacing_mm,
                         origin_mm=r.grid.origin_mm, thickness_mm=1.0, method='fbp', parameters={})
drive(r.run(emit=w.write))
w.commit()
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(dt, p.nbytes, base, peak)
"""


def clinical():
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", CLINICAL, os.path.join(d, "c.h5")], capture_output=True,
                             text=True, check=True).stdout.split()
    dt, nbytes, base, peak = float(out[0]), int(out[1]), int(out[2]), int(out[3])
    return dt, nbytes, peak - base


def simulator(bin_factor=2):
    from volumedr.geometry import Detector
    from volumedr.simulate import simulate_study

    t = time.perf_counter()
    simulate_study("chest", detector=Detector().binned(bin_factor), rng=0, ct=False, plain_film=False)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the clinical-size and simulator runs")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--no-simulator", action="store_true", help="skip the simulator run (bench_ab.py)")
    a = ap.parse_args()
    R = {}
    t, parts = full_fbp(40, 256, 64, 1.0, repeat=5)
    R["fbp_40x256_to_64"] = {"total_s": t, **parts}
    print(f"1. 40 x 256^2 -> 64 x 256^2 FBP: {t:.3f} s (filter {parts['filter']:.3f}, backproject {parts['backproject']:.3f})")
    t_nb, t_np = numpy_ratio()
    R["numpy_ratio"] = {"numba_s": t_nb, "numpy_s": t_np, "ratio": t_np / t_nb}
    print(f"   same backprojection in plain NumPy: {t_np:.2f} s vs numba {t_nb:.3f} s -> {t_np / t_nb:.0f}x")
    t, parts = full_fbp(60, 1024, 100, 0.4, repeat=2)
    R["fbp_60x1024_to_100"] = {"total_s": t, **parts}
    print(f"2. 60 x 1024^2 -> 100 x 1024^2 FBP: {t:.2f} s (filter {parts['filter']:.2f}, backproject {parts['backproject']:.2f})")
    t = single_slice()
    R["single_slice_1024_ms"] = t * 1000
    print(f"4. one 1024^2 slice on demand from 60 views: {t * 1000:.1f} ms")
    cold, warm = cold_start()
    R["cold_start"] = {"no_cache_s": cold, "with_cache_s": warm}
    print(f"   first reconstruction in a new process (40 x 256^2 -> 64): {cold:.2f} s without the numba cache, "
          f"{warm:.2f} s with it")
    if not a.quick:
        dt, nbytes, extra = clinical()
        R["clinical_60x2022_to_60"] = {"total_s": dt, "input_gb": nbytes / 1e9, "peak_above_input_gb": extra / 1e9}
        print(f"3. 60 x 2022^2 -> 60 x 2022^2 FBP streamed to HDF5: {dt:.1f} s; peak memory "
              f"{extra / 1e9:.2f} GB above the {nbytes / 1e9:.2f} GB of projections")
    if not a.quick and not a.no_simulator:
        ts = simulator(2)
        R["simulate_chest_60x1024"] = ts
        print(f"   simulator: default chest case, 60 projections of 1024 x 1024 (plus no CT): {ts:.1f} s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(R, fh, indent=2)


if __name__ == "__main__":
    main()
