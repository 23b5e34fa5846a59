"""RTK (itk-rtk from PyPI, C++, CPU) on the peer problem, for the same-run comparisons of bench_sart.py.

Run with an interpreter that has itk-rtk (never a volumedr dependency), e.g.
    python3 -m venv /tmp/rtk && /tmp/rtk/bin/pip install itk-rtk numpy
    /tmp/rtk/bin/python benchmarks/peer_rtk.py --views 40 --size 256 --slices 64 --sart-iterations 1
Prints one JSON line: {"backprojection_s": ..., "sart_1_s": ...} (best of --repeat).

Geometry: the tomosynthesis sweep as RTK's general per-view form (source position, detector
position and its row/column vectors): a linear sweep of +-21 deg at 1000 mm above a stationary
256 x 256 detector of 1 mm pixels; the volume is 256 x 256 in-plane at 1 mm and --slices planes
1 mm apart from 10 mm up.
"""
from __future__ import annotations

import argparse
import json
import time

import itk
import numpy as np
from itk import RTK as rtk


def geometry(n_views, sid=1000.0, half_angle_deg=21.0):
    g = rtk.ThreeDCircularProjectionGeometry.New()
    for a in np.linspace(-half_angle_deg, half_angle_deg, n_views):
        x = sid * np.tan(np.deg2rad(a))
        # RTK's frame: the detector plane is our z = 0 plane; the source above it at height sid
        g.AddProjection(itk.Point[itk.D, 3]([x, 0.0, sid]), itk.Point[itk.D, 3]([0.0, 0.0, 0.0]),
                        itk.Vector[itk.D, 3]([1.0, 0.0, 0.0]), itk.Vector[itk.D, 3]([0.0, 1.0, 0.0]))
    return g


def image(shape_zyx, spacing, origin, value=None, rng=None):
    a = rng.random(shape_zyx, dtype=np.float32) if value is None else np.full(shape_zyx, value, np.float32)
    img = itk.image_from_array(a)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--views", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--slices", type=int, default=64)
    ap.add_argument("--sart-iterations", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    itk.MultiThreaderBase.SetGlobalDefaultNumberOfThreads(2)
    rng = np.random.default_rng(0)
    n = a.size
    half = (n - 1) / 2.0
    proj = image((a.views, n, n), [1.0, 1.0, 1.0], [-half, -half, 0.0], rng=rng)  # (view, row, col) stack
    vol_origin = [-half, -half, 10.0]
    g = geometry(a.views)

    def backprojection():
        vol = image((a.slices, n, n), [1.0, 1.0, 1.0], vol_origin, value=0.0)
        bp = rtk.BackProjectionImageFilter[type(vol), type(vol)].New()
        bp.SetInput(0, vol)
        bp.SetInput(1, proj)
        bp.SetGeometry(g)
        bp.Update()
        return bp.GetOutput()

    def sart():
        vol = image((a.slices, n, n), [1.0, 1.0, 1.0], vol_origin, value=0.0)
        f = rtk.SARTConeBeamReconstructionFilter[type(vol), type(vol)].New()
        f.SetInput(0, vol)
        f.SetInput(1, proj)
        f.SetGeometry(g)
        f.SetNumberOfIterations(a.sart_iterations)
        f.SetLambda(0.3)
        f.Update()
        return f.GetOutput()

    out = {}
    for name, fn in (("backprojection_s", backprojection), ("sart_%d_s" % a.sart_iterations, sart)):
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = min(times)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
