"""Read DICOM into a volumedr study (docs/dicom.md).

:func:`import_dicom` turns a folder holding a tomosynthesis projection series
(DX For Processing, one image per view) into a :class:`~volumedr.study.Study`
that reconstructs; a plain film (DX For Presentation) and a slice series
(CT or DX, as volumedr exports them) in the same folder come along.

Geometry of a view, in order of preference:

1. volumedr's private attributes (0009,1001-1002): the exact source and
   detector positions;
2. standard attributes: Positioner Primary Angle (the view angle about the
   pivot), Distance Source to Detector (source to detector centre, per
   view), Tomo Layer Height (the pivot height) and Imager Pixel Spacing,
   for a linear or arc tube sweep over a stationary detector along
   ``sweep_direction`` (default y, the image's column direction).  Sweeps
   that move the detector (opposed) need the private attributes.

Projection values: volumedr's private slope/intercept give line integrals
back exactly (to 1/4096); other LOG data (sign -1) are taken as proportional
to line integrals at the same 1/4096 scale; LIN data as intensities,
converted with p = -ln(I / I0) where I0 is the brightest 0.1 % of each view.

Errors name the file and the attribute; nothing is written here.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from ..errors import StudyFileError
from ..geometry import AcquisitionGeometry, Detector, require_sweep
from ..geometry.patient import PatientFrame
from ..study import Reconstruction, Study
from .values import BadValue, number_array
from .dicom_sr import is_answer_key, read_answer_key
from .dicom_export import DX_PROCESSING, DX_SCALE, PRIVATE_CREATOR, PRIVATE_GROUP


def _files(folder: Path) -> list[Path]:
    if not folder.exists():
        raise StudyFileError(f"{folder}: no such folder")
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_headers(folder: str | os.PathLike, *, pixels: bool = False):
    """(datasets, skipped): every DICOM file under ``folder`` (recursively); non-DICOM files are skipped."""
    folder = Path(folder)
    out, skipped = [], []
    seen = {}
    for p in _files(folder):
        ds = _read_one(p, pixels)
        if ds is None:
            skipped.append(p)
            continue
        uid = str(ds.get("SOPInstanceUID", ""))
        if uid and uid in seen:
            raise StudyFileError(f"{p}: the same image (SOPInstanceUID {uid}) is also in {seen[uid]}; "
                                 "import one copy of a study at a time")
        seen[uid] = p
        ds.filename = str(p)
        out.append(ds)
    if not out:
        raise StudyFileError(f"{folder}: no DICOM files found" + (f" ({len(skipped)} other files skipped)" if skipped else ""))
    return out, skipped


def _read_one(p: Path, pixels: bool):
    """A dataset, or None when the file is not DICOM."""
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise StudyFileError(f"{p}: cannot read: {exc.strerror}") from None
    has_preamble = head[128:132] == b"DICM"
    if p.suffix.lower() == ".dcm" and len(head) < 132 and not head.startswith((b"\x02\x00", b"\x08\x00")):
        raise StudyFileError(f"{p}: a damaged DICOM file ({len(head)} bytes, too short to be DICOM)")
    # no preamble (older scanners write the bare data set): it starts with a group 0002/0008 tag
    if not has_preamble and head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=not pixels, force=not has_preamble)
        except (InvalidDicomError, Exception) as exc:
            if has_preamble:
                raise StudyFileError(f"{p}: a damaged DICOM file (truncated or corrupted: "
                                     f"{str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
            return None
    if has_preamble and "SOPClassUID" not in ds:
        raise StudyFileError(f"{p}: a damaged DICOM file (truncated or corrupted: it has no SOPClassUID)")
    if "SOPClassUID" not in ds and "Rows" not in ds:
        return None
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:  # a bare data set: record how it was encoded
        implicit, little = getattr(ds, "original_encoding", (True, True))
        ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                          pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
    return ds


def numbers(ds, keyword: str, count: int | None = None, *, required: bool = True, positive: bool = False,
            default=None):
    """The values of a numeric attribute as a float array, or a StudyFileError that names the attribute.

    A damaged value (text in a DS, NaN, infinity, the wrong number of values) is an error, never
    a traceback or a NaN passed on."""
    name = getattr(ds, "filename", None) or "DICOM file"
    try:
        v = ds.get(keyword)
    except Exception:  # pydicom converts DS/IS lazily and raises on text it cannot read
        raise StudyFileError(f"{name}: attribute {keyword} is not a number") from None
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise StudyFileError(f"{name}: missing attribute {keyword}")
        return default
    try:
        return number_array(list(v) if isinstance(v, (list, tuple, MultiValue)) else v, keyword, count,
                            positive=positive)
    except BadValue as exc:
        raise StudyFileError(f"{name}: {exc}") from None


def _need(ds, keyword: str):
    if keyword not in ds or ds.get(keyword) in (None, ""):
        raise StudyFileError(f"{ds.filename}: missing attribute {keyword}")
    return ds.get(keyword)


def _private(ds, element: int):
    try:
        blk = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        return blk[element].value
    except KeyError:
        return None


def _pixels(ds) -> np.ndarray:
    try:
        a = ds.pixel_array
    except Exception as exc:
        raise StudyFileError(f"{ds.filename}: cannot decode the pixel data ({exc})") from None
    if a.ndim != 2:
        raise StudyFileError(f"{ds.filename}: expected a single-frame greyscale image, got pixel shape {a.shape}")
    return a


def _classify(ds) -> str:
    sop = str(ds.get("SOPClassUID", ""))
    if str(ds.get("Modality", "")) == "SR":
        return "answer-key" if is_answer_key(ds) else "report"
    if sop == DX_PROCESSING or str(ds.get("PresentationIntentType", "")).upper() == "FOR PROCESSING":
        return "projections"
    if _private(ds, 0x06) is not None or ("ImagePositionPatient" in ds and "ImageOrientationPatient" in ds):
        return "slices"
    return "film"


def _series(datasets):
    by = defaultdict(list)
    for ds in datasets:
        by[str(ds.get("SeriesInstanceUID", "(no series UID)"))].append(ds)
    return by


def _spacing(ds, keyword="ImagerPixelSpacing") -> tuple[float, float]:
    if keyword not in ds and "PixelSpacing" not in ds:
        raise StudyFileError(f"{ds.filename}: missing attribute {keyword} (or PixelSpacing)")
    v = numbers(ds, keyword if keyword in ds else "PixelSpacing", 2, positive=True)
    return float(v[0]), float(v[1])


def _projection_values(ds) -> np.ndarray:
    a = _pixels(ds).astype(np.float64)
    slope = _private(ds, 0x03)
    if slope is not None:
        return (a * _float(slope, ds, "volumedr rescale slope") + _float(_private(ds, 0x04) or 0.0, ds,
                                                                     "volumedr rescale intercept")).astype(np.float32)
    rel = str(ds.get("PixelIntensityRelationship", "LOG")).upper()
    if rel == "LIN":
        i0 = max(float(np.percentile(a, 99.9)), 1e-6)
        return (-np.log(np.maximum(a, 1e-6) / i0)).astype(np.float32)
    sign = float(numbers(ds, "PixelIntensityRelationshipSign", 1, required=False, default=[-1.0])[0])
    a = a * DX_SCALE
    return (a if sign < 0 else a.max() - a).astype(np.float32)


def _view_geometry(ds, direction: str):
    src = _private(ds, 0x01)
    if src is not None:
        det = _private(ds, 0x02)
        return (_vector(src, ds, "volumedr source position"),
                _vector(det if det is not None else (0, 0, 0), ds, "volumedr detector centre"))
    angle = float(numbers(ds, "PositionerPrimaryAngle", 1)[0])
    dist = float(numbers(ds, "DistanceSourceToDetector", 1)[0])
    pivot = float(numbers(ds, "TomoLayerHeight", 1)[0])
    # the source sits at angle theta about the pivot (0, 0, p) and at distance D from the detector
    # centre: off = (z - p) tan(theta) and off^2 + z^2 = D^2 (true of linear and arc sweeps alike)
    t2 = np.tan(np.radians(angle)) ** 2
    disc = pivot ** 2 * t2 ** 2 - (1 + t2) * (pivot ** 2 * t2 - dist ** 2)
    if dist <= pivot or disc < 0:
        raise StudyFileError(f"{ds.filename}: DistanceSourceToDetector {dist:g} mm, TomoLayerHeight {pivot:g} mm "
                             f"and PositionerPrimaryAngle {angle:g} deg do not describe a tube above the pivot")
    z = (pivot * t2 + np.sqrt(disc)) / (1 + t2)
    off = (z - pivot) * np.tan(np.radians(angle))
    src = np.array([off, 0.0, z]) if direction == "x" else np.array([0.0, off, z])
    return src, np.zeros(3)


def _float(v, ds, what: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise StudyFileError(f"{ds.filename}: the {what} is not a number ({str(v)[:40]!r})") from None
    if not np.isfinite(x):
        raise StudyFileError(f"{ds.filename}: the {what} is not finite ({x})")
    return x


def _vector(v, ds, what: str) -> np.ndarray:
    try:
        a = np.asarray(v, float).reshape(-1)
    except (TypeError, ValueError):
        raise StudyFileError(f"{ds.filename}: the {what} is not three numbers") from None
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise StudyFileError(f"{ds.filename}: the {what} must be three finite numbers, got {a.tolist()}")
    return a


def _order(ds):
    n = numbers(ds, "InstanceNumber", 1, required=False, default=[0.0])[0]
    a = numbers(ds, "PositionerPrimaryAngle", 1, required=False, default=[0.0])[0]
    return n, a


def _projections(series: list, direction: str):
    series = sorted(series, key=_order)
    first = series[0]
    rows, cols = int(_need(first, "Rows")), int(_need(first, "Columns"))
    pitch = _spacing(first)
    proj = np.empty((len(series), rows, cols), np.float32)
    srcs, dets, angles = [], [], []
    for i, ds in enumerate(series):
        if (int(_need(ds, "Rows")), int(_need(ds, "Columns"))) != (rows, cols):
            raise StudyFileError(f"{ds.filename}: image size {ds.Rows} x {ds.Columns} differs from the series' "
                                 f"{rows} x {cols} (Rows/Columns)")
        if np.max(np.abs(np.subtract(_spacing(ds), pitch))) > 1e-6:
            raise StudyFileError(f"{ds.filename}: ImagerPixelSpacing {_spacing(ds)} differs from the series' {pitch}")
        s, d = _view_geometry(ds, direction)
        srcs.append(s)
        dets.append(d)
        angles.append(float(numbers(ds, "PositionerPrimaryAngle", 1, required=False, default=[np.nan])[0]))
        proj[i] = _projection_values(ds)
    try:
        detector = Detector(rows=rows, cols=cols, pitch_row_mm=pitch[0], pitch_col_mm=pitch[1])
        geom = AcquisitionGeometry(detector, np.array(srcs), np.array(dets),
                                   None if np.isnan(angles).any() else np.array(angles))
        require_sweep(geom)
    except Exception as exc:
        raise StudyFileError(f"{first.filename}: the series' geometry is invalid: {exc}") from None
    return proj, geom, first


def read_slice_series(series: list) -> tuple[Reconstruction, PatientFrame]:
    """A slice series (CT or DX; volumedr's or any stack parallel to the detector) as a Reconstruction."""
    first = series[0]
    axes = _private(first, 0x05)
    iop = _need(first, "ImageOrientationPatient")
    frame = PatientFrame(str(axes)) if axes else PatientFrame.from_orientation(iop)
    items = []
    for ds in series:
        if np.max(np.abs(np.subtract(np.asarray(ds.get("ImageOrientationPatient", iop), float), np.asarray(iop, float)))) > 1e-4:
            raise StudyFileError(f"{ds.filename}: ImageOrientationPatient differs from the rest of the series")
        xyz = frame.from_lps(np.asarray(_need(ds, "ImagePositionPatient"), float))
        h = _private(ds, 0x06)
        items.append((float(h) if h is not None else float(xyz[2]), xyz, ds))
    items.sort(key=lambda t: t[0])
    rows, cols = int(first.Rows), int(first.Columns)
    spacing = tuple(float(v) for v in _need(first, "PixelSpacing"))
    slices = np.empty((len(items), rows, cols), np.float32)
    for i, (_, _, ds) in enumerate(items):
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise StudyFileError(f"{ds.filename}: image size {ds.Rows} x {ds.Columns} differs from the series' {rows} x {cols}")
        a = _pixels(ds).astype(np.float64)
        slope = _private(ds, 0x03)
        if slope is not None and str(ds.get("Modality")) != "CT":
            v = a * float(slope) + float(_private(ds, 0x04) or 0.0)
        else:
            v = a * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0)
        slices[i] = v
    xyz0 = items[0][1]
    method = str(first.get("ConvolutionKernel", "") or "unknown").lower()
    return Reconstruction(slices=slices, heights_mm=np.array([t[0] for t in items]), pixel_spacing_mm=spacing,
                          origin_mm=(float(xyz0[0]), float(xyz0[1])),
                          thickness_mm=float(first.get("SliceThickness", np.nan) or np.nan), method=method,
                          parameters={"imported_from": "DICOM"}), frame


