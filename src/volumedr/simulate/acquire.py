"""The acquisition simulator: a bundled case -> projections, plain film, CT reference.

Physics per view (docs/physics.md):

1. exact per-material path lengths of every ray (source -> pixel centre)
   through the analytic primitives;
2. Beer-Lambert over the tube spectrum (energy bins of ``energy_bin_kev``),
   weighted by the CsI detector's absorption: the quantum-weighted
   transmission Tq sets the photon statistics, the energy-weighted Te the
   mean signal (an energy-integrating detector);
3. optional scatter: a broad Gaussian blur of the primary times a
   scatter-to-primary fraction, cut by the anti-scatter grid;
4. Poisson noise on the absorbed quanta (counts from the mAs per view, the
   spectrum's fluence at the source-to-image distance and the pixel area),
   scintillator blur, additive electronic noise;
5. flat-field and log: p = -ln(I / I0).
"""
from __future__ import annotations

import datetime as _dt
import time
import uuid

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from ..geometry import AcquisitionGeometry, Detector, Sweep, plain_film_geometry
from ..phantoms.case import Case, load_case
from ..phantoms.materials import Material, mu_table
from ..phantoms.primitives import PackedPrimitives, pack
from ..progress import CancelToken, Progress, drive
from ..study import CTReference, Study
from ..sysinfo import check_fits
from . import _kernels as K
from .ct import ct_reference
from .dose import dose_report
from .project import path_lengths
from .settings import AcquisitionSettings
from .spectrum import Spectrum

MIN_TRANSMISSION = 1e-6


def _csi_efficiency(energies_kev, thickness_mm) -> np.ndarray:
    import xraylib

    d = xraylib.GetCompoundDataNISTByName("Cesium Iodide")
    csi = Material("CsI", d["density"], tuple(d["Elements"]), tuple(d["massFractions"]))
    return 1.0 - np.exp(-csi.mu_per_mm(energies_kev) * thickness_mm)


class _Beam:
    """Spectrum, detector response and attenuation tables for one exposure setting."""

    def __init__(self, material_names, detector: Detector, settings: AcquisitionSettings):
        self.spectrum = Spectrum.from_table(settings.kvp, settings.filtration)
        e, fluence = self.spectrum.binned(settings.energy_bin_kev)
        eta = _csi_efficiency(e, detector.csi_thickness_mm)
        absorbed = fluence * eta  # absorbed quanta per mm^2 per mAs at 1 m
        self.energies_kev = e
        self.wq = absorbed / absorbed.sum()
        self.we = absorbed * e / np.sum(absorbed * e)
        self.absorbed_per_mm2_per_mas_at_1m = float(absorbed.sum())
        self.mu = np.ascontiguousarray(mu_table(list(material_names), e), dtype=np.float64)

    def open_field_quanta(self, detector: Detector, mas: float, distance_mm: float, grid_t: float) -> float:
        area = detector.pitch_row_mm * detector.pitch_col_mm
        return self.absorbed_per_mm2_per_mas_at_1m * mas * (1000.0 / distance_mm) ** 2 * area * grid_t


class PrimitiveLengths:
    """Exact per-material path lengths through analytic primitives: (geometry, view, out) -> (M, R, C) mm."""

    def __init__(self, packed: PackedPrimitives):
        self.packed = packed
        self.material_names = tuple(packed.material_names)

    def __call__(self, geometry, view, out=None):
        return path_lengths(self.packed, geometry, view, out=out)


def path_length_source(case: Case):
    """The path-length provider of a case: voxels (a CT volume), voxels with analytic objects inside them
    (a hybrid case), or analytic primitives."""
    if case.volume is not None:
        from .voxel import HybridLengths, VoxelLengths

        base = HybridLengths(case.volume, case.primitives) if case.primitives else VoxelLengths(case.volume)
    else:
        base = PrimitiveLengths(pack(list(case.primitives)))
    from ..phantoms.texture import case_texture

    texture = case_texture(case)
    if texture is None:
        return base
    from .voxel import TexturedLengths

    return TexturedLengths(base, texture)


