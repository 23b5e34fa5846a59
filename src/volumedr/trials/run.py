"""One run of a trial: simulate, reconstruct and measure; only rows of numbers come back.

:func:`run_one` is a pure function of the :class:`~volumedr.trials.spec.RunSpec` (its parameters and
seed): every random number is drawn from a seed sequence made of the run's seed and a hash of its
protocol, so the same run gives the same rows on any worker (only ``seconds`` differs).  A run that
fails for its parameters (an impossible geometry, a case that does not fit) returns one row with the
error instead of raising, so it is recorded and the trial goes on.

Per finding, a row holds (docs/trials.md):

* ``cnr_film``, ``cnr_slice``: volumedr.evidence's CNR on the plain film and on the slice nearest the
  finding's height (lucent findings with the sign turned);
* ``focus_height_mm``, ``focus_error_mm``: where the finding is sharpest on the noisy slices
  (``workflow.focus_profile``) and how far that is from its true height;
* ``dprime_film``, ``dprime_slice`` and their standard errors: the channelized Hotelling observer
  (:mod:`volumedr.trials.observer`) on signal-present / signal-absent samples from the case with and
  without its findings, independent noise;
* the sweep's and the film's entrance surface air kerma (mGy) and effective dose (mSv), and the run's
  time.

The film's mAs follows the sweep's in the case's own ratio (film mAs = sweep mAs x the protocol's
film / sweep mAs), so a dose series changes both.
"""
from __future__ import annotations

import hashlib
import math
import time
import zlib
from dataclasses import replace
from functools import lru_cache

import numpy as np

from .observer import cho_dprime, lg_channels, roi_offsets, rois
from .spec import RunSpec

#: Columns of a result row, in order.
COLUMNS = ("run_id", "case", "sweep", "angle_deg", "projections", "kvp", "mas", "bin", "method", "mar",
           "spacing_mm", "thickness_mm", "seed", "finding", "occult_on_film", "size_mm", "cnr_film", "cnr_slice",
           "focus_height_mm", "focus_error_mm", "dprime_film", "dprime_film_se", "dprime_slice", "dprime_slice_se",
           "esak_mgy", "effective_dose_msv", "film_esak_mgy", "film_effective_dose_msv", "seconds", "error")
PANEL_PITCH_MM = 0.21  # the native pixel of the bundled panel; --bin N reads out N x N of them as one


def _protocol(run: RunSpec):
    from ..evidence import evidence_detector
    from ..phantoms.case import load_case
    from ..reconstruct import ReconSettings
    from ..simulate import settings_from_case, sweep_from_case

    case = load_case(run.case)
    sweep = sweep_from_case(case, kind=run.sweep, total_angle_deg=run.angle_deg, n_projections=run.projections)
    p = case.protocol
    film_mas = None
    if run.mas is not None and "sweep_mas" in p and "plain_film_mas" in p:
        film_mas = run.mas * float(p["plain_film_mas"]) / float(p["sweep_mas"])
    settings = settings_from_case(case, kvp=run.kvp, sweep_mas=run.mas, plain_film_mas=film_mas)
    detector = evidence_detector(case, PANEL_PITCH_MM * run.bin)
    rs = ReconSettings.from_case(case.reconstruction)
    spacing = run.spacing_mm if run.spacing_mm is not None else rs.spacing_mm
    thickness = run.thickness_mm if run.thickness_mm is not None else (spacing if run.spacing_mm is not None
                                                                       else rs.thickness_mm)
    rs = replace(rs, method=run.method, mar=run.mar, spacing_mm=spacing, thickness_mm=thickness)
    return case, sweep, settings, detector, rs


def _slices_at(study, rs, heights):
    """Reconstructed slices nearest ``heights`` (FBP and SAA on demand; SART needs the whole run)."""
    from ..progress import drive
    from ..reconstruct import Reconstructor

    r = Reconstructor(study.projections, study.geometry, rs,
                      object_range_mm=study.metadata.get("object_height_range_mm"))
    h = np.asarray(heights, float)
    if rs.method != "sart":
        return r.backproject_heights(h)
    rec = drive(r.run())
    return rec.slices[[int(np.argmin(np.abs(rec.heights_mm - v))) for v in h]]


@lru_cache(maxsize=8)
def _noise_free(run_protocol: RunSpec):
    """The noise-free signal of every finding (slice and film), which does not depend on the mAs or the seed;
    computed once per protocol in each worker."""
    from ..phantoms.case import load_case
    from ..simulate import simulate_study

    case, sweep, settings, detector, rs = _protocol(run_protocol)
    bare = load_case(case.source or run_protocol.case, with_findings=False)
    kw = dict(sweep=sweep, detector=detector, settings=settings, noise=False, ct=False)
    with_f, without = simulate_study(case, **kw), simulate_study(bare, **kw)
    heights = [f.centre_mm[2] for f in case.findings]
    return (_slices_at(with_f, rs, heights) - _slices_at(without, rs, heights),
            with_f.dr.astype(np.float64) - without.dr.astype(np.float64))


def _case_identity(case: str) -> str:
    """The case as the noise seed sees it: a case file by its content (the same file copied to another
    folder or machine gives the same noise), a bundled case by its name."""
    from pathlib import Path

    p = Path(case)
    if p.suffix == ".toml" and p.is_file():
        return "sha1:" + hashlib.sha1(p.read_bytes()).hexdigest()
    return case


def _seeds(run: RunSpec):
    protocol = replace(run, seed=0, case=_case_identity(run.case)).key
    return np.random.SeedSequence([int(run.seed), zlib.crc32(protocol.encode())]).spawn(3)


def _roi_size(radius_px: float) -> int:
    return int(max(9, 2 * math.ceil(3.0 * radius_px) + 1))


