"""The teaching cases teach what they claim: occult findings stand out on their slice, in focus at their height,
at published doses."""
from __future__ import annotations

import numpy as np
import pytest

from volumedr.geometry import Detector
from volumedr.phantoms.case import case_names, load_case
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.simulate import simulate_study
from volumedr.workflow import contrast_to_noise, focus_profile

# Mettler FA et al. Effective doses in radiology and diagnostic nuclear medicine: a catalog.
# Radiology 2008;248:254-263 (film), and the tomosynthesis figures in ../shared/FIELD-NOTES.md.
PUBLISHED_MSV = {"kub": {"film": 0.7, "sweep": 0.83}}


def test_every_bundled_case_loads_with_coded_findings():
    for name in case_names():
        case = load_case(name)
        assert case.findings, name
        for f in case.findings:
            assert f.size_mm > 0 and len(f.centre_mm) == 3 and f.description
        assert case.body_part and case.protocol and case.reconstruction


@pytest.fixture(scope="module")
def kub():
    case = load_case("kub")
    s = simulate_study(case, detector=Detector().binned(4), rng=1, ct=False)
    r = case.reconstruction
    rec = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=r["spacing_mm"], thickness_mm=r["thickness_mm"],
                                                               z_min_mm=r["range_mm"][0], z_max_mm=r["range_mm"][1]))
    return case, s, rec


def film_pixel(study, x, y, z):
    det = study.geometry.detector
    sid = study.metadata["sweep"]["source_to_image_mm"]
    m = sid / (sid - z)
    return y * m / det.pitch_row_mm + (det.rows - 1) / 2, x * m / det.pitch_col_mm + (det.cols - 1) / 2, m


def test_kub_stone_hidden_on_the_film_stands_out_on_its_slice(kub):
    case, s, rec = kub
    (f,) = [f for f in case.findings if f.occult_on_plain_film]
    x, y, z = f.centre_mm
    sign = -1 if f.contrast == "lucent" else 1
    r, c = rec.pixel_of(x, y)
    k = int(np.argmin(np.abs(rec.heights_mm - z)))
    cnr_slice = sign * contrast_to_noise(rec.slices[k], r, c, f.size_mm / 2 / rec.pixel_spacing_mm[0])
    fr, fc, m = film_pixel(s, x, y, z)
    cnr_film = sign * contrast_to_noise(s.dr, fr, fc, f.size_mm / 2 * m / s.geometry.detector.pitch_row_mm)
    # measured: film 1.4, slice 13.7; the claim is a factor of at least 3
    assert cnr_slice > 3 * max(cnr_film, 0.5)


def test_kub_findings_in_focus_within_one_slice_spacing(kub):
    case, s, rec = kub
    spacing = case.reconstruction["spacing_mm"]
    for f in case.findings:
        x, y, z = f.centre_mm
        sign = -1 if f.contrast == "lucent" else 1
        r, c = rec.pixel_of(x, y)
        h = rec.heights_mm[int(np.argmax(focus_profile(sign * rec.slices, r, c, rec.pixel_spacing_mm[0])))]
        assert abs(h - z) <= spacing + 1e-6, f"{f.name}: sharpest at {h} mm, true {z} mm"


def test_kub_doses_are_in_the_published_range(kub):
    _, s, _ = kub
    film = s.metadata["dose_plain_film"]["effective_dose_msv"]
    sweep = s.metadata["dose_sweep"]["effective_dose_msv"]
    pub = PUBLISHED_MSV["kub"]
    assert 0.5 * pub["film"] <= film <= 2 * pub["film"]
    assert 0.5 * pub["sweep"] <= sweep <= 2 * pub["sweep"]
    assert 1.0 < sweep / film < 2.0  # published 0.83 / 0.63 = 1.3
