"""A generated corpus of damaged files and absurd requests, run through the command line.

Every case is made here, in the test (nothing is checked in): truncated and
bit-flipped study files, items of the wrong type or shape, broken optional
items, nonsense geometry, broken DICOM folders and CT series, absurd
parameters.  All of them run through ``volumedr``'s ``main`` in one helper
process (``cli_driver.py``, which names the case it is on, so a crash or a
hang is pinned to it).  For each:

- a case that must be refused: exit status 2, exactly one ``volumedr: error:``
  line, no traceback, the input unchanged, nothing left in the output folder;
- a case with a broken optional item: exit status 0, a ``volumedr: warning:``
  naming the item, the input unchanged, and the item absent from what was
  written;
- a random flip anywhere in the file: one of the two above, never a traceback.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pydicom
import pytest

from volumedr.geometry import Detector, Sweep
from volumedr.io.dicom_export import export_dicom
from volumedr.io.study_file import write_study
from volumedr.progress import drive
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.phantoms.case import load_case
from volumedr.simulate import settings_from_case, simulate_study

HERE = Path(__file__).resolve().parent
CT_DIR = HERE.parents[1] / "shared" / "data" / "chest-ct-cptac-pda" / "series"

pytestmark = pytest.mark.slow

REFUSE, WARN, EITHER = "refuse", "warn", "either"


@dataclass
class Case:
    name: str
    argv: list
    expect: str                     # REFUSE, WARN or EITHER
    message: str = ""               # text the error or warning line must contain
    inputs: list = field(default_factory=list)   # files/folders that must be unchanged
    outdir: Path | None = None      # must be left empty when refused
    check: object = None            # extra check(result) for WARN cases


def digest(path: Path) -> str:
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small, complete study (projections, film, CT reference, slices, case metadata)."""
    root = tmp_path_factory.mktemp("corpus-base")
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800,
                  pivot_height_mm=100, direction="y")
    case = load_case("chest")
    s = simulate_study(case, sweep=sweep, detector=Detector().binned(32), rng=7, ct=True,
                       settings=settings_from_case(case, ct_voxel_mm=8.0))
    s.reconstruction = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=20, z_min_mm=20, z_max_mm=220))
    path = root / "study.h5"
    write_study(path, s)
    dicom = root / "dicom"
    drive(export_dicom(s, dicom))
    return path, dicom, s