def _dprime(signal_img, absent_img, present_img, centre_rc, radius_px, rng, valid=None):
    size = _roi_size(radius_px)
    half = size // 2
    r0, c0 = int(round(centre_rc[0])), int(round(centre_rc[1]))
    if r0 - half < 0 or c0 - half < 0 or r0 + half >= signal_img.shape[0] or c0 + half >= signal_img.shape[1]:
        return float("nan"), float("nan")
    template = np.asarray(signal_img[r0 - half:r0 + half + 1, c0 - half:c0 + half + 1], np.float64)
    offsets = roi_offsets(absent_img.shape, centre_rc, size, exclude_radius=size, window=5 * size, valid=valid)
    if not offsets:
        return float("nan"), float("nan")
    channels = lg_channels(size, max(2.0 * radius_px, 1.5))
    # each image's ROIs are taken relative to the mean level of its own background ROIs: a reader sets the
    # window on each image and reads the finding against its surroundings, and the two noise realisations
    # differ by a level over the whole neighbourhood (low-frequency noise) that no bootstrap over ROIs of
    # one image pair sees; without this, a slice's d' spread over 60 seeds 15 % wider than its error
    ra, rp = rois(absent_img, offsets, size), rois(present_img, offsets, size)
    ra -= ra.mean()
    rp -= rp.mean()
    return cho_dprime(template, ra, rp, channels, rng)


def measure(run: RunSpec) -> list[dict]:
    from ..evidence import film_pixel
    from ..phantoms.case import load_case
    from ..progress import drive
    from ..reconstruct import Reconstructor
    from ..simulate import simulate_study
    from ..workflow import contrast_to_noise, focus_profile

    case, sweep, settings, detector, rs = _protocol(run)
    bare = load_case(case.source or run.case, with_findings=False)
    s_present, s_absent, s_observer = _seeds(run)
    kw = dict(sweep=sweep, detector=detector, settings=settings, ct=False)
    present = simulate_study(case, rng=np.random.default_rng(s_present), **kw)
    absent = simulate_study(bare, rng=np.random.default_rng(s_absent), **kw)
    rec = drive(Reconstructor(present.projections, present.geometry, rs,
                              object_range_mm=present.metadata.get("object_height_range_mm")).run())
    heights = [f.centre_mm[2] for f in case.findings]
    absent_slices = _slices_at(absent, rs, heights)
    signal_slices, signal_film = _noise_free(replace(run, mas=None, seed=0))
    rng = np.random.default_rng(s_observer)
    px = rec.pixel_spacing_mm[0]
    ds, df = present.metadata["dose_sweep"], present.metadata["dose_plain_film"]
    rows = []
    for i, f in enumerate(case.findings):
        x, y, z = f.centre_mm
        sign = -1.0 if f.contrast == "lucent" else 1.0
        r, c = rec.pixel_of(x, y)
        k = int(np.argmin(np.abs(rec.heights_mm - z)))
        radius = f.size_mm / 2 / px
        prof = focus_profile(sign * rec.slices, r, c, px, radii_mm=(0.4 * f.size_mm,))
        focus = float(rec.heights_mm[int(np.argmax(prof))])
        fr, fc, m = film_pixel(present, x, y, z)
        film_radius = f.size_mm / 2 * m / detector.pitch_row_mm
        valid = rec.view_fraction[k] >= 128 if rec.view_fraction is not None else None
        d_slice = _dprime(signal_slices[i], absent_slices[i], rec.slices[k], (r, c), radius, rng, valid)
        d_film = _dprime(signal_film, absent.dr, present.dr, (fr, fc), film_radius, rng)
        rows.append({
            "finding": f.name, "occult_on_film": bool(f.occult_on_plain_film), "size_mm": float(f.size_mm),
            "cnr_film": sign * contrast_to_noise(present.dr, fr, fc, film_radius),
            "cnr_slice": sign * contrast_to_noise(rec.slices[k], r, c, radius),
            "focus_height_mm": focus, "focus_error_mm": abs(focus - z),
            "dprime_film": d_film[0], "dprime_film_se": d_film[1],
            "dprime_slice": d_slice[0], "dprime_slice_se": d_slice[1],
            "esak_mgy": ds["entrance_surface_air_kerma_total_ugy"] / 1000.0,
            "effective_dose_msv": ds["effective_dose_msv"],
            "film_esak_mgy": df["entrance_surface_air_kerma_total_ugy"] / 1000.0,
            "film_effective_dose_msv": df["effective_dose_msv"],
        })
    return rows


MEASURED = COLUMNS[COLUMNS.index("size_mm"):COLUMNS.index("seconds")]


def _row(run: RunSpec, values: dict, seconds: float, error: str = "") -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(dict.fromkeys(MEASURED, float("nan")))  # what could not be measured is NaN, never missing
    row.update(run.as_dict())
    row.update(values)
    row.update(run_id=run.run_id, seconds=round(seconds, 3), error=error)
    return row


def run_one(run: RunSpec) -> dict:
    """Simulate, reconstruct and measure one run: ``{"run_id", "key", "rows", "error"}`` (never raises for a
    run's own parameters; a lost worker is the engine's business)."""
    from ..errors import VolumedrError

    t0 = time.perf_counter()
    try:
        values = measure(run)
        dt = time.perf_counter() - t0
        return {"run_id": run.run_id, "key": run.key, "error": "", "rows": [_row(run, v, dt) for v in values]}
    except (VolumedrError, ValueError, ArithmeticError, MemoryError) as exc:
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return {"run_id": run.run_id, "key": run.key, "error": msg,
                "rows": [_row(run, {}, time.perf_counter() - t0, msg)]}
