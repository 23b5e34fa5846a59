"""Write a study as DICOM (docs/dicom.md).

Series written (each only when the study has it):

1. the plain film: DX Image Storage - For Presentation;
2. the projections: DX Image Storage - For Processing, with the X-Ray
   Tomography Acquisition attributes and the per-view geometry;
3. the reconstructed slices: one series of single-frame CT Image Storage
   objects (default, scrolls as a stack in every viewer) or DX For
   Presentation objects (``as_="dx"``), one Frame of Reference, Image
   Position/Orientation (Patient) and heights on every slice.

Values: stored integers map back to volumedr's values with Rescale
Slope/Intercept (CT) or with the private attributes below (DX, whose IOD
fixes slope 1 and intercept 0).  Private block ``VOLUMEDR 1`` in group 0009:

=========== ==== ==================================================
(0009,10xx) VR   meaning
=========== ==== ==================================================
01          FD   source position of this view, volumedr frame (x, y, z) mm
02          FD   detector centre of this view, volumedr frame (x, y, z) mm
03          FD   value = stored * 03 + 04 (slope for DX images)
04          FD   intercept for DX images
05          CS   patient axes of the volumedr frame (e.g. LFP)
06          FD   height of the slice above the detector, mm
07          LO   reconstruction method and settings (JSON)
=========== ==== ==================================================

Output goes to a temporary folder beside ``outdir`` that is renamed to it
when everything is written, so a failure leaves no partial series.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from .. import __version__
from ..errors import ParameterError, StudyFileError, VolumedrWarning
from ..geometry.patient import PatientFrame
from ..progress import Progress
from ..study import Study
from .dicom_sr import reference_of
from .tempfiles import new_temp_dir

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
UID_ROOT = "1.2.826.0.1.3680043.10.1374."  # pydicom-style prefix + a volumedr arc (synthetic objects only)
PRIVATE_CREATOR = "VOLUMEDR 1"
PRIVATE_GROUP = 0x0009
# DX values are stored as uint16: line integrals (-0.25 .. 15.7) at 1/4096 resolution
DX_SCALE = 1.0 / 4096.0
DX_OFFSET = -0.25  # noise makes some line integrals slightly negative
SERIES_NUMBERS = {"film": 1, "projections": 2, "slices": 3}


@dataclass(frozen=True)
class ExportSummary:
    outdir: Path
    files: tuple[Path, ...]
    series: dict  # kind -> (series instance UID, number of images)
    study_instance_uid: str


def _uid(*parts) -> str:
    """A deterministic UID from its parts (the same study exports with the same UIDs)."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts])


def study_uid_of(study: Study) -> str:
    """The study's Study Instance UID; an invalid stored one is replaced (with a warning) by a valid UID
    derived from it, so the same file always exports with the same UIDs and never an invalid one."""
    uid = study.metadata.get("study_instance_uid")
    if uid:
        uid = str(uid)
        if UID(uid).is_valid:
            return uid
        fresh = _uid("invalid-study-uid", uid)
        warnings.warn(f"the study's study_instance_uid {uid[:70]!r} is not a valid DICOM UID; exported with "
                      f"the UID {fresh} made from it instead", VolumedrWarning, stacklevel=2)
        return fresh
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(study.geometry.source_positions_mm).tobytes())
    if study.projections is not None:
        h.update(np.ascontiguousarray(study.projections[:, ::37, ::37]).tobytes())
    h.update(str(study.metadata.get("case", "")).encode())
    return _uid("study", h.hexdigest())


def patient_frame_of(study: Study) -> PatientFrame:
    return PatientFrame(str(study.metadata.get("patient_axes", "LFP")))


def _acquired(study: Study) -> _dt.datetime:
    t = study.metadata.get("acquired_utc")
    if t:
        try:
            return _dt.datetime.fromisoformat(str(t))
        except ValueError:
            pass
    return _dt.datetime(2026, 1, 1, 9, 0, 0)


