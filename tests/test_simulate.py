import numpy as np
import pytest

from helpers import exact_projections, make_case, small_detector
from volumedr.errors import ParameterError
from volumedr.geometry import Detector, Sweep
from volumedr.phantoms.primitives import box, sphere
from volumedr.simulate import AcquisitionSettings, Spectrum, simulate_study
from volumedr.simulate.acquire import PrimitiveLengths, _Beam, _expose
from volumedr.phantoms.primitives import pack

SWEEP = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1200, pivot_height_mm=50,
              direction="y")


def slab_case(t_mm, material="soft_tissue"):
    return make_case([box((0, 0, 10 + t_mm / 2), (400, 400, t_mm), material)])


def test_spectrum_table_matches_spekpy_reference_values():
    s = Spectrum.from_table(120, "2.5Al+0.1Cu")
    assert s.air_kerma_ugy_per_mas_at_1m == pytest.approx(97.4, rel=0.01)
    assert s.hvl_mm_al == pytest.approx(6.42, rel=0.01)
    assert s.mean_energy_kev == pytest.approx(59.8, abs=1.0)
    with pytest.raises(ParameterError, match="kVp"):
        Spectrum.from_table(200)


def expose_uniform(case, mas, noise, rng, det=None):
    det = det or small_detector(64, 1.0)
    g = SWEEP.geometry(det)
    lengths = PrimitiveLengths(pack(list(case.primitives)))
    st = AcquisitionSettings(grid=False)
    beam = _Beam(lengths.material_names, det, st)
    return _expose(lengths, g, 12, beam, mas, st, rng, noise)


def test_noise_variance_tracks_the_mean_count():
    """Poisson statistics: var(I/I0) = mean(I/I0) / N0 -> relative variance scales as 1/mAs."""
    case = slab_case(100)
    det = Detector(rows=64, cols=64, pitch_row_mm=1.0, pitch_col_mm=1.0, scintillator_blur_mm=0.0,
                   electronic_noise_quanta=0.0)
    rng = np.random.default_rng(0)
    rel_var = []
    for mas in (0.05, 0.2, 0.8):
        p = expose_uniform(case, mas, True, rng, det)[8:56, 8:56]
        i = np.exp(-p)
        rel_var.append(i.var() / i.mean() ** 2)
    ratios = np.array(rel_var[:-1]) / np.array(rel_var[1:])
    assert np.allclose(ratios, 4.0, rtol=0.15)  # 4x the mAs -> 1/4 the relative variance


def test_beam_hardening_lowers_effective_mu_with_thickness():
    det = Detector(rows=16, cols=16, pitch_row_mm=1.0, pitch_col_mm=1.0)
    rng = np.random.default_rng(0)
    mu_eff = []
    for t in (20, 80, 200):
        p = expose_uniform(slab_case(t), 1.0, False, rng, det)
        mu_eff.append(float(p[8, 8]) / t)  # near-vertical ray
    assert mu_eff[0] > mu_eff[1] > mu_eff[2]
    # and stays between mu at the top of the spectrum and mu at its low end
    from volumedr.phantoms.materials import mu_table
    lo, hi = mu_table(["soft_tissue"], [120.0, 30.0])[0]
    assert lo < mu_eff[2] < mu_eff[0] < hi


def test_noise_free_projection_equals_polyenergetic_expectation_for_thin_objects():
    """For a thin object the polyenergetic log signal approaches the exact monoenergetic integral at the
    spectrum's effective energy: check against the exact analytic projector."""
    prims = [sphere((0, 0, 40), 3, "water")]
    det = small_detector(64, 0.5)
    st = simulate_study(make_case(prims), sweep=SWEEP, detector=Detector(**{**det.__dict__, "scintillator_blur_mm": 0}),
                        settings=AcquisitionSettings(grid=False), rng=0, noise=False, plain_film=False, ct=False)
    exact60 = exact_projections(prims, st.geometry, 60.0)
    exact50 = exact_projections(prims, st.geometry, 50.0)
    v = 12
    peak = st.projections[v].max()
    assert exact60[v].max() * 0.97 < peak < exact50[v].max() * 1.03
    assert np.unravel_index(st.projections[v].argmax(), det.shape) == np.unravel_index(exact60[v].argmax(), det.shape)