def _expose(lengths, geometry: AcquisitionGeometry, view: int, beam: _Beam, mas: float,
            settings: AcquisitionSettings, rng: np.random.Generator, noise: bool, L_buf=None) -> np.ndarray:
    det = geometry.detector
    L = lengths(geometry, view, out=L_buf)
    tq = np.empty(det.shape, np.float64)
    te = np.empty(det.shape, np.float64)
    K.polychromatic(L, beam.mu, beam.wq, beam.we, tq, te)
    grid_p = settings.grid_primary_transmission if settings.grid else 1.0
    src = geometry.source_positions_mm[view]
    dist = float(np.linalg.norm(src - geometry.detector_centres_mm[view]))
    n0 = beam.open_field_quanta(det, mas, dist, grid_p)
    quanta = n0 * tq
    if settings.scatter_fraction > 0:
        frac = settings.scatter_fraction * ((settings.grid_scatter_transmission / grid_p) if settings.grid else 1.0)
        f = max(1, int(min(det.shape) // 64))
        small = quanta[: det.rows // f * f, : det.cols // f * f].reshape(det.rows // f, f, det.cols // f, f).mean((1, 3))
        sig = (settings.scatter_kernel_mm / (det.pitch_row_mm * f), settings.scatter_kernel_mm / (det.pitch_col_mm * f))
        blurred = ndimage.gaussian_filter(small, sig, mode="nearest")
        scat = ndimage.zoom(blurred, (det.rows / blurred.shape[0], det.cols / blurred.shape[1]), order=1)
        quanta = quanta + frac * scat[: det.rows, : det.cols]
    energy_ratio = np.divide(te, tq, out=np.ones_like(te), where=tq > 0)
    if noise:
        signal = rng.poisson(quanta).astype(np.float64) * energy_ratio
    else:
        signal = quanta * energy_ratio
    sig_px = (det.scintillator_blur_mm / det.pitch_row_mm, det.scintillator_blur_mm / det.pitch_col_mm)
    if max(sig_px) > 0.05:
        signal = ndimage.gaussian_filter(signal, sig_px, mode="nearest", truncate=3.0)
    if noise and det.electronic_noise_quanta > 0:
        signal = signal + rng.normal(0.0, det.electronic_noise_quanta, size=signal.shape)
    ratio = np.maximum(signal / n0, MIN_TRANSMISSION)
    return (-np.log(ratio)).astype(np.float32)


def exam_doses(case: Case, geometry: AcquisitionGeometry, film_geometry: AcquisitionGeometry, spectrum: Spectrum,
               settings: AcquisitionSettings):
    """Dose reports (sweep, plain film) of an examination of ``case`` with these settings."""
    kw = dict(kerma_ugy_per_mas_at_1m=spectrum.air_kerma_ugy_per_mas_at_1m,
              skin_height_mm=float(case.bounds_mm()[1, 2]), field_mm=case.field_mm,
              backscatter_factor=settings.backscatter_factor,
              coeff_msv_per_gy_cm2=case.effective_dose_coeff_msv_per_gy_cm2)
    return (dose_report(geometry, mas_per_view=settings.mas_per_view(geometry.n_views), **kw),
            dose_report(film_geometry, mas_per_view=settings.plain_film_mas, **kw))


def sweep_from_case(case: Case, **overrides) -> Sweep:
    p = case.protocol
    kw = dict(kind=p.get("kind", "linear"), total_angle_deg=float(p.get("total_angle_deg", 30.0)),
              n_projections=int(p.get("n_projections", 60)),
              source_to_image_mm=float(p.get("source_to_image_mm", 1800.0)),
              pivot_height_mm=float(p.get("pivot_height_mm", 100.0)), direction=p.get("direction", "y"))
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return Sweep(**kw)


def settings_from_case(case: Case, **overrides) -> AcquisitionSettings:
    p = case.protocol
    kw = {k: p[k] for k in ("kvp", "filtration", "sweep_mas", "plain_film_mas") if k in p}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return AcquisitionSettings(**kw)


def readout_bin_from_case(case: Case) -> int:
    """The binning the case's protocol reads the panel out at for the sweep (``readout_bin``, default 1)."""
    v = case.protocol.get("readout_bin", 1)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 16:
        from ..errors import ParameterError

        raise ParameterError(f"case {case.name!r}: [protocol] readout_bin must be a whole number 1 to 16, got {v!r}")
    return v


def new_uid() -> str:
    """A new DICOM UID (2.25 + a random UUID as a decimal integer, as DICOM PS3.5 B.2 allows)."""
    return f"2.25.{uuid.uuid4().int}"


def case_ct_reference(case: Case, settings: AcquisitionSettings | None = None,
                      rng: np.random.Generator | None = None) -> CTReference:
    """The CT pane of a case: a real CT as it is (with a hybrid case's analytic objects painted in), or the analytic phantom voxelised (noise only with ``rng``)."""
    settings = settings or AcquisitionSettings()
    if case.volume is not None:
        from .voxel import hybrid_hu

        v = case.volume
        hu = hybrid_hu(v, case.primitives) if case.primitives else np.asarray(v.hu, np.float32)
        return CTReference(hu, tuple(v.spacing_mm), tuple(v.origin_mm))
    return ct_reference(case, voxel_mm=settings.ct_voxel_mm, noise_hu=settings.ct_noise_hu if rng is not None else 0.0,
                        energy_kev=settings.ct_effective_energy_kev, rng=rng)


def simulate(case: Case | str, *, sweep: Sweep | None = None, detector: Detector | None = None,
             settings: AcquisitionSettings | None = None, rng: np.random.Generator | int | None = None,
             noise: bool = True, plain_film: bool = True, ct: bool = True):
    """Simulate a tomosynthesis examination of ``case`` (a generator).

    Yields :class:`~volumedr.progress.Progress` after each view; returns the
    :class:`~volumedr.study.Study`.  Use :func:`simulate_study` for a plain call.

    Parameters
    ----------
    case : Case or str
        A loaded case or a bundled case name.
    sweep : Sweep, optional
        Default: the case's protocol.
    detector : Detector, optional
        Default: the clinical 43 cm panel (2048 x 2048 at 0.21 mm).
    settings : AcquisitionSettings, optional
        Default: the case's protocol.
    rng : numpy Generator or int seed, optional
        Source of all randomness; the same seed gives the same study.
    noise : bool
        False gives noise-free expected values (for tests and teaching).
    """
    t_start = time.perf_counter()
    case = load_case(case) if isinstance(case, str) else case
    sweep = sweep if sweep is not None else sweep_from_case(case)
    detector = detector if detector is not None else Detector()
    settings = settings if settings is not None else settings_from_case(case)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    geometry = sweep.geometry(detector)
    top = float(case.bounds_mm()[1, 2])
    if top >= 0.8 * min(geometry.source_positions_mm[:, 2]):
        raise ParameterError(f"the patient (top at z = {top:.0f} mm) is too close to the tube; increase the SID")
    n = geometry.n_views
    lengths = path_length_source(case)
    n_mat = len(lengths.material_names)
    # projections + one view's work arrays (path lengths, transmissions, noise)
    check_fits(n * detector.rows * detector.cols * 4 + detector.rows * detector.cols * (4 * n_mat + 8 * 6),
               f"{n} projections of {detector.rows} x {detector.cols}")
    beam = _Beam(lengths.material_names, detector, settings)
    projections = np.empty((n, detector.rows, detector.cols), np.float32)
    L_buf = np.empty((n_mat, detector.rows, detector.cols), np.float32)
    mas_view = settings.mas_per_view(n)
    total_steps = n + int(plain_film) + int(ct)
    for i in range(n):
        projections[i] = _expose(lengths, geometry, i, beam, mas_view, settings, rng, noise, L_buf)
        yield Progress("simulating", i + 1, total_steps)
    dr = None
    pf_geom = plain_film_geometry(detector, sweep.source_to_image_mm)
    if plain_film:
        dr = _expose(lengths, pf_geom, 0, beam, settings.plain_film_mas, settings, rng, noise, L_buf)
        yield Progress("simulating", n + 1, total_steps)
    ct_ref = None
    if ct:
        ct_ref = case_ct_reference(case, settings, rng if noise else None)
        yield Progress("simulating", total_steps, total_steps)
    sweep_dose, film_dose = exam_doses(case, geometry, pf_geom, beam.spectrum, settings)
    b = case.bounds_mm()
    meta = {
        "study_instance_uid": new_uid(),
        "acquired_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0, tzinfo=None).isoformat(),
        "patient_axes": case.patient_axes,
        "body_part": case.body_part,
        "case": case.name, "case_title": case.title, "region": case.region, "history": case.history,
        "teaching": case.teaching, "notes": case.notes, "anatomy_source": case.anatomy_source,
        "sweep": {"kind": sweep.kind, "total_angle_deg": sweep.total_angle_deg, "n_projections": sweep.n_projections,
                  "source_to_image_mm": sweep.source_to_image_mm, "pivot_height_mm": sweep.pivot_height_mm,
                  "direction": sweep.direction},
        "acquisition": {"kvp": settings.kvp, "filtration": settings.filtration, "sweep_mas": settings.sweep_mas,
                        "mas_per_view": mas_view, "plain_film_mas": settings.plain_film_mas,
                        "mean_energy_kev": beam.spectrum.mean_energy_kev, "hvl_mm_al": beam.spectrum.hvl_mm_al,
                        "scatter_fraction": settings.scatter_fraction, "grid": settings.grid, "noise": noise,
                        "detector_rows": detector.rows, "detector_cols": detector.cols},
        "dose_sweep": sweep_dose.as_dict(), "dose_plain_film": film_dose.as_dict(),
        "dose_published": dict(case.published_dose),
        "object_height_range_mm": [max(0.5, float(b[0, 2])), float(b[1, 2])],
        "reconstruction_defaults": dict(case.reconstruction),
        "simulation_seconds": time.perf_counter() - t_start,
    }
    findings = [{"name": f.name, "centre_mm": list(f.centre_mm), "size_mm": f.size_mm,
                 "occult_on_plain_film": f.occult_on_plain_film, "description": f.description, "code": f.code,
                 "contrast": f.contrast}
                for f in case.findings]
    return Study(projections=projections, geometry=geometry, dr=dr, ct_reference=ct_ref, metadata=meta,
                 findings=findings)


def plain_film(case: Case | str, detector: Detector, *, settings: AcquisitionSettings | None = None,
               rng: np.random.Generator | int | None = None, noise: bool = True) -> np.ndarray:
    """The conventional radiograph of ``case`` alone (line integrals, as ``Study.dr``), at the case's
    protocol: for teaching material and for checks on the film that need no sweep."""
    case = load_case(case) if isinstance(case, str) else case
    settings = settings if settings is not None else settings_from_case(case)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    lengths = path_length_source(case)
    beam = _Beam(lengths.material_names, detector, settings)
    geometry = plain_film_geometry(detector, sweep_from_case(case).source_to_image_mm)
    return _expose(lengths, geometry, 0, beam, settings.plain_film_mas, settings, rng, noise)


def simulate_study(case, *, on_progress=None, cancel: CancelToken | None = None, **kw) -> Study:
    """Run :func:`simulate` to completion (optionally reporting progress)."""
    return drive(simulate(case, **kw), on_progress=on_progress, cancel=cancel)
