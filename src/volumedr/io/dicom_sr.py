"""DICOM Structured Reports of the findings: the answer key, and a reader's marks (docs/dicom.md).

Both are Comprehensive 3D SR objects holding a TID 1500 *Imaging Measurement Report* written with
highdicom, in the study of the slices they describe:

* **answer key** (series 4, written by ``export-dicom`` beside the slices when the study has findings):
  one TID 1410 measurement group per finding, its tracking identifier the finding's name, its finding
  type the case's code (SNOMED CT, or ICD-10-CM as ``I10C``; "Clinical finding" when the case gives
  none), a 3-D POINT at the finding's centre in the slices' Frame of Reference (patient LPS mm, the
  same transform as the slices' Image Position (Patient)), and its diameter (SCT 81827009, mm).  The
  observer is the device "volumedr answer key".
* **a reading** (series 5, ``export-dicom --reading MARKS.csv --reader NAME``): one group per mark,
  slice marks as 3-D points in the same frame, film marks as 2-D points on the plain film image
  (its pixel grid, SCOORD convention: (0, 0) is the top-left corner of the top-left pixel), each with
  the reader's confidence as *Certainty of Finding* (DCM 111012, 1-5).  The observer is the reader.

``read_answer_key`` reads an answer-key SR back into /case findings (name, centre, size, code).
"""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ..errors import StudyFileError

ANSWER_KEY_OBSERVER = "volumedr answer key"
ANSWER_KEY_SERIES = 4
READING_SERIES = 5
CLINICAL_FINDING = ("404684003", "SCT", "Clinical finding")
SCHEMES = {"SCT": "SCT", "SNOMED": "SCT", "ICD10CM": "I10C", "ICD10": "I10"}
_REF_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientName",
                 "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "AccessionNumber", "StudyDate",
                 "StudyTime", "ReferringPhysicianName", "Modality")


def reference_of(ds: Dataset) -> Dataset:
    """The attributes an SR needs of an image it cites (no pixels: a clinical series stays small)."""
    ref = Dataset()
    for k in _REF_KEYWORDS:
        if k in ds:
            setattr(ref, k, ds.get(k))
    return ref


def finding_code(code: str, meaning: str):
    """A case's ``SCHEME:VALUE`` code as a CodedConcept (CodeMeaning: the finding's own words)."""
    from highdicom.sr import CodedConcept

    text = str(code or "").strip()
    if ":" not in text:
        return CodedConcept(*CLINICAL_FINDING)
    scheme, value = text.split(":", 1)
    return CodedConcept(value.strip(), SCHEMES.get(scheme.strip().upper(), scheme.strip().upper()),
                        (meaning or value)[:64])


def _sr(writer, evidence, groups, *, observer, series_number: int, description: str, tag: str):
    import highdicom as hd

    series_uid = writer.sr_uid(tag)
    person = observer.observer_type == codes.DCM.Person
    context = hd.sr.ObservationContext(**{("observer_person_context" if person else "observer_device_context"):
                                          observer})
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=codes.SCT.ImagingProcedure,
                                     imaging_measurements=groups, title=codes.DCM.ImagingMeasurementReport)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=series_uid, series_number=series_number,
        sop_instance_uid=writer.sr_uid(tag, "instance"), instance_number=1, manufacturer="volumedr (simulated)",
        is_complete=True, is_final=False, is_verified=False, series_description=description[:64],
        institution_name="volumedr teaching library", content_date=writer.when.date(),
        content_time=writer.when.time(), series_date=writer.when.date(), series_time=writer.when.time())
    return sr


def answer_key(writer, evidence: list[Dataset], findings) -> Dataset:
    """The findings of the study as a TID 1500 report over the slices (``evidence``)."""
    import highdicom as hd

    frame, for_uid = writer.frame, writer.for_uid
    groups = []
    for n, f in enumerate(findings, start=1):
        lps = frame.to_lps([float(v) for v in f["centre_mm"]])
        region = hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                                     graphic_data=np.array([lps], float), frame_of_reference_uid=for_uid)
        size = hd.sr.Measurement(name=codes.SCT.Diameter, value=float(f["size_mm"]), unit=codes.UCUM.Millimeter)
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=writer.sr_uid("finding", n, f["name"]),
                                                         identifier=str(f["name"])[:64]),
            referenced_region=region, finding_type=finding_code(f.get("code", ""), f.get("description") or f["name"]),
            measurements=[size]))
    observer = hd.sr.ObserverContext(observer_type=codes.DCM.Device,
                                     observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                                         uid=writer.sr_uid("device"), name=ANSWER_KEY_OBSERVER,
                                         manufacturer_name="volumedr"))
    return _sr(writer, evidence, groups, observer=observer, series_number=ANSWER_KEY_SERIES,
               description="Answer key (findings)", tag="answer-key")


