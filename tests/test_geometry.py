import numpy as np
import pytest

from volumedr.errors import GeometryError, VolumedrWarning
from volumedr.geometry import AcquisitionGeometry, Detector, Sweep, plain_film_geometry


def test_default_detector_is_a_43cm_panel_and_bins():
    d = Detector()
    assert d.width_mm == pytest.approx(430.08)
    b = d.binned(4)
    assert (b.rows, b.cols, b.pitch_col_mm) == (512, 512, pytest.approx(0.84))
    assert b.width_mm == pytest.approx(d.width_mm)


@pytest.mark.parametrize("kw,msg", [
    (dict(rows=0), "rows"), (dict(cols=2.5), "cols"), (dict(pitch_row_mm=-1), "pitch_row_mm"),
    (dict(pitch_col_mm=float("nan")), "pitch_col_mm")])
def test_bad_detector_is_rejected_by_name(kw, msg):
    with pytest.raises(GeometryError, match=msg):
        Detector(**kw)


def test_linear_sweep_positions_follow_the_convention():
    g = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800,
              pivot_height_mm=100, direction="x").geometry(Detector().binned(8))
    s = g.source_positions_mm
    assert s.shape == (25, 3) and np.all(s[:, 2] == 1800) and np.all(s[:, 1] == 0)
    # the central ray passes through the pivot at the nominal angle
    assert s[-1, 0] == pytest.approx((1800 - 100) * np.tan(np.deg2rad(15)))
    assert np.allclose(g.detector_centres_mm, 0)
    assert g.angles_deg[0] == pytest.approx(-15) and g.angles_deg[-1] == pytest.approx(15)
    assert np.allclose(g.sweep_axis_xy, [1, 0])


def test_arc_keeps_the_source_at_constant_distance_from_the_pivot():
    g = Sweep(kind="arc", total_angle_deg=40, n_projections=25, source_to_image_mm=1200, pivot_height_mm=200,
              direction="y").geometry(Detector().binned(8))
    d = np.linalg.norm(g.source_positions_mm - [0, 0, 200], axis=1)
    assert np.allclose(d, 1000)
    assert np.allclose(g.sweep_axis_xy, [0, 1])


def test_opposed_sweep_keeps_the_pivot_on_the_detector_centre():
    g = Sweep(kind="opposed", total_angle_deg=40, n_projections=25, source_to_image_mm=1200, pivot_height_mm=150,
              direction="x").geometry(Detector().binned(8))
    s, d = g.source_positions_mm, g.detector_centres_mm
    assert np.all(np.sign(s[[0, -1], 0]) == -np.sign(d[[0, -1], 0]))
    pivot = np.array([0, 0, 150.0])
    for si, di in zip(s, d):  # source, pivot and detector centre are collinear
        assert np.linalg.norm(np.cross(pivot - si, di - si)) / np.linalg.norm(di - si) < 1e-9


def test_pixel_centre_convention():
    det = Detector(rows=4, cols=6, pitch_row_mm=0.5, pitch_col_mm=1.0)
    g = AcquisitionGeometry(det, [[0, 0, 1000.0]], [[10.0, -2.0, 0.0]])
    xs, ys = g.pixel_centres_mm(0)
    assert xs[0] == pytest.approx((0 - 2.5) * 1.0 + 10) and ys[-1] == pytest.approx((3 - 1.5) * 0.5 - 2)


@pytest.mark.parametrize("kw,msg", [
    (dict(kind="spiral"), "kind"), (dict(total_angle_deg=0), "angle"), (dict(total_angle_deg=120), "angle"),
    (dict(n_projections=2), "projections"), (dict(n_projections=500), "projections"),
    (dict(source_to_image_mm=50), "source-to-image"), (dict(pivot_height_mm=1700), "pivot"),
    (dict(direction="z"), "direction")])
def test_bad_sweeps_are_rejected_by_name(kw, msg):
    with pytest.raises(GeometryError, match=msg):
        Sweep(**kw)


def test_projection_counts_outside_clinical_range_warn():
    with pytest.warns(VolumedrWarning, match="clinical range"):
        Sweep(n_projections=9)


def test_geometry_rejects_sources_below_the_detector_and_mismatched_views():
    det = Detector().binned(8)
    with pytest.raises(GeometryError, match="above the detector"):
        AcquisitionGeometry(det, [[0, 0, -5.0]])
    with pytest.raises(GeometryError, match="views"):
        AcquisitionGeometry(det, np.ones((3, 3)) * [0, 0, 1000], np.zeros((2, 3)))
    with pytest.raises(GeometryError, match="NaN"):
        AcquisitionGeometry(det, [[0, np.nan, 1000.0]])


def test_geometry_is_frozen():
    g = plain_film_geometry(Detector().binned(8))
    with pytest.raises(Exception):
        g.source_positions_mm[0, 0] = 1.0
    with pytest.raises(Exception):
        g.detector = None


def test_oblique_sweep_axis_is_derived_from_positions():
    det = Detector().binned(8)
    t = np.deg2rad(30)
    along = np.linspace(-200, 200, 25)
    src = np.stack([along * np.cos(t), along * np.sin(t), np.full(25, 1000.0)], 1)
    g = AcquisitionGeometry(det, src)
    assert np.allclose(g.sweep_axis_xy, [np.cos(t), np.sin(t)])
