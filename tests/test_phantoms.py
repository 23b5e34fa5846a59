import numpy as np
import pytest

from helpers import make_case
from volumedr.errors import CaseError
from volumedr.geometry import AcquisitionGeometry, Detector
from volumedr.phantoms import case_names, load_case, load_case_file
from volumedr.phantoms.materials import bundled_materials, mu_table
from volumedr.phantoms.primitives import box, cylinder, cylinder_between, ellipsoid, pack, sphere
from volumedr.simulate.project import path_lengths


def one_ray_geometry(src, pixel_xy, pitch=0.1):
    """A 1 x 1 detector whose only pixel is centred at pixel_xy."""
    det = Detector(rows=1, cols=1, pitch_row_mm=pitch, pitch_col_mm=pitch)
    return AcquisitionGeometry(det, [src], [[pixel_xy[0], pixel_xy[1], 0.0]])


def chord(prims, src, pixel_xy):
    g = one_ray_geometry(src, pixel_xy)
    packed = pack(prims)
    L = path_lengths(packed, g, 0)
    return {n: float(L[i, 0, 0]) for i, n in enumerate(packed.material_names)}


def test_chord_through_sphere_centre_is_its_diameter():
    assert chord([sphere((3, -2, 50), 7.5, "water")], (3, -2, 1000), (3, -2))["water"] == pytest.approx(15.0, rel=1e-6)


def test_oblique_chord_through_sphere_matches_closed_form():
    c, r = np.array([10.0, 5.0, 60.0]), 12.0
    s, p = np.array([-150.0, 40.0, 900.0]), np.array([30.0, -7.0, 0.0])
    d = (p - s) / np.linalg.norm(p - s)
    dist = np.linalg.norm(np.cross(c - s, d))
    expect = 2 * np.sqrt(r * r - dist * dist)
    assert chord([sphere(c, r, "water")], s, p[:2])["water"] == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("angle", [0.0, 10.0, 25.0, 40.0])
def test_slab_line_integral_is_mu_t_over_cos(angle):
    t = 30.0
    slab = box((0, 0, 50), (4000, 4000, t), "soft_tissue")
    src = (0.0, 0.0, 1000.0)
    x = 1000.0 * np.tan(np.deg2rad(angle))
    L = chord([slab], src, (x, 0.0))["soft_tissue"]
    assert L == pytest.approx(t / np.cos(np.deg2rad(angle)), rel=1e-6)
    mu = mu_table(["soft_tissue"], [60.0])[0, 0]
    assert mu * L == pytest.approx(mu * t / np.cos(np.deg2rad(angle)), rel=1e-6)


def test_cylinder_along_any_axis_has_exact_chords():
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    cyl = cylinder((0, 0, 80), axis, 10.0, 200.0, "muscle")
    # a vertical ray through the axis crosses the full diameter
    assert chord([cyl], (0, 0, 1000), (0, 0))["muscle"] == pytest.approx(20.0, rel=1e-5)
    # a vertical cylinder: a vertical ray through it crosses both end caps (its length)
    assert chord([cylinder((0, 0, 80), (0, 0, 1), 5.0, 40.0, "muscle")], (0, 0, 1000), (0, 0))["muscle"] == \
        pytest.approx(40.0, rel=1e-6)
    # tilted 45 degrees in x-z: a ray through the axis at angle theta to it crosses 2 r / sin(theta)
    tilted = cylinder_between((-60, 0, 20), (60, 0, 140), 6.0, "muscle")
    assert chord([tilted], (0, 0, 1000), (0, 0))["muscle"] == pytest.approx(12.0 / np.sin(np.pi / 4), rel=1e-6)


def test_later_primitives_replace_earlier_ones():
    big = sphere((0, 0, 50), 20, "lung")
    nod = sphere((0, 0, 50), 5, "soft_tissue")
    out = chord([big, nod], (0, 0, 1000), (0, 0))
    assert out["lung"] == pytest.approx(30.0, rel=1e-6) and out["soft_tissue"] == pytest.approx(10.0, rel=1e-6)
    # reversed order: the big sphere hides the small one entirely
    out = chord([nod, big], (0, 0, 1000), (0, 0))
    assert out["soft_tissue"] == pytest.approx(0.0, abs=1e-9) and out["lung"] == pytest.approx(40.0, rel=1e-6)


