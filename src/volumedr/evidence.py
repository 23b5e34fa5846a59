"""What a teaching case claims, measured: contrast-to-noise of every finding on
the plain film and on its slice, the height where the finding is in focus, and
the doses against the published range.  Qt-free; used by the tests
(tests/test_cases.py) and by the gallery script (tools/make_gallery.py).

Definitions (docs/cases.md):

* **CNR** is :func:`volumedr.workflow.contrast_to_noise` over a disc of 0.8 of
  the finding's radius against a plane fitted to the annulus 1.5..2.5 radii;
  the noise is the annulus' residual, so it counts overlapping anatomy as well
  as quantum noise.  Lucent findings are measured with the sign turned, so a
  higher CNR always means "stands out more".  On the film the disc is scaled by
  the finding's magnification.
* **In focus**: the finding's own signal -- the reconstruction of the case
  minus the reconstruction of the same anatomy without the finding, both
  noise-free -- is sharpest (disc-minus-annulus at 0.4 x size) at this height.
  Measuring the finding's own signal keeps ribs and bowel gas at other heights
  from deciding where a 12 mm nodule is "sharpest".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Detector
from .phantoms.case import Case, load_case
from .reconstruct import ReconSettings, reconstruct
from .simulate import simulate_study
from .workflow import contrast_to_noise, focus_profile

#: The simulated dose may sit this far outside the published range (patient size, equipment and
#: conversion coefficients vary between the studies quoted): [lo / DOSE_TOLERANCE, hi * DOSE_TOLERANCE].
DOSE_TOLERANCE = 1.3


@dataclass(frozen=True)
class FindingEvidence:
    name: str
    occult_on_plain_film: bool
    contrast: str
    centre_mm: tuple[float, float, float]
    size_mm: float
    cnr_film: float
    cnr_slice: float
    focus_height_mm: float  # where the finding's own signal is sharpest
    slice_index: int  # the slice nearest the true height
    film_pixel: tuple[float, float]  # (row, col) of the finding on the plain film
    slice_pixel: tuple[float, float]  # (row, col) on the slices


@dataclass(frozen=True)
class CaseEvidence:
    case: str
    spacing_mm: float
    film_msv: float
    sweep_msv: float
    published_film_msv: tuple[float, float] | None
    published_sweep_msv: tuple[float, float] | None
    dose_reference: str
    findings: tuple[FindingEvidence, ...]

    def dose_in_range(self, which: str) -> bool:
        value, rng = ((self.film_msv, self.published_film_msv) if which == "film"
                      else (self.sweep_msv, self.published_sweep_msv))
        return rng is not None and rng[0] / DOSE_TOLERANCE <= value <= rng[1] * DOSE_TOLERANCE


def film_pixel(study, x: float, y: float, z: float) -> tuple[float, float, float]:
    """(row, col, magnification) of the point (x, y, z) mm on the plain film."""
    det = study.geometry.detector
    sid = study.metadata["sweep"]["source_to_image_mm"]
    m = sid / (sid - z)
    return y * m / det.pitch_row_mm + (det.rows - 1) / 2, x * m / det.pitch_col_mm + (det.cols - 1) / 2, m


def evidence_detector(case: Case, pixel_mm: float | None = None) -> Detector:
    """The panel the evidence is measured on: the case's collimated field (plus 20 %) of the standard panel,
    read out at ``pixel_mm`` (default: the native 0.21 mm for extremities up to 20 cm, 0.42 mm up to 25 cm,
    else 0.84 mm)."""
    full = Detector()
    if pixel_mm is None:
        big = max(case.field_mm)
        pixel_mm = 0.21 if big <= 200 else 0.42 if big <= 250 else 0.84
    b = max(1, int(round(pixel_mm / full.pitch_row_mm)))

    def pixels(extent_mm, limit):
        return min(limit, int(np.ceil(extent_mm * 1.2 / full.pitch_row_mm / (2 * b))) * 2 * b)

    return Detector(rows=pixels(case.field_mm[1], full.rows), cols=pixels(case.field_mm[0], full.cols)).binned(b)


def _reconstruct(study, case: Case):
    return reconstruct(study.projections, study.geometry, ReconSettings.from_case(case.reconstruction))


def measure_case(case: Case | str, pixel_mm: float | None = None, seed: int = 1):
    """Simulate the case at its default protocol and measure every finding.

    Returns ``(CaseEvidence, study, reconstruction)``; the study and slices are
    the noisy ones a trainee would see (for galleries).
    """
    case = load_case(case) if isinstance(case, str) else case
    detector = evidence_detector(case, pixel_mm)
    study = simulate_study(case, detector=detector, rng=seed, ct=False)
    rec = _reconstruct(study, case)
    # the findings' own signal (noise-free with minus noise-free without); a case without a source file
    # cannot be reloaded without its findings, so its focus is taken on the noisy slices
    signal = rec.slices
    if case.source:
        clean = simulate_study(case, detector=detector, noise=False, plain_film=False, ct=False)
        bare = simulate_study(load_case(case.source, with_findings=False), detector=detector, noise=False,
                              plain_film=False, ct=False)
        signal = _reconstruct(clean, case).slices - _reconstruct(bare, case).slices
    px = rec.pixel_spacing_mm[0]
    out = []
    for f in case.findings:
        x, y, z = f.centre_mm
        sign = -1.0 if f.contrast == "lucent" else 1.0
        r, c = rec.pixel_of(x, y)
        k = int(np.argmin(np.abs(rec.heights_mm - z)))
        cnr_slice = sign * contrast_to_noise(rec.slices[k], r, c, f.size_mm / 2 / px)
        fr, fc, m = film_pixel(study, x, y, z)
        cnr_film = sign * contrast_to_noise(study.dr, fr, fc, f.size_mm / 2 * m / detector.pitch_row_mm)
        prof = focus_profile(sign * signal, r, c, px, radii_mm=(0.4 * f.size_mm,))
        out.append(FindingEvidence(f.name, f.occult_on_plain_film, f.contrast, tuple(f.centre_mm), f.size_mm,
                                   float(cnr_film), float(cnr_slice), float(rec.heights_mm[int(np.argmax(prof))]), k,
                                   (float(fr), float(fc)), (float(r), float(c))))
    pub = case.published_dose
    ev = CaseEvidence(case.name, float(rec.heights_mm[1] - rec.heights_mm[0]) if len(rec.heights_mm) > 1 else 0.0,
                      float(study.metadata["dose_plain_film"]["effective_dose_msv"]),
                      float(study.metadata["dose_sweep"]["effective_dose_msv"]),
                      pub.get("film_msv"), pub.get("sweep_msv"), pub.get("reference", ""), tuple(out))
    return ev, study, rec
