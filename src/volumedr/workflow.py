"""Qt-free jobs and helpers that the workstation window drives.

Jobs are generators: they yield :class:`~volumedr.progress.Progress` events
(and, for reconstruction, one ``Preview`` with the slice the user is looking
at, before the rest) and return their result.  The window runs them in a
worker thread; tests run them directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Detector, Sweep, plain_film_geometry
from .phantoms.case import Case, load_case
from .reconstruct import Reconstructor, ReconSettings
from .simulate import AcquisitionSettings, Spectrum, simulate
from .simulate.acquire import exam_doses
from .simulate.dose import DoseReport
from .study import Reconstruction, Study

DETECTOR_BINNING = {"256 x 256 (quick look)": 8, "512 x 512 (preview)": 4, "1024 x 1024": 2, "2048 x 2048 (full)": 1}


@dataclass(frozen=True)
class Preview:
    """The slice on screen, reconstructed before the others."""

    height_mm: float
    image: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    origin_mm: tuple[float, float]


def dose_preview(case: Case, sweep: Sweep, settings: AcquisitionSettings,
                 detector: Detector | None = None) -> tuple[DoseReport, DoseReport]:
    """Sweep and plain-film dose for the settings, without simulating (for a live readout)."""
    detector = detector or Detector().binned(8)
    return exam_doses(case, sweep.geometry(detector), plain_film_geometry(detector, sweep.source_to_image_mm),
                      Spectrum.from_table(settings.kvp, settings.filtration), settings)


def acquire_job(case: Case | str, sweep: Sweep, settings: AcquisitionSettings, detector: Detector, seed=None):
    """Generator: simulate an examination (yields Progress, returns Study)."""
    case = load_case(case) if isinstance(case, str) else case
    study = yield from simulate(case, sweep=sweep, detector=detector, settings=settings,
                                rng=np.random.default_rng(seed))
    return study


@dataclass(frozen=True)
class PartialReconstruction:
    """The slices after one SART iteration, shown while the next ones run."""

    reconstruction: Reconstruction
    iteration: int
    n_iterations: int
    residual: float


def reconstruct_job(study: Study, settings: ReconSettings, current_height_mm: float | None = None):
    """Generator: filter, yield a Preview of the slice nearest ``current_height_mm`` (for SART: its FBP),
    then all slices; SART also yields a :class:`PartialReconstruction` after each iteration."""
    from .reconstruct.iterative import IterationResult

    r = Reconstructor(study.projections, study.geometry, settings,
                      object_range_mm=study.metadata.get("object_height_range_mm"))
    yield from r.prepare()
    h = r.heights_mm
    target = float(h[len(h) // 2]) if current_height_mm is None else float(h[np.argmin(np.abs(h - current_height_mm))])
    yield Preview(target, r.slice_at(target), r.grid.pixel_spacing_mm, r.grid.origin_mm)
    gen = r.run(partial=settings.method == "sart")
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        if isinstance(ev, IterationResult):
            ev = PartialReconstruction(
                Reconstruction(slices=ev.slices, heights_mm=r.heights_mm.copy(), pixel_spacing_mm=r.grid.pixel_spacing_mm,
                               origin_mm=r.grid.origin_mm, thickness_mm=settings.thickness_mm, method="sart",
                               parameters=r.parameters(iteration=ev.iteration)),
                ev.iteration, ev.n_iterations, ev.residual)
        yield ev


def slab(slices: np.ndarray, index: int, n: int, mode: str) -> np.ndarray:
    """Average or maximum over ``n`` slices centred on ``index`` (mode 'single', 'average', 'mip')."""
    if mode == "single" or n <= 1:
        return slices[index]
    lo = max(0, index - n // 2)
    hi = min(len(slices), lo + n)
    block = slices[lo:hi]
    return block.max(axis=0) if mode == "mip" else block.mean(axis=0)


def _neighbourhood(shape, row: float, col: float, r: float, *, exact_centre: bool):
    """(ys, xs, rr, ok): pixel indices within 2.5 r of (row, col), their distance from it (from the nearest
    pixel centre unless ``exact_centre``) and whether they lie inside an image of ``shape``."""
    half = int(np.ceil(2.5 * r)) + 1
    r0, c0 = int(round(row)), int(round(col))
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1]
    rr = np.hypot(ys + r0 - row, xs + c0 - col) if exact_centre else np.hypot(ys, xs)
    ys, xs = ys + r0, xs + c0
    ok = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    return ys, xs, rr, ok


def focus_profile(slices: np.ndarray, row: float, col: float, pixel_mm: float = 1.0,
                  radii_mm=(2.5, 4.0, 6.0)) -> np.ndarray:
    """Focus measure of every slice for a dense structure centred at (row, col).

    A compact structure is in focus where it stands out most from its
    surround: the measure is the largest, over a few radii r, of
    mean(disc of radius r) - mean(annulus 1.5 r .. 2.5 r) (signed: denser than
    the surround).  Edge measures (variance of the Laplacian) and unsigned
    contrast were tried and are drawn to rib edges crossing the point.  Depth
    resolution falls with size (about d / tan(sweep/2)), so for structures
    over ~10 mm the answer is only approximate, and where two dense
    structures overlap the more conspicuous one wins.
    """
    n, ny, nx = slices.shape
    best = np.full(n, -np.inf)
    for r_mm in radii_mm:
        r = max(1.0, r_mm / pixel_mm)
        ys, xs, rr, ok = _neighbourhood((ny, nx), row, col, r, exact_centre=False)
        disc = ok & (rr <= r)
        ring = ok & (rr >= 1.5 * r) & (rr <= 2.5 * r)
        if disc.sum() == 0 or ring.sum() == 0:
            continue
        vd = slices[:, ys[disc], xs[disc]].mean(axis=1)
        vr = slices[:, ys[ring], xs[ring]].mean(axis=1)
        best = np.maximum(best, vd - vr)
    return np.where(np.isfinite(best), best, 0.0)


def sharpest_slice(slices: np.ndarray, row: float, col: float, pixel_mm: float = 1.0) -> int:
    """Index of the slice where the structure at (row, col) is sharpest (depth from focus)."""
    return int(np.argmax(focus_profile(slices, row, col, pixel_mm)))


def contrast_to_noise(image: np.ndarray, row: float, col: float, radius_px: float) -> float:
    """Contrast-to-noise ratio of a round finding of ``radius_px`` centred at (row, col).

    Signal: mean over the inner disc (0.8 r) minus the local background at the
    centre; background: a plane fitted to the annulus 1.5 r .. 2.5 r, so a
    smooth gradient (the edge of the heart's blur) is not counted as noise;
    noise: the standard deviation of the annulus about that plane, which
    includes quantum noise and overlapping anatomy ("anatomical noise", what
    hides a nodule on a plain film).
    """
    img = np.asarray(image, np.float64)
    r = max(1.0, float(radius_px))
    ys, xs, rr, ok = _neighbourhood(img.shape, row, col, r, exact_centre=True)
    disc = ok & (rr <= 0.8 * r)
    ring = ok & (rr >= 1.5 * r) & (rr <= 2.5 * r)
    if disc.sum() < 1 or ring.sum() < 6:
        return float("nan")
    dy, dx = ys[ring] - row, xs[ring] - col
    A = np.stack([np.ones_like(dy, dtype=np.float64), dy, dx], axis=1)
    v = img[ys[ring], xs[ring]]
    coef, *_ = np.linalg.lstsq(A, v, rcond=None)
    resid = v - A @ coef
    noise = float(resid.std())
    signal = float(img[ys[disc], xs[disc]].mean() - (coef[0] + coef[1] * (ys[disc] - row).mean()
                                                      + coef[2] * (xs[disc] - col).mean()))
    return signal / noise if noise > 0 else float("inf")