def test_rotated_ellipsoid_bounds_and_containment():
    e = ellipsoid((0, 0, 50), (30, 10, 5), "fat", rotation_deg=(0, 0, 90))
    lo, hi = e.bounding_box_mm()
    assert hi[1] == pytest.approx(30) and hi[0] == pytest.approx(10)
    assert e.contains([0, 29, 50]) and not e.contains([29, 0, 50])


def test_materials_come_from_xraylib_with_published_values():
    mats = bundled_materials()
    for need in ("air", "lung", "fat", "soft_tissue", "muscle", "blood", "water", "cancellous_bone",
                 "cortical_bone", "titanium", "cocr", "calcium_oxalate"):
        assert need in mats
    mu60 = dict(zip(mats, mu_table(list(mats), [60.0])[:, 0] * 10))  # 1/cm
    assert mu60["water"] == pytest.approx(0.206, rel=0.02)
    assert mu60["lung"] == pytest.approx(0.053, rel=0.05)
    assert mu60["cortical_bone"] == pytest.approx(0.60, rel=0.05)
    assert mu60["cocr"] == pytest.approx(11.6, rel=0.05)
    assert mu60["calcium_oxalate"] == pytest.approx(0.71, rel=0.08)
    e = np.array([30.0, 60.0, 100.0])
    assert np.all(np.diff(mu_table(["soft_tissue"], e)[0]) < 0)  # attenuation falls with energy


def test_chest_phantom_case_loads_with_anatomy_and_findings():
    assert "chest" in case_names() and "chest_phantom" in case_names()
    c = load_case("chest_phantom")
    labels = " ".join(p.label for p in c.primitives)
    for part in ("rib", "vertebral", "heart", "lung", "liver", "clavicle"):
        assert part in labels
    sizes = [f.size_mm for f in c.findings]
    assert min(sizes) >= 4 and max(sizes) <= 12
    assert any(f.occult_on_plain_film and "heart" in f.description for f in c.findings)


def test_real_anatomy_cases_name_and_cite_their_ct_within_the_size_budget():
    # issue 14: every case on a CT records the collection and subject and carries the CC BY citation; the
    # bundled volumes together stay within 80 MB
    from pathlib import Path

    real = {n: load_case(n) for n in case_names()}
    real = {n: c for n, c in real.items() if c.volume is not None}
    assert {"chest", "cspine", "gallbladder"} <= set(real), sorted(real)
    for name, c in real.items():
        assert c.anatomy_source.startswith("CT: TCIA "), (name, c.anatomy_source)
        assert "CC BY 3.0" in c.notes and "Clark K" in c.notes, name
    for name in set(case_names()) - set(real):
        assert load_case(name).anatomy_source == "analytic", name
    phantoms = Path(load_case("chest").source).parent
    total = sum(f.stat().st_size for f in phantoms.glob("*.npz"))
    assert total <= 80e6, f"bundled volumes {total / 1e6:.1f} MB"


def test_bad_case_files_name_file_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('[case]\nname = "bad"\n\n[[object]]\ntype = "sphere"\nmaterial = "water"\ncentre_mm = [0,0,50]\n'
                 'radius_mm = 5\n\n[[object]]\ntype = "sphere"\nmaterial = "unobtainium"\ncentre_mm = [0,0,50]\n'
                 'radius_mm = 5\n')
    with pytest.raises(CaseError, match=r"bad.toml:10 .*unknown material 'unobtainium'"):
        load_case_file(p)
    p.write_text('[case]\nname = "bad"\n[[object]]\ntype = "sphere"\nmaterial = "water"\ncentre_mm = [0,0]\n'
                 'radius_mm = -5\n')
    with pytest.raises(CaseError, match="bad.toml:3"):
        load_case_file(p)
    p.write_text("[case\nname=")
    with pytest.raises(CaseError, match="not valid TOML"):
        load_case_file(p)
    with pytest.raises(CaseError, match="unknown case 'nosuch'"):
        load_case("nosuch")


def test_case_helper_builds_cases():
    c = make_case([sphere((0, 0, 50), 5, "water")])
    assert c.bounds_mm()[1, 2] == pytest.approx(55)
