"""Reconstruction physics: beads in focus, kernels vs NumPy twins, adjoint, FBP vs SAA."""
import zlib

import numpy as np
import pytest

from helpers import bead_phantom, exact_projections, make_case, rotated_geometry, small_detector, sweep_geometry
from volumedr.errors import Cancelled, MemoryBudgetError, ParameterError
from volumedr.geometry import Sweep
from volumedr.phantoms.primitives import box, cylinder, sphere
from volumedr.progress import CancelToken, drive
from volumedr.reconstruct import Reconstructor, ReconSettings, SliceGrid, plane_coefficients, reconstruct
from volumedr.reconstruct._kernels import backproject as K
from volumedr.reconstruct.reference import backproject_numpy, forward_project_numpy
from volumedr.simulate import AcquisitionSettings, simulate_study

GEOMETRIES = {
    "linear-x": dict(kind="linear", direction="x"),
    "linear-y": dict(kind="linear", direction="y"),
    "arc-x": dict(kind="arc", direction="x", pivot=80.0),
    "arc-y": dict(kind="arc", direction="y", pivot=80.0),
    "opposed-x": dict(kind="opposed", direction="x", pivot=60.0),
    "opposed-y": dict(kind="opposed", direction="y", pivot=60.0),
}


def geometry_for(name):
    """Beads of 2 mm need a detector fine enough to sample them (0.5 mm pitch); at 1 mm, aliasing of the
    two-pixel bead alone moves the in-focus peak by up to 1.4 mm."""
    det = small_detector(320, 0.5)
    if name == "oblique-30":
        return rotated_geometry(sweep_geometry("linear", "x", det=det), 30.0)
    return sweep_geometry(**GEOMETRIES[name], det=det)


@pytest.mark.parametrize("name", list(GEOMETRIES) + ["oblique-30"])
def test_beads_reconstruct_in_focus_at_their_true_height_and_place(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    geo = geometry_for(name)
    prims, beads = bead_phantom(rng, n_beads=5)
    proj = exact_projections(prims, geo)
    spacing = 1.0
    rec = reconstruct(proj, geo, ReconSettings(method="fbp", spacing_mm=spacing, z_min_mm=8, z_max_mm=92))
    s = rec.slices
    for x, y, z in beads:
        row, col = rec.pixel_of(x, y)
        r0, c0 = int(round(row)), int(round(col))
        win = s[:, r0 - 4:r0 + 5, c0 - 4:c0 + 5]
        k, dr, dc = np.unravel_index(np.argmax(win), win.shape)
        assert abs(rec.heights_mm[k] - z) <= spacing, (name, z, rec.heights_mm[k])
        # within one pixel of the true (x, y) (sub-pixel estimate from the peak slice)
        r_peak, c_peak = r0 - 4 + dr, c0 - 4 + dc
        assert abs(r_peak - row) <= 1.0 and abs(c_peak - col) <= 1.0, (name, (row, col), (r_peak, c_peak))


def test_slice_grid_demagnifies_the_detector_pitch():
    geo = sweep_geometry("linear", "x")
    rec = Reconstructor(np.zeros((25, 160, 160), np.float32), geo, ReconSettings(z_min_mm=10, z_max_mm=90))
    sz = 1000.0
    assert rec.grid.pixel_spacing_mm[1] == pytest.approx(1.0 * (sz - 50) / sz)
    ny, nx = rec.grid.shape
    x0, y0 = rec.grid.origin_mm
    assert x0 == pytest.approx(-((nx - 1) / 2) * rec.grid.pixel_spacing_mm[1])  # centred on the symmetric sweep
    assert y0 == pytest.approx(-((ny - 1) / 2) * rec.grid.pixel_spacing_mm[0])
    # it covers the detector's footprint at mid-height and, at the lowest slice (10 mm), the detector's
    # footprint too (what every view there sees is wider than at 50 mm), and no more than 1.5x
    assert 160 <= ny <= 240 and 160 <= nx <= 240
    assert (ny - 1) * rec.grid.pixel_spacing_mm[0] >= 159 * (sz - 10) / sz - 1e-6


def random_problem(rng, Q=2, moving_detector=True):
    geo = sweep_geometry("opposed" if moving_detector else "linear", "y", n=25, det=small_detector(23, 1.3))
    heights = np.array([[20.0, 20.7], [33.3, 34.0], [61.0, 61.7]])[:, :Q]
    grid = SliceGrid((19, 27), (1.1, 0.9), (-14.0, -9.0))
    coeffs = plane_coefficients(geo, grid, heights)
    return geo, grid, heights, coeffs


@pytest.mark.parametrize("Q", [1, 2])
def test_numba_backprojector_equals_numpy_twin(Q):
    rng = np.random.default_rng(0)
    geo, grid, heights, coeffs = random_problem(rng, Q)
    p = rng.standard_normal((25, 23, 23)).astype(np.float32)
    out = np.empty((3,) + grid.shape, np.float32)
    K.backproject(p, *coeffs, np.float32(0.37), out)
    ref = backproject_numpy(p, *coeffs, 0.37, out.shape)
    assert np.abs(out).max() > 0.1
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("Q", [1, 2])
def test_the_backprojector_skips_the_zeros_of_sparse_projections_to_the_same_result(Q):
    rng = np.random.default_rng(7)
    geo, grid, heights, coeffs = random_problem(rng, Q)
    p = np.zeros((25, 23, 23), np.float32)  # a metal trace: blobs in some rows and columns, zeros elsewhere
    p[:, 5:9, 3:8] = rng.standard_normal((25, 4, 5))
    p[::3, 15, 12:21] = 1.0
    p[4, 0, 0] = p[6, 22, 22] = 2.0  # at the detector's corners
    spans = K.row_spans(p)
    assert spans[0, 0].tolist() == [23, -1] and spans[0, 5].tolist() == [3, 7] and spans[6, 22].tolist() == [22, 22]
    dense = np.empty((3,) + grid.shape, np.float32)
    sparse = np.empty_like(dense)
    K.backproject(p, *coeffs, np.float32(0.37), dense)
    K.backproject(p, *coeffs, np.float32(0.37), sparse, spans)
    assert np.abs(dense).max() > 0.1
    np.testing.assert_array_equal(sparse, dense)
    np.testing.assert_allclose(sparse, backproject_numpy(p, *coeffs, 0.37, dense.shape), rtol=1e-4, atol=1e-5)
    # a crop of the grid (fewer columns than the detector reads) and all-zero projections
    crop = SliceGrid((7, 9), (1.1, 0.9), (-3.0, -2.0))
    cc = plane_coefficients(geo, crop, heights)
    a, b = np.empty((3, 7, 9), np.float32), np.empty((3, 7, 9), np.float32)
    K.backproject(p, *cc, np.float32(1.0), a)
    K.backproject(p, *cc, np.float32(1.0), b, spans)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, backproject_numpy(p, *cc, 1.0, a.shape), rtol=1e-4, atol=1e-5)
    z = np.zeros_like(p)
    K.backproject(z, *cc, np.float32(1.0), b, K.row_spans(z))
    assert not b.any()


