"""What safe study files cost, measured side by side in one run (the machine is noisy: compare ratios).

    .venv/bin/python benchmarks/bench_study_file.py [--views 60] [--size 1024] [--json FILE]

1. Writing and reading a study of V x N x N projections: volumedr's writer (HDF5 1.10 object headers
   with metadata checksums, Fletcher-32 on every dataset) against the same layout written the way
   volumedr 0.1 did (no checksums).
2. Re-reconstructing in place five times: the rewrite (copy the study beside itself, stream the
   slices, rename) against volumedr 0.1's in-place replacement of /reconstruction, for time and for
   the file's size afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reconstruct import best_of  # noqa: E402  (one timing helper for the benchmarks)

from volumedr.geometry import Detector, Sweep
from volumedr.io.study_file import ReconstructionWriter, read_study, write_study
from volumedr.reconstruct import Reconstructor, ReconSettings
from volumedr.study import Study


def write_old(path, study):
    """volumedr 0.1's layout and settings: no checksums, HDF5's earliest file format."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "volumedr-study"
        f.attrs["format_version"] = 1
        p = np.asarray(study.projections, np.float32)
        f.create_dataset("projections", data=p, chunks=(1,) + p.shape[1:])
        g = f.create_group("geometry")
        g["source_positions_mm"] = study.geometry.source_positions_mm
        g["detector_centres_mm"] = study.geometry.detector_centres_mm
        g.attrs["detector_pixel_pitch_mm"] = [study.geometry.detector.pitch_row_mm, study.geometry.detector.pitch_col_mm]


def read_old(path):
    with h5py.File(path) as f:
        return f["projections"][()]


def recon_in_place_old(path, rec: Reconstructor):
    """volumedr 0.1: slices into /reconstruction.__partial__ of the open file, then renamed over the old group."""
    n = len(rec.heights_mm)
    with h5py.File(path, "r+") as f:
        g = f.create_group("reconstruction.__partial__")
        ds = g.create_dataset("slices", shape=(n,) + rec.grid.shape, dtype=np.float32, chunks=(1,) + rec.grid.shape)
        g.attrs.update(heights_mm=rec.heights_mm, pixel_spacing_mm=rec.grid.pixel_spacing_mm,
                       origin_mm=rec.grid.origin_mm, thickness_mm=rec.settings.thickness_mm, method="fbp")
        for ev in rec.run(emit=lambda i, s: ds.__setitem__(slice(i, i + len(s)), s)):
            pass
        if "reconstruction" in f:
            del f["reconstruction"]
        f.move("reconstruction.__partial__", "reconstruction")


def recon_in_place_new(path, rec: Reconstructor):
    n = len(rec.heights_mm)
    w = ReconstructionWriter(path, shape=(n,) + rec.grid.shape, heights_mm=rec.heights_mm,
                             pixel_spacing_mm=rec.grid.pixel_spacing_mm, origin_mm=rec.grid.origin_mm,
                             thickness_mm=rec.settings.thickness_mm, method="fbp", parameters={})
    try:
        for ev in rec.run(emit=w.write):
            pass
        w.commit()
    except BaseException:
        w.abort()
        raise


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--views", type=int, default=60)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--slices", type=int, default=40)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    det = Detector(rows=a.size, cols=a.size, pitch_row_mm=0.4, pitch_col_mm=0.4)
    geo = Sweep(kind="linear", total_angle_deg=30, n_projections=a.views, source_to_image_mm=1800,
                pivot_height_mm=100).geometry(det)
    proj = rng.random((a.views, a.size, a.size), dtype=np.float32)
    study = Study(projections=proj, geometry=geo)
    mb = proj.nbytes / 2**20
    out = {"projections_mib": mb}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp = Path(tmp)
        new, old = tmp / "new.h5", tmp / "old.h5"
        out["write_new_s"] = best_of(lambda: write_study(new, study), 3)
        out["write_old_s"] = best_of(lambda: write_old(old, study), 3)
        out["read_new_s"] = best_of(lambda: read_study(new), 3)
        out["read_old_s"] = best_of(lambda: read_old(old), 3)
        settings = ReconSettings(spacing_mm=5.0, z_min_mm=20, z_max_mm=20 + 5.0 * (a.slices - 1))
        rec = Reconstructor(proj, geo, settings)
        for _ in rec.prepare():  # filter once, outside the timings
            pass
        out["reconstruct_only_s"] = best_of(lambda: [None for _ in rec.run(emit=lambda i, s: None)], 2)
        for kind, fn, path in (("new", recon_in_place_new, new), ("old", recon_in_place_old, old)):
            sizes, times = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                fn(path, rec)
                times.append(time.perf_counter() - t0)
                sizes.append(path.stat().st_size / 2**20)
            out[f"reconstruct_in_place_{kind}_s"] = min(times)
            out[f"size_after_1_{kind}_mib"] = sizes[0]
            out[f"size_after_5_{kind}_mib"] = sizes[-1]
    print(f"{a.views} x {a.size}^2 projections ({mb:.0f} MiB), {a.slices} slices; best of 3 (2 for reconstructions)")
    print(f"write study:  checksummed {out['write_new_s']:.2f} s, without checksums {out['write_old_s']:.2f} s "
          f"({out['write_new_s'] / out['write_old_s']:.2f}x)")
    print(f"read study:   checksummed {out['read_new_s']:.2f} s, without checksums {out['read_old_s']:.2f} s "
          f"({out['read_new_s'] / out['read_old_s']:.2f}x)")
    print(f"reconstruct in place: rewrite {out['reconstruct_in_place_new_s']:.2f} s, in-place replace "
          f"{out['reconstruct_in_place_old_s']:.2f} s, the reconstruction alone {out['reconstruct_only_s']:.2f} s")
    print(f"file after 1 / 5 reconstructions: rewrite {out['size_after_1_new_mib']:.0f} / "
          f"{out['size_after_5_new_mib']:.0f} MiB, in-place replace {out['size_after_1_old_mib']:.0f} / "
          f"{out['size_after_5_old_mib']:.0f} MiB")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