def _raw_setattr(ds, key, value):
    """Set a DICOM value as raw bytes, without pydicom's conversion (a damaged file is what we want)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    if key == "PixelData" or not isinstance(value, (list, str, int)):
        setattr(ds, key, value)
        return
    tag = tag_for_keyword(key)
    vr = dictionary_VR(tag)
    text = "\\".join(str(v) for v in value) if isinstance(value, list) else str(value)
    raw = text.encode()
    if len(raw) % 2:
        raw += b" "
    if vr in ("US", "UL", "SS", "SL"):
        setattr(ds, key, value)
        return
    ds._dict[pydicom.tag.Tag(tag)] = RawDataElement(pydicom.tag.Tag(tag), vr, len(raw), raw, 0, False, True)


def _save_raw(ds, path):
    cfg = pydicom.config.settings
    saved = cfg.writing_validation_mode
    cfg.writing_validation_mode = pydicom.config.IGNORE
    try:
        ds.save_as(path)
    finally:
        cfg.writing_validation_mode = saved


def _case_dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "out").mkdir()
    return d


def _flip(path: Path, offset: int, bit: int) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= 1 << bit
    path.write_bytes(bytes(b))


def _chunk_offsets(path: Path, name: str) -> list[tuple[int, int]]:
    with h5py.File(path) as f:
        ds = f[name]
        n = ds.id.get_num_chunks()
        return [(ds.id.get_chunk_info(i).byte_offset, ds.id.get_chunk_info(i).size) for i in range(n)]


def _data_ranges(path: Path) -> list[tuple[int, int]]:
    out = []
    with h5py.File(path) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.chunks:
                for i in range(obj.id.get_num_chunks()):
                    c = obj.id.get_chunk_info(i)
                    out.append((c.byte_offset, c.byte_offset + c.size))
        f.visititems(visit)
    return out


def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def study_cases(root: Path, base_study: Path) -> list[Case]:
    cases: list[Case] = []
    size = base_study.stat().st_size
    rng = np.random.default_rng(20261201)

    def new(name, argv_fn, expect, message="", prepare=None, check=None):
        d = _case_dir(root, name)
        p = d / "study.h5"
        shutil.copyfile(base_study, p)
        if prepare is not None:
            prepare(p)
        out = d / "out"
        cases.append(Case(name, argv_fn(p, out), expect, message, inputs=[p], outdir=out,
                          check=(lambda res, p=p, out=out: check(p, out, res)) if check else None))

    readers = {
        "info": lambda p, out: ["info", str(p)],
        "reconstruct": lambda p, out: ["reconstruct", str(p), "--spacing", "20", "-o", str(out / "r.h5")],
        "export": lambda p, out: ["export-dicom", str(p), str(out / "dicom")],
        "inplace": lambda p, out: ["reconstruct", str(p), "--spacing", "25"],
    }

    # 1. truncated files: every reader refuses them
    for i, cut in enumerate(np.unique(np.linspace(0, size - 1, 24).astype(int))):
        for cmd in ("info", "reconstruct", "inplace"):
            new(f"truncated-{i}-{cmd}", readers[cmd], REFUSE, "",
                prepare=lambda p, cut=cut: p.write_bytes(p.read_bytes()[:cut]))

    # 2. bit flips in the data of required items: refused by the commands that read them
    for i, (off, n) in enumerate(rng.choice(_chunk_offsets(base_study, "projections"), 8, replace=False)):
        pos = int(off + rng.integers(0, n))
        for cmd in ("reconstruct", "export", "inplace"):
            new(f"flip-projections-{i}-{cmd}", readers[cmd], REFUSE, "/projections",
                prepare=lambda p, pos=pos: _flip(p, pos, 3))
    src_off = _chunk_offsets(base_study, "geometry/source_positions_mm")
    for i, (off, n) in enumerate(src_off[:1] * 3):
        pos = int(off + 8 * i + 5)
        new(f"flip-sources-{i}", readers["info"], REFUSE, "source_positions_mm",
            prepare=lambda p, pos=pos: _flip(p, pos, 6))

    # 3. bit flips in optional data: a warning, and the item is not passed on
    def no_film_series(p, out, res):
        assert not (out / "dicom" / "film").exists()
        assert (out / "dicom" / "projections").is_dir()

    def no_slices_kept(p, out, res):
        with h5py.File(out / "r.h5") as f:
            assert "reconstruction" in f and "ct_reference" in f

    def no_ct_kept(p, out, res):
        with h5py.File(out / "r.h5") as f:
            assert "ct_reference" not in f and "reconstruction" in f and "dr" in f

    for name, item, cmd, check in [("dr", "/dr", "export", no_film_series),
                                   ("ct_reference", "/ct_reference", "reconstruct", no_ct_kept),
                                   ("reconstruction/slices", "/reconstruction", "export", None),
                                   ("reconstruction/slices", "", "reconstruct", no_slices_kept)]:  # replaced unread
        chunks = _chunk_offsets(base_study, name)
        for i in range(3):
            off, n = chunks[int(rng.integers(0, len(chunks)))]
            pos = int(off + rng.integers(0, n))
            new(f"flip-{name.replace('/', '-')}-{i}-{cmd}", readers[cmd], WARN, item,
                prepare=lambda p, pos=pos: _flip(p, pos, 1), check=check)

    # 4. random flips anywhere outside the data chunks (object headers, B-trees, heaps, superblock)
    data = _data_ranges(base_study)
    n_meta = 0
    while n_meta < 60:
        pos = int(rng.integers(0, size))
        if any(a <= pos < b for a, b in data):
            continue
        cmd = ("info", "reconstruct", "export")[n_meta % 3]
        new(f"flip-meta-{n_meta}-{cmd}", readers[cmd], EITHER, "",
            prepare=lambda p, pos=pos: _flip(p, pos, int(pos % 8)))
        n_meta += 1

    # 5. items of the wrong type or shape, missing, or nonsense
    def replace(name, value, attrs=None):
        def fn(f):
            old = dict(f[name].attrs) if name in f and attrs is None else (attrs or {})
            if name in f:
                del f[name]
            if value is not None:
                f[name] = value
                for k, v in old.items():
                    f[name].attrs[k] = v
        return lambda p: _edit(p, fn)

    def set_attr(obj, key, value):
        def fn(f):
            f[obj].attrs[key] = value
        return lambda p: _edit(p, fn)

    def del_attr(obj, key):
        def fn(f):
            del f[obj].attrs[key]
        return lambda p: _edit(p, fn)

    refused = [
        ("projections-strings", replace("projections", np.array(["a", "b"], dtype="S")), "/projections"),
        ("projections-2d", replace("projections", np.zeros((4, 4), np.float32)), "/projections"),
        ("projections-missing", replace("projections", None), "/projections"),
        ("projections-empty", replace("projections", np.zeros((0, 64, 64), np.float32)), "empty"),
        ("projections-group", lambda p: _edit(p, lambda f: (f.__delitem__("projections"),
                                                            f.create_group("projections"))), "/projections"),
        ("geometry-missing", replace("geometry", None), "/geometry"),
        ("sources-strings", replace("geometry/source_positions_mm", np.array([b"x"] * 25)), "source_positions_mm"),
        ("sources-2cols", replace("geometry/source_positions_mm", np.ones((25, 2))), "source_positions_mm"),
        ("sources-nan", replace("geometry/source_positions_mm",
                                np.tile([np.nan, 0.0, 1800.0], (25, 1))), "source_positions_mm"),
        ("sources-below", replace("geometry/source_positions_mm", np.tile([0.0, 0.0, -5.0], (25, 1))),
         "above the detector"),
        ("sources-count", replace("geometry/source_positions_mm", np.tile([0.0, 0.0, 1800.0], (24, 1))), "views"),
        ("centres-strings", replace("geometry/detector_centres_mm", np.array([b"x"] * 25)), "detector_centres_mm"),
        ("centres-shape", replace("geometry/detector_centres_mm", np.zeros((3, 3))), "detector_centres_mm"),
        ("pitch-string", set_attr("geometry", "detector_pixel_pitch_mm", "wide"), "detector_pixel_pitch_mm"),
        ("pitch-missing", del_attr("geometry", "detector_pixel_pitch_mm"), "detector_pixel_pitch_mm"),
        ("pitch-zero", set_attr("geometry", "detector_pixel_pitch_mm", [0.0, 0.0]), "pitch"),
        ("pitch-nan", set_attr("geometry", "detector_pixel_pitch_mm", [np.nan, 1.0]), "detector_pixel_pitch_mm"),
        ("format-missing", lambda p: _edit(p, lambda f: f.attrs.__delitem__("format")), "not a volumedr study"),
        ("format-version-text", set_attr("/", "format_version", "one"), "format_version"),
        ("format-version-future", set_attr("/", "format_version", 99), "format_version 99"),
    ]
    for name, prep, msg in refused:
        for cmd in ("info", "reconstruct"):
            new(f"{name}-{cmd}", readers[cmd], REFUSE, msg, prepare=prep)
    # no sweep: every view from one source position
    for cmd in ("reconstruct", "inplace"):
        new(f"no-sweep-{cmd}", readers[cmd], REFUSE, "same source position",
            prepare=replace("geometry/source_positions_mm", np.tile([0.0, 0.0, 1800.0], (25, 1))))
    # not HDF5 at all, empty, a folder
    for name, content in [("empty-file", b""), ("text-file", b"hello, this is not a study\n"),
                          ("hdf5-signature-only", b"\x89HDF\r\n\x1a\n" + b"\0" * 100),
                          ("random-bytes", rng.integers(0, 256, 5000).astype(np.uint8).tobytes())]:
        new(name, readers["info"], REFUSE, "", prepare=lambda p, c=content: p.write_bytes(c))

    # broken optional items: a warning, the rest opens, the broken item is not passed on
    def no_item(item):
        def check(p, out, res):
            written = out / "r.h5"
            with h5py.File(written) as f:
                where, _, attr = item.partition(" attribute ")
                where = where.lstrip("/")
                if attr:
                    assert attr not in f[where].attrs, item
                else:
                    assert where not in f, item
        return check

    optional = [
        ("angles-strings", replace("geometry/angles_deg", np.array([b"a"] * 25)), "/geometry/angles_deg"),
        ("angles-count", replace("geometry/angles_deg", np.zeros(3)), "/geometry/angles_deg"),
        ("film-strings", replace("dr", np.array([b"film"] * 4)), "/dr"),
        ("film-shape", replace("dr", np.zeros((10, 20), np.float32)), "/dr"),
        ("film-nan", replace("dr", np.full((64, 64), np.nan, np.float32)), "/dr"),
        ("ct-no-spacing", del_attr("ct_reference", "spacing_mm"), "/ct_reference"),
        ("ct-no-origin", del_attr("ct_reference", "origin_mm"), "/ct_reference"),
        ("ct-spacing-zero", set_attr("ct_reference", "spacing_mm", [0.0, 2.0, 2.0]), "/ct_reference"),
        ("ct-2d", replace("ct_reference", np.zeros((4, 4), np.float32), attrs={"spacing_mm": [1, 1, 1],
                                                                            "origin_mm": [0, 0, 0]}),
         "/ct_reference"),
        ("case-findings-not-json", set_attr("case", "findings", "[{broken"), "/case attribute findings"),
        ("case-findings-not-list", set_attr("case", "findings", '{"a": 1}'), "/case attribute findings"),
        ("case-findings-no-centre", set_attr("case", "findings", '[{"name": "x", "size_mm": 3}]'),
         "/case attribute findings"),
        ("case-sweep-not-json", set_attr("case", "sweep", "linear, 30 degrees"), "/case attribute sweep"),
        ("case-sweep-bad-sid", set_attr("case", "sweep", '{"source_to_image_mm": "far"}'), "/case attribute sweep"),
        ("case-defaults-not-json", set_attr("case", "reconstruction_defaults", "fbp please"),
         "/case attribute reconstruction_defaults"),
        ("case-defaults-bad-range", set_attr("case", "reconstruction_defaults", '{"range_mm": [50, -3]}'),
         "/case attribute reconstruction_defaults"),
        ("case-dose-not-json", set_attr("case", "dose_sweep", "low"), "/case attribute dose_sweep"),
        ("case-object-range", set_attr("case", "object_height_range_mm", "[1, nan]"),
         "/case attribute object_height_range_mm"),
        ("case-axes", set_attr("case", "patient_axes", "XYZ"), "/case attribute patient_axes"),
        ("recon-zero-spacing", set_attr("reconstruction", "pixel_spacing_mm", [0.0, 0.0]), "/reconstruction"),
        ("recon-unknown-method", set_attr("reconstruction", "method", "magic"), "/reconstruction"),
        ("recon-height-count", set_attr("reconstruction", "heights_mm", [1.0, 2.0]), "/reconstruction"),
        ("recon-no-slices", lambda p: _edit(p, lambda f: f["reconstruction"].__delitem__("slices")),
         "/reconstruction"),
        ("recon-params-not-json", set_attr("reconstruction", "parameters", "[1, 2"), "/reconstruction"),
    ]
    for name, prep, item in optional:
        check = no_item(item) if item != "/reconstruction" else None
        new(f"{name}-reconstruct", readers["reconstruct"], WARN, item, prepare=prep, check=check)
        new(f"{name}-info", readers["info"], WARN, item, prepare=prep)
    # an invalid study UID: the export repairs it (a fresh, valid UID) and says so
    def valid_uids(p, out, res):
        for f in (out / "dicom").rglob("*.dcm"):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            assert pydicom.uid.UID(ds.StudyInstanceUID).is_valid, ds.StudyInstanceUID
    new("case-bad-uid-export", readers["export"], WARN, "study_instance_uid",
        prepare=set_attr("case", "study_instance_uid", "1.2.3.abc..x"), check=valid_uids)
    return cases


def dicom_cases(root: Path, dicom: Path) -> list[Case]:
    cases: list[Case] = []
    rng = np.random.default_rng(5)

    def new(name, prepare, message=""):
        d = _case_dir(root, name)
        folder = d / "in"
        shutil.copytree(dicom / "projections", folder)
        prepare(folder)
        out = d / "out"
        cases.append(Case(name, ["import-dicom", str(folder), "-o", str(out / "s.h5")], REFUSE, message,
                          inputs=[folder], outdir=out))

    files = sorted((dicom / "projections").glob("*.dcm"))
    first = files[0].name

    def truncate(cut):
        def fn(folder):
            for f in sorted(folder.glob("*.dcm"))[:3]:
                f.write_bytes(f.read_bytes()[:cut])
        return fn

    for cut in (0, 10, 128, 131, 200, 400, 1000, 2000, 4000, 6000):
        new(f"dicom-truncated-{cut}", truncate(cut))

    def edit(fn):
        def prepare(folder):
            ds = pydicom.dcmread(folder / first)
            fn(ds)
            _save_raw(ds, folder / first)
        return prepare

    def delete(*keys):
        def fn(ds):
            for k in keys:
                if k in ds:
                    delattr(ds, k)
        return fn

    def setv(key, value):
        return lambda ds: _raw_setattr(ds, key, value)

    def all_files(fn):
        def prepare(folder):
            for f in folder.glob("*.dcm"):
                ds = pydicom.dcmread(f)
                fn(ds)
                _save_raw(ds, f)
        return prepare

    new("dicom-empty-folder", lambda folder: [f.unlink() for f in folder.glob("*")], "no DICOM files")
    new("dicom-garbage", lambda folder: [f.write_bytes(rng.integers(0, 256, 3000).astype(np.uint8).tobytes())
                                         for f in folder.glob("*.dcm")])
    new("dicom-no-pixels", all_files(delete("PixelData")))
    new("dicom-short-pixels", edit(lambda ds: _raw_setattr(ds, "PixelData", ds.PixelData[:100])))
    new("dicom-no-rows", edit(delete("Rows")))
    new("dicom-rows-zero", all_files(setv("Rows", 0)))
    new("dicom-no-spacing", all_files(delete("ImagerPixelSpacing", "PixelSpacing")))
    new("dicom-spacing-text", all_files(setv("ImagerPixelSpacing", ["a", "b"])))
    new("dicom-spacing-zero", all_files(setv("ImagerPixelSpacing", [0, 0])))
    new("dicom-bits-odd", edit(setv("BitsAllocated", 12)))
    new("dicom-two-studies", edit(setv("StudyInstanceUID", "1.2.3.4")))
    new("dicom-duplicate", lambda folder: shutil.copyfile(folder / first, folder / "copy.dcm"))
    new("dicom-angle-text", all_files(setv("PositionerPrimaryAngle", "north")))
    new("dicom-one-view", lambda folder: [f.unlink() for f in sorted(folder.glob("*.dcm"))[1:]])
    new("dicom-not-a-folder", lambda folder: None)
    cases[-1].argv[1] = str(Path(cases[-1].argv[1]) / first)
    new("dicom-missing-folder", lambda folder: None)
    cases[-1].argv[1] = str(Path(cases[-1].argv[1]) / "nosuch")
    return cases


def ct_cases(root: Path) -> list[Case]:
    if not CT_DIR.is_dir():
        return []
    cases: list[Case] = []
    src = sorted(CT_DIR.glob("*.dcm"))[40:46]

    def new(name, prepare, message=""):
        d = _case_dir(root, name)
        folder = d / "ct"
        folder.mkdir()
        for f in src:
            shutil.copyfile(f, folder / f.name)
        prepare(folder)
        out = d / "out"
        cases.append(Case(name, ["simulate", "--from-ct", str(folder), "-o", str(out / "ct.h5"), "--bin", "32",
                                 "--no-ct", "--projections", "25"], REFUSE, message, inputs=[folder], outdir=out))

    def one(fn, k=2):
        def prepare(folder):
            f = sorted(folder.glob("*.dcm"))[k]
            ds = pydicom.dcmread(f)
            fn(ds)
            _save_raw(ds, f)
        return prepare

    def setv(key, value):
        return lambda ds: _raw_setattr(ds, key, value)

    new("ct-position-nan", one(setv("ImagePositionPatient", [0, 0, "nan"])), "ImagePositionPatient")
    new("ct-position-text", one(setv("ImagePositionPatient", ["a", "b", "c"])), "ImagePositionPatient")
    new("ct-position-short", one(setv("ImagePositionPatient", [0, 0])), "ImagePositionPatient")
    new("ct-same-position", lambda folder: [one(setv("ImagePositionPatient", [0, 0, 0]), k)(folder)
                                            for k in range(6)], "")
    new("ct-no-position", one(lambda ds: delattr(ds, "ImagePositionPatient")), "ImagePositionPatient")
    new("ct-orientation-nan", one(setv("ImageOrientationPatient", [1, 0, 0, 0, "nan", 0])), "Orientation")
    new("ct-orientation-zero", lambda folder: [one(setv("ImageOrientationPatient", [0, 0, 0, 0, 0, 0]), k)(folder)
                                               for k in range(6)], "Orientation")
    new("ct-spacing-zero", lambda folder: [one(setv("PixelSpacing", [0, 0]), k)(folder) for k in range(6)],
        "PixelSpacing")
    new("ct-spacing-nan", lambda folder: [one(setv("PixelSpacing", ["nan", 1]), k)(folder) for k in range(6)],
        "PixelSpacing")
    new("ct-size-differs", one(lambda ds: (setattr(ds, "Rows", 256), setattr(ds, "PixelData", ds.PixelData[:len(
        ds.PixelData) // 2]))), "differs")
    new("ct-short-pixels", one(lambda ds: setattr(ds, "PixelData", ds.PixelData[:1000])), "pixel data")
    new("ct-slope-text", one(setv("RescaleSlope", "steep")), "RescaleSlope")
    new("ct-slope-nan", one(setv("RescaleSlope", "nan")), "RescaleSlope")
    new("ct-two-slices", lambda folder: [f.unlink() for f in sorted(folder.glob("*.dcm"))[2:]], "at least 3")
    new("ct-truncated", lambda folder: [f.write_bytes(f.read_bytes()[:3000]) for f in folder.glob("*.dcm")], "")
    new("ct-garbage", lambda folder: [f.write_bytes(b"\0" * 200 + b"DICM" + b"\xff" * 500)
                                      for f in folder.glob("*.dcm")], "")
    new("ct-tilted", one(setv("GantryDetectorTilt", 12)), "tilt")
    new("ct-empty", lambda folder: [f.unlink() for f in folder.glob("*.dcm")], "no DICOM files")
    return cases


def parameter_cases(root: Path, base_study: Path) -> list[Case]:
    cases: list[Case] = []

    def new(name, argv_fn, message=""):
        d = _case_dir(root, name)
        p = d / "study.h5"
        shutil.copyfile(base_study, p)
        out = d / "out"
        cases.append(Case(name, argv_fn(p, out), REFUSE, message, inputs=[p], outdir=out))

    sim = lambda *a: (lambda p, out: ["simulate", "chest", "-o", str(out / "s.h5"), "--no-ct", *a])  # noqa: E731
    rec = lambda *a: (lambda p, out: ["reconstruct", str(p), "-o", str(out / "r.h5"), *a])  # noqa: E731
    for a, msg in [(("--bin", "0"), "--bin"), (("--bin", "-3"), "--bin"), (("--bin", "x"), "--bin"),
                   (("--bin", "100000"), "bin"), (("--seed", "-1"), "--seed"), (("--seed", "1.5"), "--seed"),
                   (("--seed", str(2**70)), "--seed"),
                   (("--angle", "nan"), "--angle"), (("--angle", "inf"), "--angle"), (("--angle", "-10"), "angle"),
                   (("--angle", "1e9"), "angle"), (("--projections", "0"), "--projections"),
                   (("--projections", "100000000"), "projections"), (("--kvp", "0"), "kVp"),
                   (("--kvp", "1e6"), "kVp"), (("--kvp", "nan"), "--kvp"), (("--mas", "-1"), "mAs"),
                   (("--mas", "0"), "mAs"), (("--mas", "1e15"), "mAs"), (("--sid", "0"), ""),
                   (("--sid", "-100"), ""), (("--pivot", "-10"), "pivot"), (("--pivot", "1e7"), "pivot"),
                   (("--scatter", "-1"), "scatter"), (("--scatter", "1e6"), "scatter"),
                   (("--film-mas", "-2"), "mAs"), (("--ct-voxel", "0"), "voxel"), (("--ct-voxel", "-1"), "voxel"),
                   (("--ct-voxel", "1e-4"), ""), (("--sweep", "spiral"), "--sweep"),
                   (("--direction", "z"), "--direction")]:
        new("sim" + "".join(a).replace("-", "_").replace(".", "p"), sim(*a), msg)
    new("sim-from-ct-and-case", lambda p, out: ["simulate", "chest", "--from-ct", str(out), "-o", str(out / "s.h5")],
        "either")
    new("sim-output-folder", lambda p, out: ["simulate", "chest", "-o", str(out)], "folder")
    for a, msg in [(("--spacing", "-1"), "spacing"), (("--spacing", "0"), "spacing"), (("--spacing", "nan"), "--spacing"),
                   (("--thickness", "-2"), "thickness"), (("--thickness", "inf"), "--thickness"),
                   (("--range", "nan:50"), "range"), (("--range", "10:inf"), "range"), (("--range", ":"), "ZMIN:ZMAX"),
                   (("--range", "5"), "ZMIN:ZMAX"), (("--range", "1e9:2e9"), ""), (("--method", "art"), "--method"),
                   (("--method", "sart", "--iterations", "0"), "--iterations"),
                   (("--method", "sart", "--iterations", "500"), "1 to 200"),
                   (("--method", "sart", "--subsets", "26"), "outnumber"),
                   (("--method", "sart", "--tv", "-0.5"), "TV weight"), (("--method", "sart", "--tv", "nan"), "--tv"),
                   (("--method", "sart", "--init", "random"), "--init"), (("--iterations", "3"), "--method sart"),
                   (("--range", "1:1000", "--spacing", "0.1"), "")]:
        new("rec" + "".join(a).replace("-", "_").replace(".", "p").replace(":", "_"), rec(*a), msg)
    new("export-bad-series", lambda p, out: ["export-dicom", str(p), str(out / "d"), "--series", "x-rays"], "--series")
    new("export-into-file", lambda p, out: ["export-dicom", str(p), str(p)], "")
    for a, msg in [(("--to", "nonsense"), "AET@HOST:PORT"), (("--to", "A@127.0.0.1:0"), "port"),
                   (("--to", "A@127.0.0.1:99999"), "port"), (("--to", "A@127.0.0.1:1", "--timeout", "-1"), "timeout"),
                   (("--to", "A@127.0.0.1:1", "--timeout", "nan"), "--timeout"),
                   (("--to", "A@127.0.0.1:1", "--timeout", "1e9"), "timeout")]:
        new("echo" + "".join(a).replace("-", "_").replace(".", "p").replace(":", "_").replace("@", "_"),
            lambda p, out, a=a: ["echo", *a], msg)
    new("info-missing", lambda p, out: ["info", str(out / "nosuch.h5")], "no such file")
    new("info-folder", lambda p, out: ["info", str(out)], "folder")
    return cases


def run_corpus(cases: list[Case], root: Path, timeout_s: float = 900) -> list[dict]:
    spec = [{"argv": c.argv, "cwd": str(root)} for c in cases]
    (root / "cases.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(HERE / "cli_driver.py"), str(root / "cases.json"),
                           str(root / "results.json")], capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        started = [line for line in proc.stdout.splitlines() if line.startswith("CASE ")]
        last = cases[int(started[-1].split()[1])] if started else None
        pytest.fail(f"the driver died (rc {proc.returncode}) on case {last.name if last else '?'} "
                    f"{last.argv if last else ''}:\n{proc.stderr[-3000:]}")
    return json.loads((root / "results.json").read_text())


def judge(case: Case, res: dict, before: dict) -> str | None:
    """None if the case behaved, else what went wrong."""
    err = res["stderr"].strip().splitlines()
    if res["traceback"] or "Traceback" in res["stderr"]:
        return f"traceback:\n{res['traceback'] or res['stderr']}"
    for p in case.inputs:
        if (digest(p) if p.exists() else None) != before[str(p)]:
            return "the input changed"
    # no temporaries left anywhere around the case
    leftovers = [str(q) for q in case.outdir.parent.rglob("*") if "volumedr-incomplete" in q.name]
    if leftovers:
        return f"temporaries left behind: {leftovers}"
    expect = case.expect
    if expect == EITHER:
        expect = REFUSE if res["rc"] != 0 else WARN
    if expect == REFUSE:
        if res["rc"] != 2:
            return f"exit status {res['rc']}, expected 2; stderr: {res['stderr'][-500:]}"
        if len(err) != 1 or not err[0].startswith("volumedr: error:"):
            return f"expected one 'volumedr: error:' line, got {err}"
        if case.message and case.message not in err[0]:
            return f"the error does not name {case.message!r}: {err[0]}"
        if case.outdir is not None and any(case.outdir.iterdir()):
            return f"output left behind: {[q.name for q in case.outdir.iterdir()]}"
        return None
    if res["rc"] != 0:
        return f"exit status {res['rc']}, expected 0 with a warning; stderr: {res['stderr'][-500:]}"
    if any(not line.startswith("volumedr: warning:") for line in err):
        return f"stderr has more than warnings: {err}"
    if case.expect == WARN and case.message and not any(case.message in line for line in err):
        return f"no warning names {case.message!r}: {err}"
    if case.check is not None:
        try:
            case.check(res)
        except AssertionError as exc:
            return f"check failed: {exc}"
    return None


def test_damaged_files_and_absurd_requests_give_one_clear_line(base, tmp_path):
    base_study, dicom, _ = base
    cases = (study_cases(tmp_path, base_study) + dicom_cases(tmp_path, dicom) + ct_cases(tmp_path)
             + parameter_cases(tmp_path, base_study))
    assert len(cases) >= 300, len(cases)
    before = {str(p): (digest(p) if p.exists() else None) for c in cases for p in c.inputs}
    results = run_corpus(cases, tmp_path)
    bad = {}
    for c, res in zip(cases, results):
        why = judge(c, res, before)
        if why:
            bad[c.name] = (c.argv, why)
    refused = sum(1 for r in results if r["rc"] == 2)
    assert not bad, f"{len(bad)} of {len(cases)} cases misbehaved ({refused} refused in all):\n" + "\n".join(
        f"- {k}: {v[1][:800]}\n    {' '.join(map(str, v[0]))}" for k, v in list(bad.items())[:40])


def test_the_installed_command_prints_no_traceback(base, tmp_path):
    """The console script itself, as a user runs it, on a few of the corpus' kinds."""
    base_study, _, _ = base
    exe = Path(sys.executable).parent / "volumedr"
    cut = tmp_path / "cut.h5"
    cut.write_bytes(base_study.read_bytes()[: base_study.stat().st_size // 2])
    flipped = tmp_path / "flip.h5"
    shutil.copyfile(base_study, flipped)
    off, n = _chunk_offsets(base_study, "projections")[3]
    _flip(flipped, off + n // 2, 2)
    for argv, msg in [([str(cut)], "damaged"), ([str(flipped)], "/projections")]:
        r = subprocess.run([str(exe), "reconstruct", *argv], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("volumedr: error:") and msg in lines[0], r.stderr
    r = subprocess.run([str(exe), "simulate", "chest", "-o", str(tmp_path / "x.h5"), "--bin", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--bin" in r.stderr, r.stderr