def reading_report(writer, slice_evidence: list[Dataset], film: Dataset | None, marks, reader: str) -> Dataset:
    """A reader's marks (``volumedr.reading.Mark``) as a TID 1500 report."""
    import highdicom as hd

    det = writer.study.geometry.detector
    certainty = hd.sr.CodedConcept("{score}", "UCUM", "score")
    groups = []
    for n, m in enumerate(marks, start=1):
        conf = hd.sr.Measurement(name=codes.DCM.CertaintyOfFinding, value=float(m.confidence), unit=certainty)
        if m.modality == "tomo":
            if not slice_evidence:
                raise StudyFileError("a reading with slice marks needs the slices exported with it")
            region = hd.sr.ImageRegion3D(graphic_type=hd.sr.GraphicTypeValues3D.POINT,
                                         graphic_data=np.array([writer.frame.to_lps([m.x_mm, m.y_mm, m.z_mm])]),
                                         frame_of_reference_uid=writer.for_uid)
        else:
            if film is None:
                raise StudyFileError("a reading with film marks needs the plain film exported with it")
            col = m.x_mm / det.pitch_col_mm + (det.cols - 1) / 2 + 0.5
            row = m.y_mm / det.pitch_row_mm + (det.rows - 1) / 2 + 0.5
            region = hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POINT, graphic_data=np.array([[col, row]]),
                                       source_image=hd.sr.SourceImageForRegion(
                                           referenced_sop_class_uid=film.SOPClassUID,
                                           referenced_sop_instance_uid=film.SOPInstanceUID))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=writer.sr_uid("mark", reader, n),
                                                         identifier=f"mark {n} ({m.modality})"),
            referenced_region=region, finding_type=hd.sr.CodedConcept(*CLINICAL_FINDING), measurements=[conf]))
    observer = hd.sr.ObserverContext(observer_type=codes.DCM.Person,
                                     observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                                         name=_person_name(reader)))
    evidence = list(slice_evidence) + ([film] if film is not None else [])
    return _sr(writer, evidence, groups, observer=observer, series_number=READING_SERIES,
               description=f"Reading by {reader}", tag=f"reading-{reader}")


def _person_name(name: str) -> str:
    parts = " ".join(str(name).split()).split(" ")
    # Family^Given; a one-word name gets the trailing caret that says it is a family name alone
    return (parts[-1] + "^" + " ".join(parts[:-1])) if len(parts) > 1 else parts[0] + "^"


def is_answer_key(ds: Dataset) -> bool:
    return str(ds.get("Modality", "")) == "SR" and str(ds.get("SeriesDescription", "")).startswith("Answer key")


def read_answer_key(ds: Dataset, frame) -> list[dict]:
    """The findings of an answer-key SR, in volumedr's frame (``frame``: the slices' PatientFrame)."""
    import highdicom as hd

    name = getattr(ds, "filename", None) or "SR"
    try:
        sr = hd.sr.Comprehensive3DSR.from_dataset(ds, copy=True)
        groups = sr.content.get_planar_roi_measurement_groups()
    except Exception as exc:  # highdicom raises many kinds on a malformed tree
        raise StudyFileError(f"{name}: not a readable TID 1500 answer key ({type(exc).__name__}: {exc})") from None
    out = []
    for g in groups:
        roi = g.roi
        if roi is None or getattr(roi, "frame_of_reference_uid", None) is None:
            continue  # a 2-D mark on an image is not a finding of the volume
        pts = np.asarray(roi.value, float).reshape(-1, 3)
        sizes = g.get_measurements(name=codes.SCT.Diameter)
        if len(pts) != 1 or not sizes:
            raise StudyFileError(f"{name}: a finding without one 3-D point and a diameter")
        ft = g.finding_type
        code = "" if ft is None or ft.value == CLINICAL_FINDING[0] else \
            f"{'ICD10CM' if ft.scheme_designator == 'I10C' else ft.scheme_designator}:{ft.value}"
        centre = frame.from_lps(pts[0])
        out.append({"name": str(g.tracking_identifier), "centre_mm": [float(v) for v in centre],
                    "size_mm": float(sizes[0].value), "code": code,
                    "description": "" if ft is None else str(ft.meaning)})
    return out