def test_numba_forward_projector_equals_numpy_twin():
    rng = np.random.default_rng(1)
    geo, grid, heights, coeffs = random_problem(rng, 2)
    x = rng.standard_normal((3,) + grid.shape).astype(np.float32)
    out = np.empty((25, 23, 23), np.float32)
    K.forward_project(x, *coeffs, np.float32(0.5), out)
    ref = forward_project_numpy(x, *coeffs, 0.5, out.shape)
    assert np.abs(out).max() > 0.1
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_views", [1, 2, 3])
def test_forward_projection_split_by_planes_equals_split_by_views(n_views):
    """A SART subset's forward projection (few views) splits the planes among the threads, each into
    detectors of its own; it must equal the per-view kernel and the NumPy twin, and stay the adjoint."""
    rng = np.random.default_rng(4)
    geo, grid, heights, coeffs = random_problem(rng, 2)
    x = rng.standard_normal((len(heights),) + grid.shape).astype(np.float32)
    views = np.arange(0, 25, 25 // n_views)[:n_views]
    sub = tuple(np.ascontiguousarray(c[:, :, views]) for c in coeffs)
    by_views = np.empty((n_views, 23, 23), np.float32)
    K.forward_project_views(x, *sub, np.float32(0.5), by_views)
    assert np.abs(by_views).max() > 0.1
    for T in (2, 3, 5):  # several planes a thread, one each, and threads with none
        by_planes = np.full_like(by_views, np.nan)
        K.forward_project_planes(x, *sub, np.float32(0.5), by_planes, T)
        np.testing.assert_allclose(by_planes, by_views, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(by_planes, forward_project_numpy(x, *sub, 0.5, by_views.shape), rtol=1e-4, atol=1e-4)
    y = rng.standard_normal(by_views.shape).astype(np.float32)
    ATy = np.empty_like(x)
    K.backproject(y, *sub, np.float32(0.5), ATy)
    assert float(np.vdot(by_planes.astype(np.float64), y)) == pytest.approx(float(np.vdot(x.astype(np.float64), ATy)),
                                                                            rel=1e-5)


@pytest.mark.parametrize("moving", [False, True])
def test_projector_and_backprojector_are_adjoint(moving):
    rng = np.random.default_rng(2)
    geo, grid, heights, coeffs = random_problem(rng, 2, moving_detector=moving)
    x = rng.standard_normal((3,) + grid.shape).astype(np.float32)
    y = rng.standard_normal((25, 23, 23)).astype(np.float32)
    Ax = np.empty_like(y)
    K.forward_project(x, *coeffs, np.float32(1.0), Ax)
    ATy = np.empty_like(x)
    K.backproject(y, *coeffs, np.float32(1.0), ATy)
    lhs, rhs = float(np.vdot(Ax.astype(np.float64), y)), float(np.vdot(x.astype(np.float64), ATy))
    assert lhs == pytest.approx(rhs, rel=1e-5)
    # and a wrong adjoint (transposed rows) would fail it
    ATy_wrong = np.empty_like(x)
    K.backproject(y[:, ::-1].copy(), *coeffs, np.float32(1.0), ATy_wrong)
    assert abs(float(np.vdot(x.astype(np.float64), ATy_wrong)) - lhs) > 1e-3 * abs(lhs)


def test_slice_on_demand_equals_the_full_reconstruction():
    geo = sweep_geometry("arc", "y", pivot=80.0)
    prims, _ = bead_phantom(np.random.default_rng(4), n_beads=3)
    proj = exact_projections(prims, geo)
    r = Reconstructor(proj, geo, ReconSettings(spacing_mm=2, thickness_mm=4, z_min_mm=10, z_max_mm=80))
    full = drive(r.run())
    k = 7
    np.testing.assert_allclose(r.slice_at(full.heights_mm[k]), full.slices[k], rtol=1e-6, atol=1e-6)
    # streamed chunk by chunk (the chunk's arrays are reused, emit copies): the same slices and fractions
    got, frac = {}, {}
    drive(r.run(emit=lambda i, b: got.__setitem__(i, b.copy()), emit_fraction=lambda i, f: frac.__setitem__(i, f.copy())))
    assert len(got) > 2  # several chunks
    assert np.array_equal(np.concatenate([got[i] for i in sorted(got)]), full.slices)
    assert np.array_equal(np.concatenate([frac[i] for i in sorted(frac)]), full.view_fraction)


def test_thick_slices_average_thin_planes():
    geo = sweep_geometry("linear", "x")
    prims, _ = bead_phantom(np.random.default_rng(5), n_beads=3)
    proj = exact_projections(prims, geo)
    thin = Reconstructor(proj, geo, ReconSettings(method="saa", spacing_mm=1, thickness_mm=1, z_min_mm=10, z_max_mm=90))
    thick = Reconstructor(proj, geo, ReconSettings(method="saa", spacing_mm=1, thickness_mm=3, z_min_mm=10, z_max_mm=90))
    assert thick.settings.n_subplanes == 3
    expect = np.mean([thin.slice_at(h) for h in (49.0, 50.0, 51.0)], axis=0)
    # where every view sees all three planes; at the field's edge a thick slice weights its planes by
    # how many views see each (the whole-field normalisation), which a plain mean does not
    full = thin.view_weight(np.array([49.0, 50.0, 51.0])).min(axis=0) >= 0.999
    assert full.mean() > 0.5
    np.testing.assert_allclose(thick.slice_at(50.0)[full], expect[full], rtol=1e-5, atol=1e-6)


def _rings(rec, x, y):
    yy, xx = np.mgrid[:rec.slices.shape[1], :rec.slices.shape[2]]
    row, col = rec.pixel_of(x, y)
    return np.hypot((yy - row) * rec.pixel_spacing_mm[0], (xx - col) * rec.pixel_spacing_mm[1])


SDNR_SWEEP = Sweep(kind="linear", total_angle_deg=30, n_projections=40, source_to_image_mm=1200, pivot_height_mm=50,
                   direction="y")


def test_fbp_has_higher_sdnr_than_saa_for_a_low_contrast_nodule(record_property):
    """A 10 mm soft-tissue nodule in lung under out-of-plane ribs, with quantum noise."""
    prims = [box((0, 0, 60), (150, 150, 100), "lung"),
             cylinder((0, 0, 25), (1, 0, 0), 5, 140, "cortical_bone"),
             cylinder((0, 6, 95), (1, 0.2, 0), 5, 140, "cortical_bone"),
             sphere((20, -6, 90), 6, "soft_tissue"),
             sphere((0, 0, 60), 5, "soft_tissue")]
    det = small_detector(200, 0.8)
    st = simulate_study(make_case(prims), sweep=SDNR_SWEEP, detector=det, settings=AcquisitionSettings(sweep_mas=8.0),
                        rng=1, plain_film=False, ct=False)
    sdnr = {}
    for method in ("saa", "fbp"):
        rec = reconstruct(st.projections, st.geometry, ReconSettings(method=method, spacing_mm=1, z_min_mm=60,
                                                                    z_max_mm=60))
        rr = _rings(rec, 0, 0)
        s = rec.slices[0]
        bg = s[(rr > 7) & (rr < 14)]
        sdnr[method] = (s[rr < 3].mean() - bg.mean()) / bg.std()
    record_property("sdnr", sdnr)
    print("SDNR", sdnr)
    assert sdnr["fbp"] > 1.03 * sdnr["saa"]


@pytest.mark.parametrize("diameter,margin", [(4.0, 3), (6.0, 4)])
def test_fbp_has_a_narrower_artifact_spread_function(diameter, margin, record_property):
    det = small_detector(200, 0.8)
    geo = SDNR_SWEEP.geometry(det)
    prims = [box((0, 0, 60), (150, 150, 100), "soft_tissue"), sphere((0, 0, 60), diameter / 2, "cortical_bone")]
    proj = exact_projections(prims, geo)
    fwhm = {}
    for method in ("saa", "fbp"):
        rec = reconstruct(proj, geo, ReconSettings(method=method, spacing_mm=1, z_min_mm=15, z_max_mm=105))
        rr = _rings(rec, 0, 0)
        sig = np.array([sl[rr < diameter / 4].mean() - sl[(rr > diameter + 4) & (rr < diameter + 8)].mean()
                        for sl in rec.slices])
        assert rec.heights_mm[np.argmax(sig)] == pytest.approx(60, abs=1)
        above = np.where(sig / sig.max() >= 0.5)[0]
        fwhm[method] = above.max() - above.min() + 1
    record_property("asf_fwhm_mm", fwhm)
    print("ASF FWHM", diameter, fwhm)
    assert fwhm["fbp"] <= fwhm["saa"] - margin


def test_bad_inputs_are_refused_before_work():
    geo = sweep_geometry("linear", "x")
    p = np.zeros((25, 160, 160), np.float32)
    with pytest.raises(ParameterError, match="24 projections but the geometry has 25"):
        Reconstructor(p[:24], geo)
    bad = p.copy()
    bad[4, 1, 1] = np.inf
    with pytest.raises(ParameterError, match="view 4"):
        Reconstructor(bad, geo)
    with pytest.raises(ParameterError, match="above the detector"):
        Reconstructor(p, geo, ReconSettings(z_min_mm=0, z_max_mm=10))
    with pytest.raises(ParameterError, match="below the source"):
        Reconstructor(p, geo, ReconSettings(z_min_mm=10, z_max_mm=1000))
    with pytest.raises(ParameterError, match="0.1 mm"):
        ReconSettings(spacing_mm=0.01)
    with pytest.raises(ParameterError, match="method"):
        ReconSettings(method="art")
    r = Reconstructor(p, geo, ReconSettings(z_min_mm=10, z_max_mm=20), grid_shape=(200000, 200000))
    with pytest.raises(MemoryBudgetError, match="GiB"):
        drive(r.run())


def test_reconstruction_can_be_cancelled_between_chunks():
    geo = sweep_geometry("linear", "x")
    p = np.random.default_rng(0).random((25, 160, 160), dtype=np.float32)
    r = Reconstructor(p, geo, ReconSettings(z_min_mm=5, z_max_mm=95, spacing_mm=0.5))
    token = CancelToken()
    seen = []

    def on_progress(ev):
        seen.append(ev)
        if ev.stage == "reconstructing":
            token.cancel()

    with pytest.raises(Cancelled):
        drive(r.run(), on_progress=on_progress, cancel=token)
    assert seen[-1].stage == "reconstructing" and seen[-1].done < seen[-1].total