def import_dicom(folder: str | os.PathLike, *, sweep_direction: str = "y") -> Study:
    """A study from a folder of DICOM files (a projection series, plus film and slices when present)."""
    datasets, skipped = read_headers(folder, pixels=True)
    groups = defaultdict(list)
    for uid, series in _series(datasets).items():
        kinds = {_classify(ds) for ds in series}
        if len(kinds) > 1:
            raise StudyFileError(f"{series[0].filename}: series {uid} mixes {', '.join(sorted(kinds))}")
        groups[kinds.pop()].append(series)
    studies = {str(ds.get("StudyInstanceUID", "")) for ds in datasets}
    if len(studies) > 1:
        raise StudyFileError(f"{folder}: files from {len(studies)} different studies (StudyInstanceUID); "
                             "import one study at a time")
    if not groups.get("projections"):
        modalities = {str(ds.get("Modality", "")) for ds in datasets}
        hint = "; to simulate volume DR from a CT series use 'volumedr simulate --from-ct'" if modalities == {"CT"} else ""
        raise StudyFileError(f"{folder}: no tomosynthesis projection series (DX For Processing) found; "
                             f"found {', '.join(f'{len(v)} {k} series' for k, v in groups.items())}{hint}")
    if len(groups["projections"]) > 1:
        raise StudyFileError(f"{folder}: {len(groups['projections'])} projection series; put one series in the folder")
    proj, geom, first = _projections(groups["projections"][0], sweep_direction)
    dr = _projection_values(groups["film"][0][0]) if groups.get("film") else None
    if dr is not None and dr.shape != proj.shape[1:]:
        dr = None
    rec, frame = (read_slice_series(groups["slices"][0]) if groups.get("slices") else (None, None))
    axes = _private(first, 0x05)
    findings = []
    for series in groups.get("answer-key", []):  # the findings, from the answer-key SR beside the slices
        for ds in series:
            findings += read_answer_key(ds, frame or PatientFrame(str(axes) if axes else "LFP"))
    meta = {
        "study_instance_uid": str(first.get("StudyInstanceUID", "")),
        "patient_axes": str(axes) if axes else (frame.axes if frame else "LFP"),
        "imported_from": str(Path(folder).resolve()),
        "case": str(first.get("StudyID", "") or "imported").lower(),
        "case_title": str(first.get("StudyDescription", "")),
        "sweep": {"total_angle_deg": geom.total_angle_deg, "n_projections": geom.n_views,
                  "source_to_image_mm": float(first.get("DistanceSourceToDetector", 0) or 0),
                  "pivot_height_mm": float(first.get("TomoLayerHeight", 0) or 0)},
    }
    if first.get("KVP"):
        meta["acquisition"] = {"kvp": float(first.KVP)}
    if skipped:
        meta["import_skipped_files"] = len(skipped)
    if findings:
        meta["findings_from"] = "DICOM SR answer key"
    return Study(projections=proj, geometry=geom, dr=dr, reconstruction=rec, metadata=meta, findings=findings)
