"""Hybrid phantoms: a voxel volume (real CT anatomy) with exact analytic objects inside it."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from helpers import sweep_geometry
from volumedr.geometry import Detector
from volumedr.phantoms.case import Case, load_case, load_case_file
from volumedr.phantoms.materials import mu_table
from volumedr.phantoms.primitives import box, pack, sphere
from volumedr.phantoms.volume import VoxelVolume
from volumedr.simulate.acquire import PrimitiveLengths, case_ct_reference, path_length_source
from volumedr.simulate.voxel import HybridLengths, VoxelLengths, analytic_occupancy, hybrid_hu

E = 60.0


def water_block(vox=2.0):
    """A 120 x 120 x 60 mm block of water (HU 0) from z = 20 to 80 mm, in air."""
    hu = np.full((30, 60, 60), 0.0, np.float32)
    return VoxelVolume(hu=hu, spacing_mm=(vox, vox, vox), origin_mm=(-59.0, -59.0, 21.0), effective_energy_kev=E)


def test_an_analytic_object_replaces_the_voxels_along_its_own_chord():
    vol = water_block()
    ball = sphere((6.0, -4.0, 50.0), 9.0, "titanium")
    det = Detector(rows=80, cols=80, pitch_row_mm=1.0, pitch_col_mm=1.0)
    g = sweep_geometry(n=25, angle=30, sid=1000, pivot=50, det=det)
    hybrid = HybridLengths(vol, (ball,))
    bare = VoxelLengths(vol)
    assert hybrid.material_names == ("water", "cortical_bone", "titanium")
    # the reference: the same block as an analytic box, the titanium ball painted over it
    exact = PrimitiveLengths(pack([box((0.0, 0.0, 50.0), (120.0, 120.0, 60.0), "water"), ball]))
    for v in (0, 12, 24):
        L = hybrid(g, v)
        ref = exact(g, v)
        assert np.array_equal(L[2], ref[1])  # the object's chords are exact
        # the water gives way along the ball's own chord, exactly: no fringe around its shadow (the
        # voxel water taken out is sampled as the voxel projector samples it)
        d = L[0] - (bare(g, v)[0] - ref[1])
        assert np.abs(d).max() < 1e-3  # mm, against 60 mm of water and an 18 mm ball
        assert np.abs(L[0] - ref[0]).max() < 0.02  # and the block is the analytic box's to float rounding
        far = ~ndimage.binary_dilation(ref[1] > 0, np.ones((3, 3), bool), iterations=2)
        assert np.array_equal(L[0][far], bare(g, v)[0][far])  # away from the ball the voxels are as they were
        assert np.all(L[1] == 0)


def _inside_objects_numpy(vox, prims, geometry, view, pixels, step_mm=0.005):
    """NumPy twin of the kernel ``voxels_inside_objects`` for a few pixels: march along each ray in
    steps of ``step_mm``; where a step lies inside any object, add the voxel fractions of the slab it is in
    (plane s holds z_s +- dz/2, bilinear in x, y)."""
    fr = vox.fractions
    S, ny, nx = fr.shape[1:]
    z0, dz = float(vox.heights[0]), float(vox.dz)
    (ox, oy), (py, px) = vox.grid.origin_mm, vox.grid.pixel_spacing_mm
    src = geometry.source_positions_mm[view]
    xs, ys = geometry.pixel_centres_mm(view)
    out = []
    for r, c in pixels:
        end = np.array([xs[c], ys[r], 0.0])
        n = int(np.linalg.norm(end - src) / step_mm)
        t = (np.arange(n) + 0.5) / n
        pts = src[None] + t[:, None] * (end - src)[None]
        inside = np.zeros(n, bool)
        for p in prims:
            u = (pts - p.centre_mm) @ p.world_to_unit.T
            inside |= (np.sum(u ** 2, axis=1) <= 1.0) if p.kind == 0 else np.all(np.abs(u) <= 1.0, axis=1)
        pts = pts[inside]
        s = np.rint((pts[:, 2] - z0) / dz).astype(int)
        kf, jf = (pts[:, 0] - ox) / px, (pts[:, 1] - oy) / py
        k0, j0 = np.floor(kf).astype(int), np.floor(jf).astype(int)
        wk, wj = kf - k0, jf - j0
        acc = np.zeros(2)
        for dj, fj in ((0, 1 - wj), (1, wj)):
            for dk, fk in ((0, 1 - wk), (1, wk)):
                j, k = j0 + dj, k0 + dk
                ok = (s >= 0) & (s < S) & (j >= 0) & (j < ny) & (k >= 0) & (k < nx)
                acc += (fr[:, s[ok], j[ok], k[ok]] * (fj * fk)[ok]).sum(axis=1)
        out.append(acc * (np.linalg.norm(end - src) / n))
    return np.array(out)


def test_the_numba_kernel_of_the_voxels_inside_the_objects_agrees_with_numpy():
    """A non-uniform volume (water and bone varying in x, y and z) and two overlapping objects."""
    zz, yy, xx = np.mgrid[0:30, 0:60, 0:60].astype(np.float32)
    hu = (300 * np.sin(xx / 5) * np.cos(yy / 7) + 8 * (zz - 15)).astype(np.float32)
    vol = VoxelVolume(hu=hu, spacing_mm=(2.0, 2.0, 2.0), origin_mm=(-59.0, -59.0, 21.0), effective_energy_kev=E)
    prims = (sphere((6.0, -4.0, 50.0), 9.0, "titanium"), box((10.0, 0.0, 45.0), (20.0, 4.0, 16.0), "soft_tissue"))
    det = Detector(rows=80, cols=80, pitch_row_mm=1.0, pitch_col_mm=1.0)
    g = sweep_geometry(n=25, angle=30, sid=1000, pivot=50, det=det)
    hybrid = HybridLengths(vol, prims)
    for v in (0, 24):
        got = hybrid.inside_objects(g, v)
        shadow = np.argwhere(got.sum(axis=0) > 0)
        assert len(shadow) > 100
        pick = shadow[np.random.default_rng(v).choice(len(shadow), 12, replace=False)]
        ref = _inside_objects_numpy(hybrid.voxels, prims, g, v, pick)
        np.testing.assert_allclose(got[:, pick[:, 0], pick[:, 1]].T, ref, rtol=0.01, atol=0.02)
        assert np.all(got[:, 0, :] == 0) and np.all(got[:, :, 0] == 0)  # nothing outside the shadows


def test_an_object_of_the_voxels_own_material_changes_nothing():
    """Replacing water by a water ball must leave the projections as they were: no outline at its edge
    (the occupancy model it replaced drew one of up to 2.4 mm of water around a 10 mm ball)."""
    vol = water_block()
    det = Detector(rows=160, cols=160, pitch_row_mm=0.5, pitch_col_mm=0.5)
    g = sweep_geometry(n=25, angle=30, sid=1000, pivot=50, det=det)
    hybrid = HybridLengths(vol, (sphere((6.0, -4.0, 50.0), 5.0, "water"),))
    bare = VoxelLengths(vol)
    for v in (0, 12, 24):
        assert np.abs(hybrid(g, v)[0] - bare(g, v)[0]).max() < 1e-3


def test_occupancy_conserves_the_objects_volume_and_the_ct_pane_shows_them():
    vol = water_block(vox=1.5)
    r = 7.0
    ball = sphere((3.3, 1.1, 47.7), r, "cortical_bone")
    [(block, occ, hu_obj)] = analytic_occupancy(vol, pack([ball]))
    assert occ.sum() * 1.5 ** 3 == pytest.approx(4 / 3 * np.pi * r ** 3, rel=0.02)
    mu_w, mu_b = mu_table(["water", "cortical_bone"], [E])[:, 0]
    hu_b = 1000 * (mu_b - mu_w) / mu_w
    full = occ > 0.999
    assert np.allclose(hu_obj[full], hu_b, rtol=1e-5)
    hu = hybrid_hu(vol, (ball,))
    c = tuple(int(round((v - o) / 1.5)) for v, o in zip((47.7, 1.1, 3.3), (21.0, -59.0, -59.0)))
    assert hu[c] == pytest.approx(hu_b, rel=1e-4)
    assert hu[0, 0, 0] == 0.0 and vol.hu.max() == 0.0  # the volume itself is untouched
    # a later object wins where objects overlap (painter's order), and air replaces tissue
    gas = sphere((3.3, 1.1, 47.7), 3.0, "air")
    hu2 = hybrid_hu(vol, (ball, gas))
    assert hu2[c] == pytest.approx(-1000.0, abs=2.0)  # air: 1.2 mg/cm3
    # objects far apart: each is painted in its own box, and the voxels between them are untouched
    far = sphere((-40.0, -40.0, 30.0), 4.0, "cortical_bone")
    blocks = analytic_occupancy(vol, pack([ball, far]))
    assert len(blocks) == 2 and all(b[1].size < 20 ** 3 for b in blocks)
    hu3 = hybrid_hu(vol, (ball, far))
    assert np.array_equal(hu3 != 0, (hu != 0) | (hybrid_hu(vol, (far,)) != 0))


def test_a_hybrid_case_file_loads_projects_and_shows_in_the_ct_pane(tmp_path):
    vol = water_block()
    np.savez_compressed(tmp_path / "block.npz", hu=vol.hu.astype(np.int16), spacing_mm=np.array(vol.spacing_mm),
                        origin_mm=np.array(vol.origin_mm))
    (tmp_path / "hyb.toml").write_text('''
[case]
name = "hyb"
[volume]
file = "block.npz"
effective_energy_kev = 60.0
[[object]]
type = "sphere"
centre_mm = [0.0, 0.0, 50.0]
radius_mm = 4.0
material = "calcium_oxalate"
finding = "stone"
[[finding]]
name = "stone"
centre_mm = [0.0, 0.0, 50.0]
size_mm = 8.0
''')
    case = load_case_file(tmp_path / "hyb.toml")
    assert isinstance(case, Case) and len(case.primitives) == 1 and case.volume is not None
    assert isinstance(path_length_source(case), HybridLengths)
    bare = load_case_file(tmp_path / "hyb.toml", with_findings=False)
    assert bare.primitives == () and bare.findings == ()
    ct = case_ct_reference(case)
    assert ct.hu.max() > 500  # the stone is in the CT pane
    assert case_ct_reference(bare).hu.max() == 0.0


# ------------------------------------------------------------------------------ real anatomy on the film
def _lung_patches(case_name, noise, det, half_mm=16.0, step_mm=20.0):
    """Patches (2 half_mm wide) of the film over both lung fields, the plane through each taken out."""
    from volumedr.simulate.acquire import plain_film, sweep_from_case

    case = load_case(case_name, with_findings=False)
    film = plain_film(case, det, rng=0, noise=noise).astype(np.float64)
    sid = sweep_from_case(case).source_to_image_mm
    m = sid / (sid - 120.0)
    half = int(half_mm / det.pitch_row_mm)
    out = []
    for x in [*np.arange(-110, -49, step_mm), *np.arange(50, 111, step_mm)]:
        for y in np.arange(-80, 41, step_mm):
            r = int(round(y * m / det.pitch_row_mm + (det.rows - 1) / 2))
            c = int(round(x * m / det.pitch_col_mm + (det.cols - 1) / 2))
            roi = film[r - half:r + half, c - half:c + half]
            yy, xx = np.mgrid[:roi.shape[0], :roi.shape[1]]
            A = np.c_[np.ones(roi.size), yy.ravel(), xx.ravel()]
            out.append((roi.ravel() - A @ np.linalg.lstsq(A, roi.ravel(), rcond=None)[0]).reshape(roi.shape))
    return out


def _spectrum(patch, pitch_mm):
    """Power spectrum (Hann window), radial frequency (cycles/mm) and direction (deg, 0 = along x)."""
    w = np.hanning(patch.shape[0])
    P = np.abs(np.fft.fft2(patch * w[:, None] * w[None])) ** 2
    f = np.fft.fftfreq(patch.shape[0], pitch_mm)
    FY, FX = np.meshgrid(f, f, indexing="ij")
    return P, np.hypot(FY, FX), np.degrees(np.arctan2(np.abs(FY), np.abs(FX)))


def test_the_real_chest_film_has_the_anatomical_texture_the_phantom_lacks():
    """Over the lungs, the real-anatomy film's structure is not a flat region plus noise: its power at
    0.1-0.5 cycles/mm stands well above the quantum noise, and it is spread over all directions (vessels
    branch every way), where the analytic phantom's lung holds only the near-horizontal edges of its
    smooth ribs (power piled into one direction)."""
    from volumedr.geometry import Detector

    det = Detector().binned(4)
    pitch = det.pitch_row_mm

    def band(P, fr, ang, a0=0.0, a1=91.0):
        return P[(fr >= 0.1) & (fr < 0.5) & (ang >= a0) & (ang < a1)].mean()

    anisotropy = {}
    for name in ("chest", "chest_phantom"):
        an = []
        for patch in _lung_patches(name, False, det):
            P, fr, ang = _spectrum(patch, pitch)
            sectors = [band(P, fr, ang, a, a + 22.5) for a in (0.0, 22.5, 45.0, 67.5)]
            an.append(max(sectors) / min(sectors))
        anisotropy[name] = float(np.median(an))
    assert anisotropy["chest"] < 15 and anisotropy["chest"] * 4 < anisotropy["chest_phantom"], anisotropy
    ratio = []
    for clean, noisy in zip(_lung_patches("chest", False, det), _lung_patches("chest", True, det)):
        ratio.append(band(*_spectrum(clean, pitch)) / band(*_spectrum(noisy - clean, pitch)))
    assert np.median(ratio) > 5, np.median(ratio)  # anatomy, not noise, makes the lung's texture
