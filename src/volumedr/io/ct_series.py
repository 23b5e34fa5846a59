"""Read a real CT series robustly, or refuse it with one clear message.

Handles what scanners write: files without the preamble or file meta
(implicit VR), slices in any order and at uneven spacing (sorted and
interpolated by their positions), per-slice Rescale Slope/Intercept, Pixel
Padding Value (set to air), and refuses what it cannot use: gantry tilt,
non-axial or mixed orientations, mixed sizes, several series, no pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import StudyFileError
from ..phantoms.volume import AIR_HU
from ..sysinfo import check_fits
from .dicom_import import _pixels, numbers, read_headers


@dataclass
class AxialCT:
    hu: np.ndarray               # (n, rows, cols) float32, in file-sorted order
    positions_mm: np.ndarray     # (n, 3) Image Position (Patient)
    orientation: np.ndarray      # (6,)
    pixel_spacing_mm: tuple[float, float]
    kvp: float
    description: str
    patient_id: str
    n_files: int
    body_part: str = ""          # Body Part Examined, upper case ("" when absent)
    study_description: str = ""


def read_ct_series(folder: str | os.PathLike) -> AxialCT:
    folder = Path(folder)
    datasets, skipped = read_headers(folder, pixels=True)
    cts = [d for d in datasets if str(d.get("Modality", "CT")) == "CT" and "PixelData" in d]
    if not cts:
        raise StudyFileError(f"{folder}: no CT images with pixel data (found modalities "
                             f"{sorted({str(d.get('Modality', '?')) for d in datasets})})")
    series = {}
    for d in cts:
        series.setdefault(str(d.get("SeriesInstanceUID", "")), []).append(d)
    if len(series) > 1:
        sizes = ", ".join(f"{uid[-12:]} ({len(v)} images)" for uid, v in series.items())
        raise StudyFileError(f"{folder}: holds {len(series)} CT series ({sizes}); point at one series' folder")
    dss = next(iter(series.values()))
    dss = [d for d in dss if "LOCALIZER" not in [str(t).upper() for t in d.get("ImageType", [])]]
    if len(dss) < 3:
        raise StudyFileError(f"{folder}: a CT volume needs at least 3 axial slices, found {len(dss)}")
    first = dss[0]
    geo = [_slice_geometry(d) for d in dss]
    rows, cols, orient0, spacing0 = geo[0][0], geo[0][1], geo[0][3], geo[0][4]
    for d, (r, c, _, orient, spacing, tilt) in zip(dss, geo):
        if abs(tilt) > 0.01:
            raise StudyFileError(f"{d.filename}: gantry tilt {tilt:g} deg (GantryDetectorTilt); volumedr needs an "
                                 "untilted series (resample it to axial first)")
        if (r, c) != (rows, cols):
            raise StudyFileError(f"{d.filename}: image size {r} x {c} differs from "
                                 f"{rows} x {cols} (Rows/Columns)")
        if np.max(np.abs(orient - orient0)) > 1e-4:
            raise StudyFileError(f"{d.filename}: ImageOrientationPatient differs from the rest of the series")
        if np.max(np.abs(spacing - spacing0)) > 1e-4:
            raise StudyFileError(f"{d.filename}: PixelSpacing differs from the rest of the series")
    positions = np.array([g[2] for g in geo])
    normal = np.cross(orient0[:3], orient0[3:])
    depth = positions @ normal
    if np.ptp(depth) < 1e-3:
        raise StudyFileError(f"{folder}: all {len(dss)} slices have the same ImagePositionPatient along the "
                             "slice normal; a volume needs slices at different positions")
    check_fits(len(dss) * rows * cols * 4 * 3, f"reading {len(dss)} CT slices of {rows} x {cols}")
    hu = np.empty((len(dss), rows, cols), np.float32)
    for i, d in enumerate(dss):
        a = _pixels(d)
        if a.shape != (rows, cols):
            raise StudyFileError(f"{d.filename}: the pixel data is {a.shape[0]} x {a.shape[1]}, not the "
                                 f"{rows} x {cols} that Rows/Columns say")
        pad = d.get("PixelPaddingValue")
        slope = float(numbers(d, "RescaleSlope", 1, required=False, default=[1.0])[0]) or 1.0
        intercept = float(numbers(d, "RescaleIntercept", 1, required=False, default=[0.0])[0])
        v = a.astype(np.float32) * slope + intercept
        if pad is not None:
            v[a == pad] = AIR_HU
        hu[i] = np.maximum(v, AIR_HU)  # outside-the-circle values (-2048, -3024) become air
    kvp = float(numbers(first, "KVP", 1, required=False, default=[120.0], positive=True)[0])
    return AxialCT(hu=hu, positions_mm=positions, orientation=orient0,
                   pixel_spacing_mm=(float(spacing0[0]), float(spacing0[1])),
                   kvp=kvp, description=str(first.get("SeriesDescription", "")),
                   patient_id=str(first.get("PatientID", "")), n_files=len(dss),
                   body_part=str(first.get("BodyPartExamined", "") or "").strip().upper(),
                   study_description=str(first.get("StudyDescription", "") or ""))


def _slice_geometry(d):
    """(rows, cols, position, orientation, pixel spacing, tilt) of one CT slice, each checked."""
    rows = int(numbers(d, "Rows", 1, positive=True)[0])
    cols = int(numbers(d, "Columns", 1, positive=True)[0])
    position = numbers(d, "ImagePositionPatient", 3)
    orient = numbers(d, "ImageOrientationPatient", 6)
    rdir, cdir = orient[:3], orient[3:]
    if abs(np.linalg.norm(rdir) - 1) > 1e-3 or abs(np.linalg.norm(cdir) - 1) > 1e-3 or abs(rdir @ cdir) > 1e-3:
        raise StudyFileError(f"{d.filename}: ImageOrientationPatient {orient.tolist()} is not two orthogonal "
                             "unit vectors")
    spacing = numbers(d, "PixelSpacing", 2, positive=True)
    tilt = float(numbers(d, "GantryDetectorTilt", 1, required=False, default=[0.0])[0])
    return rows, cols, position, orient, spacing, tilt


CHEST_PROTOCOL = {"kind": "linear", "direction": "y", "total_angle_deg": 30.0, "n_projections": 60,
                  "source_to_image_mm": 1800.0, "pivot_height_mm": 100.0, "kvp": 120.0,
                  "filtration": "2.5Al+0.1Cu", "sweep_mas": 19.2, "plain_film_mas": 1.9, "readout_bin": 2}


#: Words of a CT's Body Part Examined or descriptions -> the bundled case whose protocol suits it.
PROTOCOL_GUESSES = (
    ("chest", ("CHEST", "THORAX", "LUNG")),
    ("sinus", ("HEAD", "BRAIN", "SKULL", "SINUS", "FACE")),
    ("cspine", ("NECK", "THYROID", "CSPINE", "C-SPINE", "LARYNX", "CERVICAL")),
    ("lumbar", ("LSPINE", "L-SPINE", "LUMBAR")),
    ("hip", ("HIP", "FEMUR")),
    ("knee", ("KNEE",)),
    ("wrist", ("WRIST", "HAND", "SCAPHOID")),
    ("kub", ("ABDOMEN", "ABDO", "ABD", "PELVIS", "KIDNEY", "RENAL", "OVARY", "UTERUS", "BLADDER", "LIVER")),
)


def guess_protocol(ct: AxialCT) -> tuple[str, str]:
    """(bundled case name, why) for a CT series: its Body Part Examined, else its descriptions, else the
    chest."""
    import re

    for where, text in (("Body Part Examined", ct.body_part), ("the study description", ct.study_description),
                        ("the series description", ct.description)):
        words = set(re.split(r"[^A-Z-]+", str(text).upper()))
        for case, keys in PROTOCOL_GUESSES:
            hit = next((k for k in keys if k in words), None)
            if hit:
                return case, f"{where} says {hit}"
    return "chest", "nothing in the series names a body part; the PA chest protocol"


def case_from_ct(folder: str | os.PathLike, *, voxel_mm: float = 2.0, gap_mm: float = 15.0,
                 protocol: str | None = None):
    """A teaching case from a real axial CT series, at the protocol of the bundled case ``protocol`` (its
    sweep, exposure, patient axes, view, dose coefficient and slice settings), guessed from the series'
    body part when None (:func:`guess_protocol`).  The contrast enhancement is taken out
    (:func:`~volumedr.phantoms.volume.unenhanced`: a radiograph's patient has none)."""
    from ..errors import ParameterError
    from ..phantoms.case import Case, case_names, load_case
    from ..phantoms.volume import VoxelVolume, unenhanced, volume_from_axial_ct

    folder = Path(folder)
    if protocol is not None and protocol not in case_names():
        raise ParameterError(f"--protocol {protocol!r} is not a bundled case; use one of {', '.join(case_names())}")
    ct = read_ct_series(folder)
    why = "as asked"
    if protocol is None:
        protocol, why = guess_protocol(ct)
    model = load_case(protocol, with_findings=False)
    views = {"LFP": "PA", "RFA": "AP"}
    if model.patient_axes not in views:
        raise ParameterError(f"case {protocol!r} is examined with patient axes {model.patient_axes}; a CT can be "
                             "placed PA (LFP) or AP (RFA) only")
    view = views[model.patient_axes]
    # a 120 kVp CT beam's effective energy is about 70 keV (60-75 keV reported); scaled with kVp
    energy = 70.0 * ct.kvp / 120.0
    vol = volume_from_axial_ct(ct.hu, ct.positions_mm, ct.orientation, ct.pixel_spacing_mm,
                               voxel_mm=(voxel_mm,) * 3, gap_mm=gap_mm, effective_energy_kev=energy,
                               description=f"{ct.n_files} CT slices from {folder}", view=view)
    vol = VoxelVolume(hu=unenhanced(vol.hu), spacing_mm=vol.spacing_mm, origin_mm=vol.origin_mm,
                      effective_energy_kev=vol.effective_energy_kev, description=vol.description)
    top = float(vol.body_bounds_mm()[1, 2])
    b = vol.body_bounds_mm()
    rec = {k: model.reconstruction[k] for k in ("method", "spacing_mm", "thickness_mm") if k in model.reconstruction}
    rec = {"method": "fbp", "spacing_mm": 2.0, "thickness_mm": 2.0, **rec, "range_mm": [gap_mm + 5.0, top - 5.0]}
    return Case(name=f"ct-{ct.patient_id or folder.name}".lower(), title=f"{view} volume DR simulated from CT "
                f"({ct.description or folder.name}), {protocol} protocol", region=model.region, history="", teaching="",
                primitives=(), findings=(), protocol=dict(model.protocol), reconstruction=rec,
                field_mm=(min(float(b[1, 0] - b[0, 0]), model.field_mm[0]), min(float(b[1, 1] - b[0, 1]), model.field_mm[1])),
                effective_dose_coeff_msv_per_gy_cm2=model.effective_dose_coeff_msv_per_gy_cm2,
                effective_dose_reference=f"the {protocol} case's coefficient ({model.effective_dose_reference})",
                source=str(folder), patient_axes=model.patient_axes, body_part=model.body_part, volume=vol,
                notes=f"Simulated from the CT series in {folder} ({ct.hu.shape[0]} slices, "
                      f"{ct.pixel_spacing_mm[0]:.2f} mm pixels) at the protocol of the bundled case "
                      f"'{protocol}' ({why}); contrast enhancement outside bone taken out.",
                anatomy_source=f"CT: {ct.description or folder.name}" + (f", patient {ct.patient_id}" if ct.patient_id else ""))
