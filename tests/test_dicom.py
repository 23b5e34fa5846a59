"""DICOM export and import: validated with dciodvfy (dicom3tools), pixels and geometry round-trip."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from volumedr.cli.main import main
from volumedr.errors import Cancelled, StudyFileError
from volumedr.geometry import Detector, Sweep
from volumedr.geometry.patient import PatientFrame
from volumedr.io.dicom_export import DX_SCALE, PRIVATE_GROUP, export_dicom
from volumedr.io.dicom_import import import_dicom
from volumedr.io.study_file import read_study, write_study
from volumedr.progress import CancelToken, drive
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.simulate import simulate_study

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian dicom3tools) is not installed")


@pytest.fixture(scope="module")
def study():
    """A small chest study with a reconstruction (25 views of 128 x 128)."""
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800, pivot_height_mm=100,
                  direction="y")
    s = simulate_study("chest", sweep=sweep, detector=Detector().binned(16), rng=3, ct=False)
    s.reconstruction = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=10, thickness_mm=10,
                                                                         z_min_mm=20, z_max_mm=220))
    return s


@pytest.fixture(scope="module")
def exported(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("dicom") / "export"
    summary = drive(export_dicom(study, out))
    return out, summary


def dciodvfy_errors(path: Path) -> list[str]:
    r = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]


@needs_dciodvfy
@pytest.mark.parametrize("as_", ["ct", "dx"])
def test_every_exported_file_passes_dciodvfy(study, tmp_path, as_):
    out = tmp_path / "export"
    summary = drive(export_dicom(study, out, as_=as_))
    assert len(summary.files) == 1 + 25 + len(study.reconstruction.heights_mm) + 1  # + the answer-key SR
    bad = {}
    for f in summary.files:
        errs = dciodvfy_errors(f)
        if errs:
            bad[str(f.relative_to(out))] = errs
    assert bad == {}


def test_slices_form_one_scrollable_series(study, exported):
    out, summary = exported
    files = sorted((out / "slices").glob("*.dcm"))
    dss = [pydicom.dcmread(f) for f in files]
    rec = study.reconstruction
    assert len(dss) == len(rec.heights_mm)
    assert {d.SOPClassUID for d in dss} == {"1.2.840.10008.5.1.4.1.1.2"}
    assert len({d.SeriesInstanceUID for d in dss}) == 1
    assert len({d.FrameOfReferenceUID for d in dss}) == 1
    assert len({d.SOPInstanceUID for d in dss}) == len(dss)
    assert [int(d.InstanceNumber) for d in dss] == list(range(1, len(dss) + 1))
    # the slices step along the normal of their orientation by the spacing (a stack any viewer can sort)
    iop = np.array(dss[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(iop[0], iop[1])
    pos = np.array([np.array(d.ImagePositionPatient, float) for d in dss])
    steps = np.diff(pos @ normal)
    assert np.allclose(steps, 10.0, atol=1e-3)
    assert np.allclose(np.linalg.norm(np.diff(pos, axis=0), axis=1), 10.0, atol=1e-3)  # no in-plane drift
    assert np.allclose([float(d.SliceLocation) for d in dss], np.sort(rec.heights_mm))
    assert float(dss[0].SpacingBetweenSlices) == pytest.approx(10.0)
    assert float(dss[0].SliceThickness) == pytest.approx(10.0)
    # PA chest: rows run to the patient's left, columns to the feet, slices go posterior with height
    assert np.allclose(iop, [[1, 0, 0], [0, 0, -1]])
    assert normal @ [0, 1, 0] == pytest.approx(1.0)
    # magnification-corrected pixel spacing: the slice grid, not the detector pitch
    assert np.allclose(np.array(dss[0].PixelSpacing, float), rec.pixel_spacing_mm, rtol=1e-5)
    assert float(dss[0].PixelSpacing[0]) < study.geometry.detector.pitch_row_mm
    # rescaled values are the reconstruction's to within half a quantum
    for d, s in zip(dss, np.argsort(rec.heights_mm)):
        v = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
        assert np.max(np.abs(v - rec.slices[s])) <= 0.51 * float(d.RescaleSlope)
    assert 0 < float(dss[0].WindowWidth)
    # a fictional patient and understandable descriptions
    assert str(dss[0].PatientName).startswith("PHANTOM^")
    assert dss[0].PatientIdentityRemoved == "YES"
    assert "Tomo slices FBP" in dss[0].SeriesDescription


def test_projections_carry_tomosynthesis_acquisition_and_geometry(study, exported):
    out, _ = exported
    dss = [pydicom.dcmread(f) for f in sorted((out / "projections").glob("*.dcm"))]
    assert len(dss) == 25
    d = dss[0]
    assert d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.1.1"
    assert d.PresentationIntentType == "FOR PROCESSING"
    assert d.TomoClass == "TOMOSYNTHESIS"
    assert float(d.TomoAngle) == pytest.approx(30.0)
    assert float(d.TomoLayerHeight) == pytest.approx(100.0)
    assert int(d.NumberOfTomosynthesisSourceImages) == 25
    assert np.allclose(np.array(d.ImagerPixelSpacing, float), study.geometry.detector.pitch_row_mm)
    angles = [float(x.PositionerPrimaryAngle) for x in dss]
    assert np.allclose(angles, study.geometry.angles_deg, atol=1e-3)
    sid = [float(x.DistanceSourceToDetector) for x in dss]
    assert np.allclose(sid, np.linalg.norm(study.geometry.source_positions_mm, axis=1), atol=0.01)
    src = np.array([x.private_block(PRIVATE_GROUP, "VOLUMEDR 1")[0x01].value for x in dss])
    assert np.allclose(src, study.geometry.source_positions_mm)


def test_export_round_trips_through_import(study, exported):
    out, _ = exported
    back = import_dicom(out)
    assert np.max(np.abs(back.projections - study.projections)) <= DX_SCALE
    assert np.allclose(back.geometry.source_positions_mm, study.geometry.source_positions_mm)
    assert np.max(np.abs(back.dr - study.dr)) <= DX_SCALE
    r0, r1 = study.reconstruction, back.reconstruction
    assert np.allclose(r1.heights_mm, r0.heights_mm)
    assert np.allclose(r1.origin_mm, r0.origin_mm) and np.allclose(r1.pixel_spacing_mm, r0.pixel_spacing_mm)
    step = np.abs(r0.slices).max() / 32000
    assert np.max(np.abs(r1.slices - r0.slices)) <= step
    assert back.metadata["study_instance_uid"] == study.metadata["study_instance_uid"]
    # the imported projections reconstruct to the same slices
    again = reconstruct(back.projections, back.geometry, ReconSettings(spacing_mm=10, thickness_mm=10,
                                                                      z_min_mm=20, z_max_mm=220))
    assert np.max(np.abs(again.slices - r0.slices)) < 0.01 * np.abs(r0.slices).max()


def test_import_from_standard_attributes_only(study, exported, tmp_path):
    """Without volumedr's private attributes the geometry comes from Positioner Primary Angle, SID and Tomo Layer Height."""
    out, _ = exported
    dst = tmp_path / "plain"
    dst.mkdir()
    for f in sorted((out / "projections").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for el in list(ds):
            if el.tag.group == PRIVATE_GROUP:
                del ds[el.tag]
        ds.save_as(dst / f.name)
    back = import_dicom(dst, sweep_direction="y")
    assert np.allclose(back.geometry.source_positions_mm, study.geometry.source_positions_mm, atol=0.05)
    # LOG data without a private scale are read at the same 1/4096 scale, less the export's offset
    assert np.allclose(back.projections - 0.25, study.projections, atol=DX_SCALE)


def test_cli_export_then_import(study, tmp_path, capsys):
    h5 = tmp_path / "s.h5"
    write_study(h5, study)
    assert main(["export-dicom", str(h5), str(tmp_path / "dcm"), "--series", "projections,slices"]) == 0
    assert "25 projections" in capsys.readouterr().out
    assert not (tmp_path / "dcm" / "film").exists()
    assert main(["export-dicom", str(h5), str(tmp_path / "dcm")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["import-dicom", str(tmp_path / "dcm"), "-o", str(tmp_path / "back.h5")]) == 0
    back = read_study(tmp_path / "back.h5")
    assert back.geometry.n_views == 25 and back.reconstruction is not None


def test_cancelled_export_leaves_nothing(study, tmp_path):
    token = CancelToken()
    out = tmp_path / "export"
    seen = []

    def on_progress(p):
        seen.append(p)
        if len(seen) == 10:
            token.cancel()

    with pytest.raises(Cancelled):
        drive(export_dicom(study, out), on_progress=on_progress, cancel=token)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_broken_input_is_named(exported, tmp_path, capsys):
    out, _ = exported
    # not DICOM
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    with pytest.raises(StudyFileError, match="no DICOM files"):
        import_dicom(junk)
    # a view of another size
    odd = tmp_path / "odd"
    shutil.copytree(out / "projections", odd)
    ds = pydicom.dcmread(odd / "IM0007.dcm")
    ds.Rows = ds.Rows // 2
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    ds.save_as(odd / "IM0007.dcm")
    with pytest.raises(StudyFileError, match=r"IM0007.dcm: image size .* differs"):
        import_dicom(odd)
    # geometry missing: no private positions and no Positioner Primary Angle
    nogeo = tmp_path / "nogeo"
    shutil.copytree(out / "projections", nogeo)
    ds = pydicom.dcmread(nogeo / "IM0003.dcm")
    for el in list(ds):
        if el.tag.group == PRIVATE_GROUP:
            del ds[el.tag]
    del ds.PositionerPrimaryAngle
    ds.save_as(nogeo / "IM0003.dcm")
    with pytest.raises(StudyFileError, match=r"IM0003.dcm: missing attribute PositionerPrimaryAngle"):
        import_dicom(nogeo)
    # a CT series is not a tomosynthesis acquisition: the message says what to do
    assert main(["import-dicom", str(out / "slices"), "-o", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("volumedr: error:") and "--from-ct" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()


def test_patient_frames():
    pa = PatientFrame("LFP")
    assert pa.view_position == "PA"
    assert np.allclose(pa.to_lps([10, 20, 30]), [10, 30, -20])
    assert np.allclose(pa.from_lps(pa.to_lps([1, 2, 3])), [1, 2, 3])
    ap = PatientFrame("RFA")
    assert ap.view_position == "AP"
    assert PatientFrame.from_orientation(pa.image_orientation()).axes == "LFP"
    # radiological convention: the patient's right on the viewer's left, PA and AP alike
    assert pa.display_sides() == (False, "R", "L") and ap.display_sides() == (True, "R", "L")
    lat = PatientFrame("PFR")  # a left lateral: shown as stored, its sides named
    assert lat.view_position == "LL" and lat.display_sides() == (False, "A", "P")
    assert PatientFrame("AFL").view_position == "RL"
    with pytest.raises(Exception, match="right-handed"):
        PatientFrame("LFA")
    with pytest.raises(Exception, match="tilted"):
        PatientFrame.from_orientation([1, 0, 0, 0, 0.97, -0.24])


def _reading_marks(study):
    from volumedr.reading import Mark

    f = study.findings[0]
    x, y, z = f["centre_mm"]
    return [Mark("tomo", x, y, z, 5), Mark("tomo", x + 40.0, y, z - 20.0, 2), Mark("film", -30.0, 12.5, None, 3)]


@needs_dciodvfy
def test_the_answer_key_and_a_reading_are_dicom_srs_that_pass_dciodvfy(study, tmp_path):
    out = tmp_path / "export"
    summary = drive(export_dicom(study, out, kinds=("film", "slices", "answer-key"),
                                 reading=(_reading_marks(study), "Ada Lovelace")))
    srs = [f for f in summary.files if f.parent.name in ("answer_key", "reading_Ada_Lovelace")]
    assert len(srs) == 2
    for f in srs:
        assert dciodvfy_errors(f) == [], f


def test_the_answer_key_reads_back_to_the_same_points_in_the_slices_frame(study, exported):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    out, summary = exported
    ds = pydicom.dcmread(out / "answer_key" / "SR0001.dcm")
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(study.findings)
    slices = [pydicom.dcmread(f) for f in sorted((out / "slices").glob("*.dcm"))]
    assert ds.StudyInstanceUID == slices[0].StudyInstanceUID and ds.PatientID == slices[0].PatientID
    cited = {ref.ReferencedSOPInstanceUID for s in ds.CurrentRequestedProcedureEvidenceSequence
             for item in s.ReferencedSeriesSequence for ref in item.ReferencedSOPSequence}
    assert cited == {s.SOPInstanceUID for s in slices}
    for f, g in zip(study.findings, groups):
        assert str(g.tracking_identifier) == f["name"]
        assert g.roi.frame_of_reference_uid == slices[0].FrameOfReferenceUID
        lps = np.asarray(g.roi.value, float).reshape(3)
        # the point is where the slice at the finding's height puts the finding's (x, y)
        k = int(np.argmin([abs(float(s.SliceLocation) - f["centre_mm"][2]) for s in slices]))
        s = slices[k]
        iop = np.array(s.ImageOrientationPatient, float).reshape(2, 3)
        ipp = np.array(s.ImagePositionPatient, float)
        x0, y0 = study.reconstruction.origin_mm
        in_plane = lps - ipp
        expect_xy = np.array(f["centre_mm"][:2]) - [x0, y0]
        assert np.allclose([in_plane @ iop[0], in_plane @ iop[1]], expect_xy, atol=1e-3)
        normal = np.cross(iop[0], iop[1])
        assert in_plane @ normal == pytest.approx(f["centre_mm"][2] - float(s.SliceLocation), abs=1e-3)
        assert g.get_measurements(name=codes.SCT.Diameter)[0].value == pytest.approx(f["size_mm"])
        assert g.finding_type.value == "786838002" and g.finding_type.scheme_designator == "SCT"


def test_import_dicom_reads_the_answer_key_back_into_the_findings(study, exported, tmp_path):
    out, _ = exported
    back = import_dicom(out)
    assert [f["name"] for f in back.findings] == [f["name"] for f in study.findings]
    for a, b in zip(back.findings, study.findings):
        assert np.allclose(a["centre_mm"], b["centre_mm"], atol=1e-4) and a["size_mm"] == b["size_mm"]
        assert a["code"] == b["code"]
    h5 = tmp_path / "back.h5"
    write_study(h5, back)
    assert [f["name"] for f in read_study(h5).findings] == [f["name"] for f in study.findings]


def test_a_reading_sr_holds_the_marks_with_their_confidence(study, tmp_path, capsys):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    marks = _reading_marks(study)
    csv_path = tmp_path / "marks.csv"
    csv_path.write_text("modality,x_mm,y_mm,z_mm,confidence\n" + "".join(
        f"{m.modality},{m.x_mm},{m.y_mm},{'' if m.z_mm is None else m.z_mm},{m.confidence}\n" for m in marks))
    h5 = tmp_path / "s.h5"
    write_study(h5, study)
    assert main(["export-dicom", str(h5), str(tmp_path / "dcm"), "--reading", str(csv_path)]) == 2
    assert "--reading needs --reader" in capsys.readouterr().err
    assert main(["export-dicom", str(h5), str(tmp_path / "dcm"), "--reading", str(csv_path), "--reader",
                 "Ada Lovelace"]) == 0
    ds = pydicom.dcmread(tmp_path / "dcm" / "reading_Ada_Lovelace" / "SR0001.dcm")
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    assert any(str(item.get("PersonName", "")) == "Lovelace^Ada" for item in ds.ContentSequence)  # the observer
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == 3
    frame = PatientFrame(study.metadata.get("patient_axes", "LFP"))
    for m, g in zip(marks, groups):
        assert g.get_measurements(name=codes.DCM.CertaintyOfFinding)[0].value == m.confidence
        if m.modality == "tomo":
            assert np.allclose(frame.from_lps(np.asarray(g.roi.value, float).reshape(3)), [m.x_mm, m.y_mm, m.z_mm])
        else:  # a point on the film image, in its pixels
            det = study.geometry.detector
            col, row = np.asarray(g.roi.value, float).reshape(2)
            assert col == pytest.approx(m.x_mm / det.pitch_col_mm + (det.cols - 1) / 2 + 0.5)
            assert row == pytest.approx(m.y_mm / det.pitch_row_mm + (det.rows - 1) / 2 + 0.5)
    # the reading is not an answer key: importing the folder reads the findings from the answer key only
    back = import_dicom(tmp_path / "dcm")
    assert len(back.findings) == len(study.findings)
