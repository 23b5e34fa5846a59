"""Simulating volume DR from a real CT: reading series robustly, HU -> attenuation, the voxel projector."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from helpers import exact_projections, sweep_geometry
from volumedr.errors import StudyFileError
from volumedr.geometry import Detector, Sweep
from volumedr.io.ct_series import case_from_ct, read_ct_series
from volumedr.phantoms.materials import mu_table
from volumedr.phantoms.primitives import sphere
from volumedr.phantoms.volume import VoxelVolume, hu_bone, insert_sphere, material_fractions
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.reconstruct.engine import SliceGrid, plane_coefficients
from volumedr.simulate import _kernels as K
from volumedr.simulate import simulate_study
from volumedr.simulate.voxel import VoxelLengths
from volumedr.workflow import sharpest_slice

CT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest-ct-cptac-pda" / "series"
needs_ct = pytest.mark.skipif(not CT_DIR.is_dir(), reason="the shared CPTAC-PDA chest CT is not present")


# ------------------------------------------------------------------------------------------ physics
def test_hu_to_attenuation_reproduces_the_ct_numbers():
    e = 70.0
    hu = np.array([-1000, -850, -100, 0, 40, 300, 1000, hu_bone(e)], np.float32)
    w, b = material_fractions(hu, e)
    mu_w, mu_b = mu_table(["water", "cortical_bone"], [e])[:, 0]
    back = 1000 * ((w * mu_w + b * mu_b) / mu_w - 1)
    assert np.allclose(back, hu, atol=0.5)
    assert (w[0], b[0]) == (0, 0) and (w[3], b[3]) == (1, 0) and b[-1] == pytest.approx(1.0)
    assert 1000 < hu_bone(e) < 2500  # cortical bone at 70 keV


@pytest.mark.parametrize("fill", ["dense", "sparse"])
def test_plane_projector_matches_numpy_reference(fill):
    rng = np.random.default_rng(0)
    vols = rng.random((2, 5, 40, 50), dtype=np.float32)
    if fill == "sparse":  # a body in air: the kernel skips the empty columns and rows, with the same result
        body = np.zeros((5, 40, 50), bool)
        body[1:4, 6:30, 12:41] = True
        body[2, 10:12, :] = True  # a row that reaches both edges
        vols *= body[None]
        vols[1, :, :, 30:] = 0.0  # a second material with a narrower extent
    det = Detector(rows=37, cols=45, pitch_row_mm=1.3, pitch_col_mm=1.1)
    g = sweep_geometry(n=25, det=det)
    grid = SliceGrid((40, 50), (1.5, 1.2), (-30.0, -25.0))
    heights = np.linspace(20, 60, 5)
    a_col, b_col, a_row, b_row = (c[:, 0, 1].copy() for c in plane_coefficients(g, grid, heights[:, None]))
    out = np.empty((2, 37, 45), np.float32)
    spans = np.empty((2, 5, 40, 2), np.int32)
    K.nonzero_spans(vols, spans)
    K.project_planes(vols, a_col, b_col, a_row, b_row, out, spans)
    r, c = np.meshgrid(np.arange(37), np.arange(45), indexing="ij")
    ref = np.zeros_like(out, dtype=np.float64)
    for m in range(2):
        for s in range(5):
            coords = [(r - b_row[s]) / a_row[s], (c - b_col[s]) / a_col[s]]
            ref[m] += ndimage.map_coordinates(vols[m, s].astype(np.float64), coords, order=1, mode="grid-constant", cval=0.0)
    assert np.allclose(out, ref, atol=1e-4)


def test_voxel_path_lengths_match_exact_chords():
    """A voxelised water sphere projects like the analytic sphere, up to voxel partial-volume."""
    det = Detector(rows=96, cols=96, pitch_row_mm=1.0, pitch_col_mm=1.0)
    g = sweep_geometry(n=25, angle=40, sid=1000, pivot=50, det=det)
    centre, radius = (4.0, -6.0, 60.0), 25.0
    vox = 1.0
    vol = VoxelVolume(hu=np.full((100, 80, 80), -1000.0, np.float32), spacing_mm=(vox, vox, vox),
                      origin_mm=(-39.5, -39.5, 10.5), effective_energy_kev=60.0)
    insert_sphere(vol, centre, 2 * radius, 0.0)
    lengths = VoxelLengths(vol)
    exact = exact_projections([sphere(centre, radius, "water")], g, 60.0)
    mu_w = mu_table(["water"], [60.0])[0, 0]
    for v in (0, 12, 24):
        L = lengths(g, v)
        got = L[0] * mu_w
        inside = exact[v] > 0.5 * exact[v].max()
        rel = np.abs(got[inside] - exact[v][inside]) / exact[v][inside]
        assert np.median(rel) < 0.01
        assert got.sum() == pytest.approx(exact[v].sum(), rel=0.01)  # the sphere's volume is conserved
        assert np.all(L[1] == 0)


def test_obliquity_of_a_uniform_slab():
    det = Detector(rows=64, cols=64, pitch_row_mm=2.0, pitch_col_mm=2.0)
    g = sweep_geometry(n=25, angle=60, sid=600, pivot=50, det=det)
    vol = VoxelVolume(hu=np.zeros((40, 300, 300), np.float32), spacing_mm=(1.0, 2.0, 2.0),
                      origin_mm=(-299.0, -299.0, 10.5), effective_energy_kev=60.0)
    L = VoxelLengths(vol)(g, 0)[0]
    s = g.source_positions_mm[0]
    x, y = g.pixel_centres_mm(0)
    ray = np.sqrt((x[None, :] - s[0]) ** 2 + (y[:, None] - s[1]) ** 2 + s[2] ** 2) / s[2]
    assert np.allclose(L, 40.0 * ray, rtol=2e-3)


# ------------------------------------------------------------------------------------------ real CT
@pytest.fixture(scope="module")
def ct():
    return read_ct_series(CT_DIR)


@needs_ct
def test_reads_the_real_chest_ct(ct):
    assert ct.hu.shape == (102, 512, 512)
    assert ct.pixel_spacing_mm == pytest.approx((0.8828125, 0.8828125))
    # air outside the patient and subcutaneous fat where the literature puts it (-190 .. -30 HU)
    assert np.median(ct.hu[:, :20, :20]) == pytest.approx(-1000, abs=30)
    fat = ct.hu[(ct.hu > -190) & (ct.hu < -30)]
    assert fat.size > 100000


def _copy_slices(dst: Path, n=12):
    dst.mkdir()
    files = sorted(CT_DIR.glob("*.dcm"))[40:40 + n]
    for f in files:
        shutil.copy(f, dst / f.name)
    return sorted(dst.glob("*.dcm"))


@needs_ct
def test_scanner_quirks_are_read(tmp_path):
    ref = read_ct_series(_copy_slices(tmp_path / "ref").__getitem__(0).parent)
    quirky = tmp_path / "quirky"
    files = _copy_slices(quirky)
    order = np.random.default_rng(1).permutation(len(files))
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        if i == 0:  # bare data set: no preamble, no file meta, implicit VR little endian
            ds.preamble = None
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.save_as(f, implicit_vr=True, little_endian=True)
            assert f.read_bytes()[128:132] != b"DICM"
            continue
        if i == 1:  # padding value marks outside-the-field pixels
            a = ds.pixel_array.copy()
            a[:5, :5] = 0
            ds.add_new(0x00280120, "SS" if ds.PixelRepresentation else "US", 0)  # Pixel Padding Value
            ds.PixelData = a.tobytes()
        f.rename(quirky / f"x{order[i]:03d}.dcm")  # names no longer in slice order
        ds.save_as(quirky / f"x{order[i]:03d}.dcm")
    got = read_ct_series(quirky)
    pos_ref = ref.positions_mm[:, 2]
    perm = [int(np.argmin(np.abs(pos_ref - z))) for z in got.positions_mm[:, 2]]
    assert np.allclose(np.sort(got.positions_mm[:, 2]), np.sort(pos_ref))
    for i, j in enumerate(perm):
        same = np.isclose(got.hu[i], ref.hu[j]) | (got.hu[i] == -1000)
        assert same.all()


@needs_ct
def test_uneven_slice_spacing_is_resampled(ct):
    from volumedr.phantoms.volume import volume_from_axial_ct

    keep = np.ones(len(ct.hu), bool)
    keep[[30, 31, 60]] = False  # gaps of 6 and 9 mm
    full = volume_from_axial_ct(ct.hu, ct.positions_mm, ct.orientation, ct.pixel_spacing_mm, voxel_mm=(4, 4, 4))
    gappy = volume_from_axial_ct(ct.hu[keep], ct.positions_mm[keep], ct.orientation, ct.pixel_spacing_mm,
                                 voxel_mm=(4, 4, 4))
    assert gappy.hu.shape == full.hu.shape
    assert np.median(np.abs(gappy.hu - full.hu)) < 5


@needs_ct
@pytest.mark.parametrize("change, message", [
    ("tilt", "gantry tilt 12"),
    ("size", "differs from"),
    ("series", "2 CT series"),
    ("orientation", "ImageOrientationPatient differs"),
])
def test_unusable_series_are_refused_by_name(tmp_path, change, message):
    files = _copy_slices(tmp_path / "s", n=6)
    ds = pydicom.dcmread(files[2])
    if change == "tilt":
        ds.GantryDetectorTilt = 12
    elif change == "size":
        ds.Rows = 256
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    elif change == "series":
        ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    else:
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0.97, -0.24]
    ds.save_as(files[2])
    with pytest.raises(StudyFileError, match=message):
        read_ct_series(tmp_path / "s")


@needs_ct
def test_simulated_from_ct_a_nodule_is_in_focus_at_its_height(tmp_path):
    case = case_from_ct(CT_DIR, voxel_mm=3.0)
    vol = case.volume
    assert case.bounds_mm()[0, 2] == pytest.approx(15.0, abs=3.0)  # anterior skin against the detector
    # a 10 mm solid nodule in the right mid zone, 105 mm behind the anterior skin
    centre = (-90.0, -60.0, 120.0)
    before = vol.hu[tuple(np.round([(centre[2] - vol.origin_mm[2]) / 3, (centre[1] - vol.origin_mm[1]) / 3,
                                    (centre[0] - vol.origin_mm[0]) / 3]).astype(int))]
    assert before < -600, "the nodule site should be aerated lung"
    insert_sphere(vol, centre, 10.0, 40.0)
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=31, source_to_image_mm=1800,
                  pivot_height_mm=100, direction="y")
    s = simulate_study(case, sweep=sweep, detector=Detector().binned(4), rng=2, noise=False, ct=False)
    assert s.dr.shape == (512, 512)
    rec = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=3, z_min_mm=60, z_max_mm=200))
    row, col = rec.pixel_of(centre[0], centre[1])
    h = rec.heights_mm[sharpest_slice(rec.slices, row, col, rec.pixel_spacing_mm[0])]
    assert abs(h - centre[2]) <= 6.0


def test_the_default_chest_is_real_anatomy_with_analytic_nodules():
    from volumedr.phantoms.case import load_case
    from volumedr.simulate.acquire import case_ct_reference

    case = load_case("chest")
    assert case.volume is not None and len(case.primitives) == len(case.findings) == 6
    assert "CPTAC-PDA" in case.notes and "CC BY 3.0" in case.notes
    assert case.anatomy_source == "CT: TCIA CPTAC-PDA, subject C3N-00249"
    vol = case.volume
    ct = case_ct_reference(case)
    for f in case.findings:
        x, y, z = f.centre_mm
        k = tuple(int(round((v - o) / s)) for v, o, s in zip((z, y, x), vol.origin_mm[::-1], vol.spacing_mm))
        assert ct.hu[k] > -100, f"{f.name}: not in the CT pane at its centre"
        assert f.code == "SCT:786838002"
        # each nodule sits in aerated lung of the real CT (the voxels around it, outside its own radius)
        r = f.size_mm / 2 + 4
        box = tuple(slice(int(round((v - r - o) / s)), int(round((v + r - o) / s)) + 1)
                    for v, o, s in zip((z, y, x), vol.origin_mm[::-1], vol.spacing_mm))
        assert (vol.hu[box] < -700).mean() > 0.6, f"{f.name}: not in lung"
    # the enhanced vessels' contrast is taken out (a radiograph's patient has none): soft tissue stays
    # below 60 HU plus a tenth of its enhancement outside bone
    assert np.percentile(vol.hu[(vol.hu > 0) & (vol.hu < 300)], 50) <= 70


def test_unenhanced_takes_contrast_out_of_vessels_and_keeps_bone():
    from volumedr.phantoms.volume import unenhanced

    hu = np.full((20, 20, 20), 40.0, np.float32)
    hu[8:12, :, 2:5] = 250.0        # an enhanced vessel running along y
    hu[6:14, :, 10:18] = 900.0      # a bone: cortex ...
    hu[8:12, :, 12:16] = 250.0      # ... with marrow of the same HU as the vessel
    out = unenhanced(hu)
    assert np.allclose(out[8:12, :, 2:5], 60.0 + 0.1 * 190.0)
    assert np.all(out[8:12, :, 12:16] == 250.0) and np.all(out[6:14, :, 10:18] >= 250.0)
    assert np.all(out[hu == 40.0] == 40.0)


def test_bad_volume_cases_name_file_and_line(tmp_path):
    from volumedr.errors import CaseError
    from volumedr.phantoms.case import load_case_file

    p = tmp_path / "bad.toml"
    p.write_text('[case]\nname = "bad"\n\n[volume]\nfile = "missing.npz"\n')
    with pytest.raises(CaseError, match=r"bad.toml:4: volume file .*missing.npz not found"):
        load_case_file(p)
    np.savez(tmp_path / "v.npz", hu=np.zeros((4, 4, 4), np.int16), spacing_mm=[2, 2, 2], origin_mm=[0, 0, 10])
    p.write_text('[case]\nname = "bad"\n\n[volume]\nfile = "v.npz"\n\n[[lesion]]\ncentre_mm = [0, 0, 12]\n'
                 'diameter_mm = 2\nhu = 40\n\n[[lesion]]\ncentre_mm = [900, 0, 12]\ndiameter_mm = 2\nhu = 40\n')
    with pytest.raises(CaseError, match=r"bad.toml:12 \(lesion 2\): lesion at .* outside"):
        load_case_file(p)


def test_cli_simulate_needs_a_case_or_a_ct(tmp_path, capsys):
    from volumedr.cli.main import main

    assert main(["simulate", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--from-ct" in capsys.readouterr().err
    assert main(["simulate", "--from-ct", str(tmp_path), "-o", str(tmp_path / "x.h5")]) == 2
    assert "no DICOM files" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


SHARED = CT_DIR.parents[1]


@pytest.mark.parametrize("series, body_part, expected", [
    ("chest-ct-cptac-pda", "CHEST", "chest"), ("head-ct-cptac-lscc", "HEAD", "sinus"),
    ("abdomen-pelvis-ct-tcga-ov", "OVARY", "kub"), ("neck-ct-tcga-thca", "THYROID", "cspine")])
def test_the_protocol_is_guessed_from_the_series_body_part(series, body_part, expected):
    from volumedr.io.ct_series import AxialCT, guess_protocol

    first = sorted((SHARED / series / "series").glob("*.dcm"))
    if not first:
        pytest.skip(f"the shared {series} CT is not present")
    ds = pydicom.dcmread(first[0], stop_before_pixels=True)
    assert str(ds.BodyPartExamined).upper() == body_part
    ct = AxialCT(np.zeros((2, 2, 2), np.float32), np.zeros((2, 3)), np.zeros(6), (1.0, 1.0), 120.0,
                 str(ds.get("SeriesDescription", "")), "", 1, body_part=body_part,
                 study_description=str(ds.get("StudyDescription", "")))
    case, why = guess_protocol(ct)
    assert case == expected and body_part in why
    bare = AxialCT(ct.hu, ct.positions_mm, ct.orientation, (1.0, 1.0), 120.0, "", "", 1)
    assert guess_protocol(bare)[0] == "chest"  # nothing to go on: the PA chest


@needs_ct
def test_from_ct_takes_a_cases_protocol_and_places_the_patient_ap_or_pa(tmp_path):
    _copy_slices(tmp_path / "s", n=12)
    pa = case_from_ct(tmp_path / "s", voxel_mm=4.0)  # the series says CHEST
    ap = case_from_ct(tmp_path / "s", voxel_mm=4.0, protocol="kub")
    assert pa.patient_axes == "LFP" and pa.protocol["kvp"] == 120.0 and "'chest'" in pa.notes
    assert ap.patient_axes == "RFA" and ap.protocol["kvp"] == 80.0 and ap.body_part == "ABDOMEN"
    # PA: the spine (bone) lies far from the detector; AP: against it. Left and right swap with it.
    def bone_height(case):
        v = case.volume
        return float(np.average(v.axis_mm("z"), weights=(v.hu > 300).sum(axis=(1, 2))))
    assert bone_height(pa) > bone_height(ap) + 60
    assert np.array_equal(ap.volume.hu, pa.volume.hu[::-1, :, ::-1])
    with pytest.raises(Exception, match="not a bundled case"):
        case_from_ct(tmp_path / "s", protocol="elbow")


def test_cli_protocol_goes_with_from_ct(tmp_path, capsys):
    from volumedr.cli.main import main

    assert main(["simulate", "chest", "--protocol", "kub", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--protocol goes with --from-ct" in capsys.readouterr().err
