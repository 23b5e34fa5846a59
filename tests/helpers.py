"""Test helpers: small analytic cases and exact projections (no Qt)."""
from __future__ import annotations

import numpy as np

from volumedr.geometry import AcquisitionGeometry, Detector, Sweep
from volumedr.phantoms.case import Case
from volumedr.phantoms.materials import mu_table
from volumedr.phantoms.primitives import box, pack, sphere
from volumedr.simulate.project import path_lengths


def make_case(primitives, name="test", findings=()) -> Case:
    return Case(name=name, title=name, region="test", history="", teaching="", primitives=tuple(primitives),
                 findings=tuple(findings))


def exact_projections(primitives, geometry: AcquisitionGeometry, energy_kev: float = 60.0) -> np.ndarray:
    """Monoenergetic line integrals sum(mu L), exact analytic, (V, R, C) float32."""
    packed = pack(list(primitives))
    mu = mu_table(packed.material_names, [energy_kev])[:, 0]
    out = np.empty((geometry.n_views,) + geometry.detector.shape, np.float32)
    L = None
    for v in range(geometry.n_views):
        L = path_lengths(packed, geometry, v, out=L)
        out[v] = np.tensordot(mu, L, axes=1)
    return out


def bead_phantom(rng, n_beads=6, body_mm=(150, 150, 90), z_range=(20, 70), bead_d=2.0):
    prims = [box((0, 0, body_mm[2] / 2 + 5), body_mm, "soft_tissue", label="body")]
    beads = []
    while len(beads) < n_beads:  # at least 20 mm apart in (x, y) so each bead has its own search window
        c = (rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(*z_range))
        if all(np.hypot(c[0] - b[0], c[1] - b[1]) >= 20 for b in beads):
            beads.append(c)
            prims.append(sphere(c, bead_d / 2, "cortical_bone", label="bead"))
    return prims, np.array(beads)


def small_detector(n=160, pitch=1.0) -> Detector:
    return Detector(rows=n, cols=n, pitch_row_mm=pitch, pitch_col_mm=pitch)


def rotated_geometry(geometry: AcquisitionGeometry, degrees: float) -> AcquisitionGeometry:
    """The same acquisition with source and detector positions rotated about z (an oblique sweep)."""
    t = np.deg2rad(degrees)
    R = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    return AcquisitionGeometry(geometry.detector, geometry.source_positions_mm @ R.T,
                               geometry.detector_centres_mm @ R.T)


def sweep_geometry(kind="linear", direction="x", n=25, angle=40.0, sid=1000.0, pivot=50.0, det=None):
    return Sweep(kind=kind, total_angle_deg=angle, n_projections=n, source_to_image_mm=sid, pivot_height_mm=pivot,
                 direction=direction).geometry(det or small_detector())


def write_minimal_study(path, projections, source_positions_mm, pitch_mm=(1.0, 1.0)) -> None:
    """A study file with only the required items, as another program would write it (docs/file-format.md)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = "volumedr-study"
        f.attrs["format_version"] = 1
        f["projections"] = np.asarray(projections, np.float32)
        g = f.create_group("geometry")
        g["source_positions_mm"] = np.asarray(source_positions_mm, np.float64)
        g.attrs["detector_pixel_pitch_mm"] = list(pitch_mm)