def _window(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values[:: max(1, values.shape[0] // 8)], [0.5, 99.5])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


class _Writer:
    def __init__(self, study: Study):
        self.study = study
        self.meta = study.metadata
        self.frame = patient_frame_of(study)
        self.study_uid = study_uid_of(study)
        self.for_uid = _uid(self.study_uid, "frame-of-reference")
        self.when = _acquired(study)
        self.case = str(self.meta.get("case", "") or "study")
        self.refs: dict[str, list] = {}  # kind -> references of the images written (for the SRs)

    # ------------------------------------------------------------ structured reports
    def sr_uid(self, *parts) -> str:
        return _uid(self.study_uid, "sr", *parts)

    def answer_key(self, out: Path):
        from .dicom_sr import answer_key

        yield out / "answer_key" / "SR0001.dcm", answer_key(self, self.refs.get("slices", []), self.study.findings)

    def reading(self, out: Path, marks, reader: str):
        from .dicom_sr import reading_report

        film = (self.refs.get("film") or [None])[0]
        safe = "".join(c if c.isalnum() else "_" for c in reader)[:32] or "reader"
        yield out / f"reading_{safe}" / "SR0001.dcm", reading_report(self, self.refs.get("slices", []), film, marks,
                                                                    reader)

    # ----------------------------------------------------------------- common
    def base(self, sop_class: str, series_uid: str, series_number: int, instance: int, modality: str,
             series_description: str) -> Dataset:
        sop_uid = _uid(series_uid, instance)
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = sop_class
        fm.MediaStorageSOPInstanceUID = sop_uid
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        fm.ImplementationClassUID = UID_ROOT + "1"
        fm.ImplementationVersionName = f"VOLUMEDR_{__version__}"[:16]
        ds = Dataset()
        ds.file_meta = fm
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        d, t = self.when.strftime("%Y%m%d"), self.when.strftime("%H%M%S")
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = d
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = t
        ds.InstanceCreationDate, ds.InstanceCreationTime = d, t
        ds.Modality = modality
        ds.Manufacturer = "volumedr (simulated)"
        ds.ManufacturerModelName = "volumedr acquisition simulator"
        ds.SoftwareVersions = __version__
        ds.InstitutionName = "volumedr teaching library"
        ds.StationName = "VOLUMEDR"
        ds.ReferringPhysicianName = ""
        ds.AccessionNumber = ""
        # a synthetic, clearly fictional patient: the bundled phantom
        ds.PatientName = f"PHANTOM^{self.case.upper().replace('_', ' ')}"[:64]
        ds.PatientID = f"VDR-{self.case.upper()}"[:64]
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "Synthetic phantom (volumedr); no real patient"
        ds.PatientComments = "Synthetic phantom simulated by volumedr; not a real patient."
        title = str(self.meta.get("case_title", "") or self.case)
        ds.StudyDescription = f"Tomosynthesis (volume DR): {title}"[:64]
        ds.StudyInstanceUID = self.study_uid
        ds.StudyID = self.case.upper()[:16]
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = series_description[:64]
        ds.InstanceNumber = instance
        ds.BodyPartExamined = str(self.meta.get("body_part", "") or _body_part(self.meta.get("region", "")))[:16]
        ds.PatientOrientation = self.frame.patient_orientation()
        ds.FrameOfReferenceUID = self.for_uid
        ds.PositionReferenceIndicator = ""
        acq = self.meta.get("acquisition") or {}
        if acq.get("kvp"):
            ds.KVP = f"{float(acq['kvp']):g}"
        ds.BurnedInAnnotation = "NO"
        ds.LossyImageCompression = "00"
        ds.AcquisitionNumber = 1
        return ds

    def private(self, ds: Dataset):
        return ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)

    @staticmethod
    def pixels_16bit(ds: Dataset, img: np.ndarray, scale: float, offset: float, signed: bool = False) -> None:
        """Store (img - offset) / scale as 16-bit integers (unsigned, or signed for CT)."""
        lo, hi, dtype = (-32768, 32767, np.int16) if signed else (0, 65535, np.uint16)
        stored = np.clip(np.rint((img - offset) / scale), lo, hi).astype(dtype)
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = int(signed)
        ds.PixelData = stored.tobytes()

    def dx_modules(self, ds: Dataset, *, for_processing: bool, imager_spacing_mm, scale: float, offset: float,
                   window=None) -> None:
        """DX Series, DX Anatomy Imaged, DX Image and DX Detector attributes."""
        ds.PresentationIntentType = "FOR PROCESSING" if for_processing else "FOR PRESENTATION"
        ds.ImageType = ["ORIGINAL", "PRIMARY"] if for_processing else ["DERIVED", "PRIMARY"]
        ds.ImageLaterality = "U"
        ds.ViewPosition = self.frame.view_position
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = -1  # higher values = less X-ray intensity at the detector
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
        ds.PresentationLUTShape = "IDENTITY"
        ds.DetectorType = "SCINTILLATOR"
        ds.ImagerPixelSpacing = [f"{float(v):.6g}" for v in imager_spacing_mm]
        ds.PositionerType = "NONE"
        ds.AcquisitionContextSequence = []
        ds.AnatomicRegionSequence = _anatomic_region(ds.BodyPartExamined)
        ds.ViewCodeSequence = _view_code(self.frame.view_position)
        ds.PatientPosition = ""
        if window is not None:
            c, w = window
            ds.WindowCenter = f"{(c - offset) / scale:.1f}"
            ds.WindowWidth = f"{max(w / scale, 2):.1f}"
        blk = self.private(ds)
        blk.add_new(0x03, "FD", float(scale))
        blk.add_new(0x04, "FD", float(offset))
        blk.add_new(0x05, "CS", self.frame.axes)

    def tomo_acquisition(self, ds: Dataset, layer_height_mm: float) -> None:
        sw = self.meta.get("sweep") or {}
        g = self.study.geometry
        ds.TomoLayerHeight = f"{float(layer_height_mm):.4g}"
        ds.TomoAngle = f"{float(sw.get('total_angle_deg', g.total_angle_deg)):.4g}"
        ds.TomoTime = f"{float(sw.get('sweep_time_s', 10.0)):.4g}"
        ds.TomoType = "LINEAR"
        ds.TomoClass = "TOMOSYNTHESIS"
        ds.NumberOfTomosynthesisSourceImages = int(g.n_views)

    # ------------------------------------------------------------------ series
    def film(self, out: Path):
        dr = self.study.dr
        g = self.study.geometry
        uid = _uid(self.study_uid, "film")
        ds = self.base(DX_PRESENTATION, uid, SERIES_NUMBERS["film"], 1, "DX",
                       f"{self.frame.view_position or 'Plain'} radiograph (plain film)")
        sid = float((self.meta.get("sweep") or {}).get("source_to_image_mm", 1800.0))
        ds.DistanceSourceToDetector = f"{sid:.1f}"
        ds.DistanceSourceToPatient = f"{sid - float(self._skin_near()):.1f}"
        self.dx_modules(ds, for_processing=False, imager_spacing_mm=(g.detector.pitch_row_mm, g.detector.pitch_col_mm),
                        scale=DX_SCALE, offset=DX_OFFSET, window=_window(dr[None]))
        self.pixels_16bit(ds, dr, DX_SCALE, DX_OFFSET)
        self._exposure(ds, mas=(self.meta.get("acquisition") or {}).get("plain_film_mas"))
        path = out / "film" / "IM0001.dcm"
        yield path, ds

    def projections(self, out: Path):
        st = self.study
        g = st.geometry
        uid = _uid(self.study_uid, "projections")
        sw = self.meta.get("sweep") or {}
        pivot = float(sw.get("pivot_height_mm", 0.0))
        for i in range(g.n_views):
            ds = self.base(DX_PROCESSING, uid, SERIES_NUMBERS["projections"], i + 1, "DX",
                           f"Tomo projections ({g.n_views}, for processing)")
            src = g.source_positions_mm[i]
            det = g.detector_centres_mm[i]
            sid = float(np.linalg.norm(src - det))
            ds.DistanceSourceToDetector = f"{sid:.2f}"
            ds.DistanceSourceToPatient = f"{src[2] - float(self._skin_near()):.2f}"
            ds.PositionerPrimaryAngle = f"{float(g.angles_deg[i]):.4f}"
            ds.PositionerSecondaryAngle = "0"
            self.dx_modules(ds, for_processing=True, imager_spacing_mm=(g.detector.pitch_row_mm, g.detector.pitch_col_mm),
                            scale=DX_SCALE, offset=DX_OFFSET)
            self.tomo_acquisition(ds, pivot)
            self.pixels_16bit(ds, st.projections[i], DX_SCALE, DX_OFFSET)
            blk = self.private(ds)
            blk.add_new(0x01, "FD", [float(v) for v in src])
            blk.add_new(0x02, "FD", [float(v) for v in det])
            self._exposure(ds, mas=(self.meta.get("acquisition") or {}).get("mas_per_view"))
            yield out / "projections" / f"IM{i + 1:04d}.dcm", ds

    def slices(self, out: Path, as_: str):
        r = self.study.reconstruction
        params = json.dumps({"method": r.method, "thickness_mm": r.thickness_mm, **(r.parameters or {})},
                            sort_keys=True, default=str)
        # the same reconstruction exports with the same series UID (whether read from a file or in memory)
        uid = _uid(self.study_uid, "slices", as_, r.method, f"{r.thickness_mm:.4f}",
                   ",".join(f"{h:.3f}" for h in r.heights_mm), ",".join(f"{v:.5f}" for v in r.pixel_spacing_mm),
                   ",".join(f"{v:.4f}" for v in r.origin_mm), r.slices.shape)
        spacing = np.diff(r.heights_mm)
        step = float(np.median(spacing)) if len(spacing) else float(r.thickness_mm)
        desc = f"Tomo slices {r.method.upper()} {r.thickness_mm:g} mm/{step:g} mm"
        lo, hi = float(np.min(r.slices)), float(np.max(r.slices))
        window = _window(r.slices)
        if as_ == "ct":
            # int16 with a slope that keeps the series' full range
            slope = max(abs(lo), abs(hi), 1e-6) / 32000.0
            slope = float(f"{slope:.3g}")
            intercept = 0.0
        else:
            slope, intercept = max(hi - lo, 1e-6) / 65000.0, lo
        fr = self.frame
        iop = fr.image_orientation()
        order = np.argsort(r.heights_mm)
        for n, s in enumerate(order):
            h = float(r.heights_mm[s])
            img = r.slices[s]
            if as_ == "ct":
                ds = self.base(CT_IMAGE_STORAGE, uid, SERIES_NUMBERS["slices"], n + 1, "CT", desc)
                ds.ImageType = ["DERIVED", "PRIMARY", "AXIAL"]
                ds.RescaleIntercept = f"{intercept:g}"
                ds.RescaleSlope = f"{slope:g}"
                self.pixels_16bit(ds, img, slope, intercept, signed=True)
                ds.WindowCenter = f"{window[0]:.4g}"
                ds.WindowWidth = f"{window[1]:.4g}"
                ds.WindowCenterWidthExplanation = "volumedr default"
                ds.PatientPosition = ""
                ds.ConvolutionKernel = r.method.upper()
            else:
                ds = self.base(DX_PRESENTATION, uid, SERIES_NUMBERS["slices"], n + 1, "DX", desc)
                g = self.study.geometry
                self.dx_modules(ds, for_processing=False, imager_spacing_mm=(g.detector.pitch_row_mm, g.detector.pitch_col_mm),
                                scale=slope, offset=intercept, window=window)
                ds.PixelSpacingCalibrationType = "GEOMETRY"
                ds.PixelSpacingCalibrationDescription = "in the slice plane (corrected for magnification)"
                self.tomo_acquisition(ds, h)
                self.pixels_16bit(ds, img, slope, intercept)
            ds.PixelSpacing = [f"{float(v):.6g}" for v in r.pixel_spacing_mm]
            ds.SliceThickness = f"{float(r.thickness_mm):.4g}"
            ds.SpacingBetweenSlices = f"{step:.4g}"
            ds.ImageOrientationPatient = [f"{v:.6g}" for v in iop]
            pos = fr.to_lps([r.origin_mm[0], r.origin_mm[1], h])
            ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
            ds.SliceLocation = f"{h:.4f}"
            ds.ImageComments = f"Slice {h:.1f} mm above the detector (volumedr frame); spacing corrected for magnification"
            blk = self.private(ds)
            blk.add_new(0x05, "CS", fr.axes)
            blk.add_new(0x06, "FD", h)
            blk.add_new(0x07, "LO", params[:64])
            yield out / "slices" / f"IM{n + 1:04d}.dcm", ds

    # ---------------------------------------------------------------- helpers
    def _skin_near(self) -> float:
        rng = self.meta.get("object_height_range_mm") or [0.0, 0.0]
        return float(rng[0])

    def _exposure(self, ds: Dataset, mas) -> None:
        if mas:
            ds.ExposureInuAs = int(round(float(mas) * 1000))
        acq = self.meta.get("acquisition") or {}
        if acq.get("filtration"):
            ds.FilterMaterial = ["ALUMINUM", "COPPER"] if "Cu" in str(acq["filtration"]) else ["ALUMINUM"]
        ds.Grid = ["FOCUSED"] if acq.get("grid") else ["NONE"]


def _body_part(region: str) -> str:
    region = str(region).lower()
    for key, part in (("chest", "CHEST"), ("wrist", "WRIST"), ("hip", "HIP"), ("lumbar", "LSPINE"),
                      ("sinus", "SINUS"), ("abdomen", "ABDOMEN"), ("kub", "ABDOMEN"), ("cervical", "CSPINE"),
                      ("knee", "KNEE"), ("rib", "RIB"), ("nasal", "NOSE")):
        if key in region:
            return part
    return region.upper()[:16]


# SNOMED CT body structures (DICOM CID 4031 "Common Anatomic Regions")
ANATOMIC_REGIONS = {
    "CHEST": ("51185008", "Chest"), "LSPINE": ("122496007", "Lumbar spine"),
    "CSPINE": ("122494005", "Cervical spine"), "KNEE": ("72696002", "Knee"),
    "HIP": ("24136001", "Hip joint"), "WRIST": ("74670003", "Wrist joint"),
    "ABDOMEN": ("818981001", "Abdomen"),
}


# SNOMED CT projections (DICOM CID 4010 "DX View")
VIEW_CODES = {"PA": ("272479007", "postero-anterior"), "AP": ("399348003", "antero-posterior"),
              "LL": ("399173006", "left lateral"), "RL": ("399198007", "right lateral")}


def _code_item(code) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodeMeaning = code
    item.CodingSchemeDesignator = "SCT"
    return item


def _anatomic_region(body_part: str) -> list:
    code = ANATOMIC_REGIONS.get(str(body_part))
    return [] if code is None else [_code_item(code)]


def _view_code(view_position: str) -> list:
    code = VIEW_CODES.get(view_position)
    if code is None:
        return []
    item = _code_item(code)
    item.ViewModifierCodeSequence = []
    return [item]


KINDS = ("film", "projections", "slices", "answer-key")


def export_dicom(study: Study, outdir: str | os.PathLike, *, as_: str = "ct", kinds=KINDS,
                 overwrite: bool = False, reading=None):
    """Write the study's series under ``outdir`` (a generator yielding Progress; returns ExportSummary).

    ``answer-key`` is the findings as a DICOM SR beside the slices (io/dicom_sr.py; only with the slices
    and when the study has findings); ``reading=(marks, reader)`` adds a reader's marks as a second SR."""
    if as_ not in ("ct", "dx"):
        raise ParameterError(f"--as must be ct or dx, got {as_!r}")
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ParameterError(f"unknown series {bad}; choose from {', '.join(KINDS)}")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise StudyFileError(f"cannot write {outdir}: it is a file")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise StudyFileError(f"{outdir} is not empty; choose a new folder (or use --overwrite)")
    parent = outdir.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise StudyFileError(f"cannot write {outdir}: folder {parent} does not exist or is not writable")
    w = _Writer(study)
    plans = []
    if "film" in kinds and study.dr is not None:
        plans.append(("film", 1, lambda o: w.film(o)))
    if "projections" in kinds and study.projections is not None:
        plans.append(("projections", study.geometry.n_views, lambda o: w.projections(o)))
    if "slices" in kinds and study.reconstruction is not None:
        plans.append(("slices", len(study.reconstruction.heights_mm), lambda o: w.slices(o, as_)))
        if "answer-key" in kinds and study.findings:
            plans.append(("answer-key", 1, lambda o: w.answer_key(o)))
    if reading is not None:
        if "film" not in kinds and "slices" not in kinds:
            raise ParameterError("a reading's SR refers to the film and the slices: export them with it")
        plans.append(("reading", 1, lambda o: w.reading(o, *reading)))
    if not plans:
        raise ParameterError("nothing to export: the study has none of " + ", ".join(kinds)
                             + (" (reconstruct it first)" if "slices" in kinds else ""))
    need = sum(n for _, n, _ in plans) * 2 * study.geometry.detector.rows * study.geometry.detector.cols * 1.1
    free = shutil.disk_usage(parent).free
    if need > 0.95 * free:
        raise StudyFileError(f"{outdir}: the export needs about {need / 2**30:.2f} GiB but the disk has "
                             f"{free / 2**30:.2f} GiB free")
    total = sum(n for _, n, _ in plans)
    tmp = new_temp_dir(parent / outdir.name)
    files, series, done = [], {}, 0
    try:
        for kind, n, make in plans:
            uid = None
            for path, ds in make(tmp):
                if kind in ("film", "slices"):
                    w.refs.setdefault(kind, []).append(reference_of(ds))  # what the SRs cite
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                files.append(outdir / path.relative_to(tmp))
                uid = ds.SeriesInstanceUID
                done += 1
                yield Progress("writing DICOM", done, total)
            series[kind] = (uid, n)
        if outdir.exists():
            shutil.rmtree(outdir)
        os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(outdir=outdir, files=tuple(files), series=series, study_instance_uid=w.study_uid)
