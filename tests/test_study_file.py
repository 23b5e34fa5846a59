import h5py
import numpy as np
import pytest

from helpers import make_case, small_detector, write_minimal_study
from volumedr.errors import StudyFileError
from volumedr.geometry import Sweep
from volumedr.io.study_file import ReconstructionWriter, read_study, write_reconstruction, write_study
from volumedr.phantoms.primitives import box, sphere
from volumedr.simulate import simulate_study
from volumedr.study import Reconstruction


@pytest.fixture(scope="module")
def study():
    case = make_case([box((0, 0, 50), (100, 100, 80), "soft_tissue"), sphere((0, 0, 50), 5, "cortical_bone")])
    s = simulate_study(case, sweep=Sweep(n_projections=25, source_to_image_mm=1200), detector=small_detector(40, 3.0),
                       rng=0)
    s.findings = [{"name": "bead", "centre_mm": [0, 0, 50], "size_mm": 10}]
    return s


def test_round_trip_keeps_everything(tmp_path, study):
    p = tmp_path / "s.h5"
    write_study(p, study)
    back = read_study(p)
    assert np.array_equal(back.projections, study.projections)
    assert np.array_equal(back.geometry.source_positions_mm, study.geometry.source_positions_mm)
    assert back.geometry.detector.pitch_col_mm == study.geometry.detector.pitch_col_mm
    assert np.array_equal(back.dr, study.dr)
    assert np.allclose(back.ct_reference.hu, study.ct_reference.hu)
    assert back.ct_reference.spacing_mm == study.ct_reference.spacing_mm
    assert back.metadata["dose_sweep"] == study.metadata["dose_sweep"]
    assert back.findings[0]["name"] == "bead"
    with h5py.File(p) as f:  # the documented layout
        assert f.attrs["format"] == "volumedr-study" and f.attrs["format_version"] == 1
        assert f["projections"].dtype == np.float32 and f["geometry/source_positions_mm"].dtype == np.float64
        assert list(f["geometry"].attrs["detector_pixel_pitch_mm"]) == [3.0, 3.0]


def test_minimal_file_from_another_program_is_accepted(tmp_path):
    p = tmp_path / "other.h5"
    write_minimal_study(p, np.zeros((3, 8, 10)), [[-100.0, 0, 1000], [0, 0, 1000], [100, 0, 1000]], (0.5, 0.4))
    s = read_study(p)
    assert s.geometry.detector.shape == (8, 10) and s.geometry.detector.pitch_col_mm == 0.4
    assert np.all(s.geometry.detector_centres_mm == 0) and s.dr is None and s.reconstruction is None


def make_file(p, **drop):
    with h5py.File(p, "w") as f:
        if "format" not in drop:
            f.attrs["format"] = drop.get("format_value", "volumedr-study")
        f.attrs["format_version"] = drop.get("version", 1)
        if "projections" not in drop:
            f["projections"] = drop.get("proj", np.zeros((3, 8, 8), np.float32))
        if "geometry" not in drop:
            g = f.create_group("geometry")
            g["source_positions_mm"] = drop.get("src", np.array([[0.0, 0, 1000]] * 3))
            if "pitch" not in drop:
                g.attrs["detector_pixel_pitch_mm"] = [1.0, 1.0]


@pytest.mark.parametrize("kw,msg", [
    (dict(format=1), "not a volumedr study"), (dict(format_value="other"), "not a volumedr study"),
    (dict(version=7), "format_version 7"), (dict(projections=1), "missing required item /projections"),
    (dict(geometry=1), "missing required item /geometry"), (dict(pitch=1), "detector_pixel_pitch_mm"),
    (dict(proj=np.zeros((8, 8), np.float32)), "3-D"), (dict(src=np.array([[0.0, 0, 1000]] * 2)), "3 views"),
    (dict(src=np.array([[0.0, 0, -10]] * 3)), "above the detector")])
def test_broken_files_are_rejected_with_the_reason(tmp_path, kw, msg):
    p = tmp_path / "bad.h5"
    make_file(p, **kw)
    with pytest.raises(StudyFileError, match=msg):
        read_study(p)


def test_not_hdf5_and_missing_files(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("hello")
    with pytest.raises(StudyFileError, match="not an HDF5 file"):
        read_study(p)
    with pytest.raises(StudyFileError, match="no such file"):
        read_study(tmp_path / "missing.h5")


def test_failed_write_leaves_no_file(tmp_path, study):
    class Boom(Exception):
        pass

    bad = type(study)(projections=study.projections, geometry=study.geometry, metadata={"x": object()})
    p = tmp_path / "s.h5"
    with pytest.raises(TypeError):
        write_study(p, bad)
    assert not p.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(StudyFileError, match="does not exist"):
        write_study(tmp_path / "nope" / "s.h5", study)


def test_aborted_reconstruction_leaves_the_file_as_it_was(tmp_path, study):
    p = tmp_path / "s.h5"
    write_study(p, study)
    rec = Reconstruction(np.ones((2, 4, 5), np.float32), np.array([10.0, 20.0]), (1.0, 1.0), (0.0, 0.0), 1.0, "fbp")
    write_reconstruction(p, rec)
    w = ReconstructionWriter(p, shape=(3, 4, 5), heights_mm=[1, 2, 3], pixel_spacing_mm=(1, 1), origin_mm=(0, 0),
                             thickness_mm=1, method="saa", parameters={})
    w.write(0, np.zeros((1, 4, 5), np.float32))
    w.abort()
    back = read_study(p)
    assert back.reconstruction.method == "fbp" and back.reconstruction.slices.shape == (2, 4, 5)
    with h5py.File(p) as f:
        assert set(f.keys()) >= {"projections", "geometry", "reconstruction"}
        assert not any("partial" in k for k in f.keys())


def test_a_reconstruction_that_would_fill_the_disk_is_refused(tmp_path, study):
    p = tmp_path / "s.h5"
    write_study(p, study)
    before = p.read_bytes()
    with pytest.raises(StudyFileError, match="GiB free"):
        ReconstructionWriter(p, shape=(4000, 200000, 200000), heights_mm=[1.0], pixel_spacing_mm=(1, 1),
                             origin_mm=(0, 0), thickness_mm=1, method="fbp", parameters={})
    assert p.read_bytes() == before