def test_plain_film_is_the_zero_degree_view_at_another_dose():
    case = make_case([box((0, 0, 60), (120, 120, 100), "soft_tissue"), sphere((10, -5, 70), 8, "cortical_bone")])
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1200, pivot_height_mm=0)
    det = small_detector(96, 1.5)
    st = simulate_study(case, sweep=sweep, detector=det, settings=AcquisitionSettings(), rng=1, noise=False, ct=False)
    assert sweep.angles_deg[12] == pytest.approx(0.0)
    assert np.allclose(st.dr, st.projections[12], atol=1e-5)
    noisy = simulate_study(case, sweep=sweep, detector=det, settings=AcquisitionSettings(), rng=1, ct=False)
    # quantum noise scales as 1/sqrt(mAs): film (1.9 mAs) vs one view (19.2 / 25 mAs)
    d_film = noisy.dr - st.dr
    d_view = noisy.projections[12] - st.projections[12]
    expect = np.sqrt((19.2 / 25) / 1.9)
    assert d_film.std() / d_view.std() == pytest.approx(expect, rel=0.15)
    assert noisy.metadata["dose_plain_film"]["mas_per_view"] == pytest.approx(1.9)


def test_same_seed_same_study_and_different_seed_differs():
    case = make_case([box((0, 0, 60), (120, 120, 100), "soft_tissue")])
    kw = dict(sweep=SWEEP, detector=small_detector(48, 2.0), plain_film=False, ct=False)
    a = simulate_study(case, rng=5, **kw).projections
    b = simulate_study(case, rng=5, **kw).projections
    c = simulate_study(case, rng=6, **kw).projections
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_scatter_lowers_contrast_and_grid_restores_it():
    case = make_case([box((0, 0, 60), (300, 300, 100), "soft_tissue"), sphere((0, 0, 60), 15, "cortical_bone")])
    det = small_detector(96, 2.0)

    def contrast(**kw):
        st = simulate_study(case, sweep=SWEEP, detector=det, settings=AcquisitionSettings(**kw), rng=0, noise=False,
                            plain_film=False, ct=False)
        p = st.projections[12]
        return p.max() - np.median(p)

    c0 = contrast(scatter_fraction=0.0)
    c_nogrid = contrast(scatter_fraction=1.5, grid=False)
    c_grid = contrast(scatter_fraction=1.5, grid=True)
    assert c_nogrid < c_grid < c0


def test_ct_reference_reads_in_hounsfield_units():
    case = make_case([box((0, 0, 50), (100, 100, 80), "water"), box((-25, 0, 50), (30, 60, 40), "fat"),
                      box((25, 0, 50), (30, 60, 40), "cortical_bone")])
    st = simulate_study(case, sweep=SWEEP, detector=small_detector(32, 4.0), rng=0, plain_film=False,
                        settings=AcquisitionSettings(ct_voxel_mm=2.0, ct_noise_hu=10.0))
    ct = st.ct_reference
    hu = ct.hu
    z = int(round((50 - ct.origin_mm[2]) / ct.spacing_mm[0]))
    y = int(round((0 - ct.origin_mm[1]) / ct.spacing_mm[1]))

    def at(x):
        return hu[z, y - 3:y + 4, int(round((x - ct.origin_mm[0]) / ct.spacing_mm[2]))].mean()

    assert at(-45) == pytest.approx(0, abs=15)  # water
    assert -190 < at(-25) < -30  # fat in the CT fat window (seed review: -190..-30 HU)
    assert at(25) > 1000  # cortical bone
    assert hu[z, 1, 1] == pytest.approx(-1000, abs=1)  # air outside
    assert np.std(hu[z, y - 8:y + 8, int(round((-45 - ct.origin_mm[0]) / 2)) - 2:int(round((-45 - ct.origin_mm[0]) / 2)) + 2]) \
        == pytest.approx(10, rel=0.5)


def test_chest_protocol_dose_is_in_published_ranges():
    """Chest PA ~0.02 mSv, chest tomosynthesis 0.12-0.13 mSv (Bath 2010), 17 uGy ESAK per view (GE VolumeRAD)."""
    st = simulate_study("chest", detector=Detector().binned(16), rng=0, ct=False)
    film, sweep = st.metadata["dose_plain_film"], st.metadata["dose_sweep"]
    assert 0.01 <= film["effective_dose_msv"] <= 0.04
    assert 0.08 <= sweep["effective_dose_msv"] <= 0.2
    assert sweep["entrance_surface_air_kerma_per_view_ugy"] == pytest.approx(17, rel=0.2)
    assert sweep["kerma_area_product_gy_cm2"] == pytest.approx(10 * film["kerma_area_product_gy_cm2"], rel=0.1)


@pytest.mark.parametrize("kw,msg", [(dict(kvp=20), "kVp"), (dict(sweep_mas=-1), "sweep mAs"),
                                    (dict(filtration="lead"), "filtration"), (dict(ct_voxel_mm=0), "CT voxel")])
def test_bad_settings_are_rejected_by_name(kw, msg):
    with pytest.raises(ParameterError, match=msg):
        AcquisitionSettings(**kw)
