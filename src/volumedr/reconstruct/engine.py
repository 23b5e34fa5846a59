"""The reconstruction engine: slices parallel to the detector by SAA or FBP.

Public entry points validate everything before any work starts; the numba
kernels in ``_kernels`` then run one chunk of slices per call so the loop can
report progress, stop on cancel and stream slices to a file.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import GeometryError, ParameterError
from ..geometry import AcquisitionGeometry, require_sweep
from ..progress import CancelToken, Progress, drive
from ..study import Reconstruction
from ..sysinfo import check_fits
from ._kernels import backproject as K
from .filters import ProjectionFilter, edge_taper, taper_margin
from .settings import ReconSettings

CHUNK_BYTES = 64 * 2**20
FULL_WEIGHT = 0.5  # pixels seen by at least this fraction of the views are normalised exactly
MODEL_MARGIN = 0.15  # SART's model reaches this fraction of the slice grid beyond it on every side
MAR_PLANE_MM = 4.0  # MAR looks for the metal's support and its peak over height on planes this far apart


def fraction_u8(weight: np.ndarray) -> np.ndarray:
    """A view fraction 0..1 as uint8 0..255 (the form it is stored in)."""
    return np.clip(np.rint(weight * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class SliceGrid:
    """The in-plane sampling of every slice.

    ``origin_mm`` is (x, y) of the centre of pixel (0, 0); ``pixel_spacing_mm``
    is (row, col).  By default the grid has the detector's pixel counts and
    its pitch demagnified to the middle of the height range, centred on the
    point there that projects onto the mean detector centre.
    """

    shape: tuple[int, int]
    pixel_spacing_mm: tuple[float, float]
    origin_mm: tuple[float, float]

    def __post_init__(self):
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ParameterError(f"slice grid shape must be two positive integers, got {self.shape}")
        if not all(np.isfinite(v) and v > 0 for v in self.pixel_spacing_mm):
            raise ParameterError(f"slice pixel spacing must be positive, got {self.pixel_spacing_mm}")

    @classmethod
    def default(cls, geometry: AcquisitionGeometry, height_ref_mm: float, shape=None,
                heights_mm=None) -> "SliceGrid":
        """The detector's pitch demagnified to ``height_ref_mm``; by default the grid covers the mean
        detector footprint there and, over ``heights_mm``, every pixel that at least half the views see
        (the edge of a wide or short-radius sweep), at most 1.5 times the detector's pixel count."""
        det = geometry.detector
        s = geometry.source_positions_mm
        d = geometry.detector_centres_mm
        sz = float(s[:, 2].mean())
        demag = (sz - height_ref_mm) / sz
        spacing = (det.pitch_row_mm * demag, det.pitch_col_mm * demag)
        t = (s[:, 2] - height_ref_mm) / s[:, 2]
        cx = float(np.mean(s[:, 0] + (d[:, 0] - s[:, 0]) * t))
        cy = float(np.mean(s[:, 1] + (d[:, 1] - s[:, 1]) * t))
        if shape is not None:
            ny, nx = shape
            return cls((int(ny), int(nx)), spacing, (cx - (nx - 1) / 2 * spacing[1], cy - (ny - 1) / 2 * spacing[0]))
        ny, nx = det.shape
        lo = np.array([cx - (nx - 1) / 2 * spacing[1], cy - (ny - 1) / 2 * spacing[0]])
        hi = np.array([cx + (nx - 1) / 2 * spacing[1], cy + (ny - 1) / 2 * spacing[0]])
        half = np.array([(det.cols - 1) / 2 * det.pitch_col_mm, (det.rows - 1) / 2 * det.pitch_row_mm])
        for h in (np.atleast_1d(heights_mm) if heights_mm is not None else []):
            th = ((s[:, 2] - h) / s[:, 2])[:, None]  # the detector's edges seen from each source at height h
            v_lo = s[:, :2] + (d[:, :2] - half - s[:, :2]) * th
            v_hi = s[:, :2] + (d[:, :2] + half - s[:, :2]) * th
            lo = np.minimum(lo, np.median(v_lo, axis=0))
            hi = np.maximum(hi, np.median(v_hi, axis=0))
        n = np.ceil((hi - lo) / np.array([spacing[1], spacing[0]]) - 1e-6).astype(int) + 1
        n = np.minimum(n, (1.5 * np.array([det.cols, det.rows])).astype(int))
        centre = (lo + hi) / 2
        nx, ny = int(n[0]), int(n[1])
        return cls((ny, nx), spacing, (float(centre[0] - (nx - 1) / 2 * spacing[1]),
                                       float(centre[1] - (ny - 1) / 2 * spacing[0])))


def plane_coefficients(geometry: AcquisitionGeometry, grid: SliceGrid, heights_mm: np.ndarray):
    """(a_col, b_col, a_row, b_row), each (S, Q, V) float64, for planes heights_mm (S, Q)."""
    h = np.asarray(heights_mm, dtype=np.float64)[..., None]  # (S, Q, 1)
    det = geometry.detector
    s = geometry.source_positions_mm
    d = geometry.detector_centres_mm
    sx, sy, sz = s[:, 0], s[:, 1], s[:, 2]
    m = sz / (sz - h)  # magnification of plane h in view v
    py, px = grid.pixel_spacing_mm
    oy = grid.origin_mm[1]
    ox = grid.origin_mm[0]
    a_col = m * px / det.pitch_col_mm
    b_col = (sx * (1 - m) + m * ox - d[:, 0]) / det.pitch_col_mm + (det.cols - 1) / 2.0
    a_row = m * py / det.pitch_row_mm
    b_row = (sy * (1 - m) + m * oy - d[:, 1]) / det.pitch_row_mm + (det.rows - 1) / 2.0
    return (np.ascontiguousarray(a_col), np.ascontiguousarray(b_col),
            np.ascontiguousarray(a_row), np.ascontiguousarray(b_row))


def subplane_heights(heights_mm: np.ndarray, settings: ReconSettings) -> np.ndarray:
    """(S, Q) heights of the thin planes averaged into each slice."""
    q = settings.n_subplanes
    if q == 1:
        return np.asarray(heights_mm, float)[:, None]
    step = settings.thickness_mm / q
    offs = (np.arange(q) - (q - 1) / 2.0) * step
    return np.asarray(heights_mm, float)[:, None] + offs[None, :]


def default_height_range(geometry: AcquisitionGeometry, settings: ReconSettings,
                         object_range_mm=None) -> tuple[float, float]:
    """The object's height range when known, else from 1 spacing up to 60 % of the lowest source (<= 300 mm)."""
    if object_range_mm is not None:
        lo, hi = float(object_range_mm[0]), float(object_range_mm[1])
        return max(lo, settings.spacing_mm / 2), hi
    top = min(300.0, 0.6 * float(geometry.source_positions_mm[:, 2].min()))
    return settings.spacing_mm, top


class Reconstructor:
    """Reconstructs slices from one study's projections.

    Construction validates everything (before any work).  Filtering of the
    projections happens once, on first use (or explicitly through
    :meth:`prepare`, a generator that reports progress); after that
    :meth:`slice_at` returns one slice on demand and :meth:`run` yields all
    slices chunk by chunk.
    """

    def __init__(self, projections: np.ndarray, geometry: AcquisitionGeometry, settings: ReconSettings | None = None,
                 *, grid: SliceGrid | None = None, object_range_mm=None, grid_shape=None):
        settings = settings or ReconSettings()
        proj = np.asarray(projections)
        if proj.ndim != 3:
            raise ParameterError(f"projections must be (n_views, rows, cols), got shape {proj.shape}")
        if proj.shape[0] != geometry.n_views:
            raise ParameterError(f"{proj.shape[0]} projections but the geometry has {geometry.n_views} views")
        if proj.shape[1:] != geometry.detector.shape:
            raise ParameterError(f"projections are {proj.shape[1]} x {proj.shape[2]} but the detector is "
                                 f"{geometry.detector.rows} x {geometry.detector.cols}")
        try:
            require_sweep(geometry)
        except GeometryError as exc:
            raise ParameterError(str(exc)) from None
        bad = ~np.isfinite(proj)
        if bad.any():
            v = int(np.argwhere(bad.any(axis=(1, 2)))[0, 0])
            raise ParameterError(f"projections contain {int(bad.sum())} NaN or infinite values (first in view {v})")
        self.geometry = geometry
        self.settings = settings
        lo, hi = default_height_range(geometry, settings, object_range_mm)
        self.heights_mm = settings.heights_mm((lo, hi))
        self._check_heights(subplane_heights(self.heights_mm, settings))
        self.grid = grid if grid is not None else SliceGrid.default(
            geometry, float(self.heights_mm.mean()), grid_shape,
            heights_mm=(self.heights_mm[0], self.heights_mm[-1]))
        self.projections = proj.astype(np.float32, copy=False)
        self._filtered = None
        self._filter = None
        self._fbp = None
        self._object_range_mm = object_range_mm
        self.mar_summary = None  # set once MAR has looked for metal (settings.mar)
        self._metal = None
        self.sparse = False  # projections mostly zero (MAR's metal-only part): the backprojection skips the zeros
        self._spans = None
        if settings.mar:
            check_fits(3 * self.projections.nbytes, f"metal artefact reduction on {proj.shape[0]} projections "
                       f"of {proj.shape[1]} x {proj.shape[2]}")
        if settings.method == "sart":
            self._setup_sart(object_range_mm)

    def _check_heights(self, h: np.ndarray) -> None:
        zmin_src = float(self.geometry.source_positions_mm[:, 2].min())
        if h.min() <= 0:
            raise ParameterError(f"slice heights must be above the detector (> 0 mm); the range reaches {h.min():.2f} mm")
        if h.max() >= zmin_src:
            raise ParameterError(f"slice heights must be below the source (z = {zmin_src:.0f} mm); "
                                 f"the range reaches {h.max():.1f} mm")

    def _setup_sart(self, object_range_mm) -> None:
        """Model planes, subsets and the memory SART needs, checked before any work."""
        from dataclasses import replace

        from .iterative import Sart, default_subsets, model_heights

        s = self.settings
        n_views = self.geometry.n_views
        self.subsets = s.subsets if s.subsets is not None else default_subsets(n_views)
        if self.subsets > n_views:
            raise ParameterError(f"SART subsets ({self.subsets}) cannot outnumber the views ({n_views})")
        obj = object_range_mm if object_range_mm is not None else (self.heights_mm[0], self.heights_mm[-1])
        zsrc = float(self.geometry.source_positions_mm[:, 2].min())
        self.model_heights_mm = model_heights(obj, self.heights_mm, s.spacing_mm, zsrc)
        need = Sart.memory_bytes(n_views, self.geometry.detector.shape, len(self.model_heights_mm),
                                 self._model_grid()[0].shape, -(-n_views // self.subsets))
        check_fits(need + self.projections.nbytes, f"SART ({len(self.model_heights_mm)} model planes of "
                   f"{self.grid.shape[0]} x {self.grid.shape[1]} and {n_views} views)")
        # the FBP of the same data: the preview shown at once, and SART's starting point
        self._fbp = Reconstructor(self.projections, self.geometry, replace(s, method="fbp", mar=False), grid=self.grid,
                                  object_range_mm=object_range_mm)
        self._fbp.heights_mm = self.heights_mm

    # -- filtering -------------------------------------------------------------
    @property
    def filtered_projections(self) -> np.ndarray:
        if self._filtered is None:
            drive(self.prepare())
        return self._filtered

    def prepare(self):
        """Generator: MAR when asked for, then weight and filter every projection (yields Progress)."""
        if self.settings.mar and self.mar_summary is None:
            yield from self._prepare_mar()
        if self._fbp is not None:
            yield from self._fbp.prepare()
            return
        if self._filtered is not None:
            return
        p = self.projections
        check_fits(p.nbytes * 1.3, f"filtering {p.shape[0]} projections of {p.shape[1]} x {p.shape[2]}")
        self._filter = ProjectionFilter(self.geometry, self.settings)
        out = np.empty_like(p, dtype=np.float32)
        taper = np.outer(self._taper_r, self._taper_c)
        for v in range(p.shape[0]):
            # the field's edge fades instead of ending in a step (the taper applied after filtering)
            self._filter.apply(p[v], v, out=out[v], taper=taper)
            yield Progress("filtering", v + 1, p.shape[0])
        self._filtered = out
        self._spans = None  # (found again from these projections when sparse)

    def _prepare_mar(self):
        """Generator: find the metal, fill its traces in the projections the tissue is reconstructed
        from, and set up the metal's own reconstruction (:mod:`.metal`)."""
        from dataclasses import replace

        from .metal import MetalPart, MetalSummary, crop_grid, fill_traces, find_metal

        t0 = time.perf_counter()
        s = self.settings
        obj = self._object_range_mm if self._object_range_mm is not None else (self.heights_mm[0], self.heights_mm[-1])
        zsrc = float(self.geometry.source_positions_mm[:, 2].min())
        lo = max(min(float(obj[0]), float(self.heights_mm[0])), 0.5)
        hi = min(max(float(obj[1]), float(self.heights_mm[-1])), 0.9 * zsrc)
        hm = np.linspace(lo, hi, max(2, int(np.ceil((hi - lo) / MAR_PLANE_MM)) + 1))
        masks, area, box, planes = yield from find_metal(self.projections, self.geometry, self.grid, hm,
                                                         s.mar_settings)
        if box is not None:
            filled, metal = yield from fill_traces(self.projections, masks)
            self.projections = filled
            if self._fbp is not None:
                self._fbp.projections = filled
            rec = Reconstructor(metal, self.geometry, replace(s, method="saa" if s.method == "saa" else "fbp",
                                                              mar=False),
                                grid=crop_grid(self.grid, box), object_range_mm=self._object_range_mm)
            rec.heights_mm = self.heights_mm
            # SAA's metal projections are the traces alone (mostly zeros: the sparse backprojection skips them);
            # FBP's filter spreads each trace along its detector line, and there the dense kernel is faster
            # (knee 0.095 against 0.16 s, hip 0.21 against 0.29 s for the metal's slices)
            rec.sparse = s.method == "saa"
            self._metal = MetalPart(rec, masks, (box[0].start, box[1].start), planes)
            yield from rec.prepare()
        self.mar_summary = MetalSummary(self.geometry.n_views, area, s.mar_settings.threshold,
                                        time.perf_counter() - t0)

    # -- slices ----------------------------------------------------------------
    @property
    def _taper_r(self) -> np.ndarray:
        return edge_taper(self.geometry.detector.rows, self._margin)

    @property
    def _taper_c(self) -> np.ndarray:
        return edge_taper(self.geometry.detector.cols, self._margin)

    @property
    def _margin(self) -> int:
        return taper_margin(min(self.geometry.detector.shape))

    def _coefficients(self, heights_mm):
        heights_mm = np.atleast_1d(np.asarray(heights_mm, dtype=np.float64))
        planes = subplane_heights(heights_mm, self.settings)
        self._check_heights(planes)
        return plane_coefficients(self.geometry, self.grid, planes), (len(heights_mm),) + self.grid.shape

    def _view_count(self, coeffs, shape, count=None) -> np.ndarray:
        """Backprojection of every view's (tapered) detector weight: how many views see each pixel
        (into ``count`` when given)."""
        count = np.empty(shape, np.float32) if count is None else count
        K.coverage_tapered(*coeffs, self._taper_r, self._taper_c, self._margin, count)
        return count

    def view_weight(self, heights_mm: np.ndarray) -> np.ndarray:
        """How many views see each pixel of the slices at ``heights_mm``, weighted as the backprojection
        weights them (the edge taper included), as a fraction of all views; (S, ny, nx) float32."""
        return self._view_count(*self._coefficients(heights_mm)) * self._scale()

    def _scale(self) -> np.float32:
        return np.float32(1.0 / (self.geometry.n_views * self.settings.n_subplanes))

    def backproject_heights(self, heights_mm: np.ndarray) -> np.ndarray:
        """Slices at ``heights_mm`` (each with the settings' thickness), (S, ny, nx) float32."""
        return self._backproject_with_fraction(heights_mm)[0]

    def _backproject_with_fraction(self, heights_mm, out=None, fraction=None, count=None):
        """(slices, their uint8 view fractions) at ``heights_mm`` (with the metal put back under MAR),
        into ``out``, ``fraction`` and the scratch ``count`` when given: a run passes its own arrays, as
        fresh memory for every chunk cost its page faults (about a fifth of a chunk's time at 1024²)."""
        if self.settings.mar and self.mar_summary is None:
            drive(self._prepare_mar())
        if self._fbp is not None:  # SART's on-demand slice is the FBP preview
            out, fraction = self._fbp._backproject_with_fraction(heights_mm, out, fraction, count)
        else:
            coeffs, shape = self._coefficients(heights_mm)
            out = np.empty(shape, np.float32) if out is None else out
            fraction = np.empty(shape, np.uint8) if fraction is None else fraction
            if self.sparse and self._spans is None:
                self._spans = K.row_spans(self.filtered_projections)
            K.backproject(self.filtered_projections, *coeffs, np.float32(1.0), out, self._spans)
            # normalise by the views that see each pixel (the whole field of view): exactly where at least
            # FULL_WEIGHT of them do, and fading towards the part of the field that few views see
            count = self._view_count(coeffs, shape, None if count is None else count[:shape[0]])
            K.normalise(out, count, np.float32(FULL_WEIGHT * self.geometry.n_views * self.settings.n_subplanes),
                        self._scale(), fraction)
        if self._metal is not None:
            self._metal.add_to(out, heights_mm)
        return out, fraction

    def slice_at(self, height_mm: float) -> np.ndarray:
        """One slice on demand (for the viewer), (ny, nx) float32."""
        if not np.isfinite(height_mm):
            raise ParameterError(f"slice height must be finite, got {height_mm}")
        return self.backproject_heights(np.array([float(height_mm)]))[0]

    def chunk_size(self) -> int:
        per_slice = self.grid.shape[0] * self.grid.shape[1] * 4
        n = len(self.heights_mm)
        by_memory = max(1, CHUNK_BYTES // max(per_slice, 1))
        by_progress = max(2, -(-n // 16))  # at least ~16 progress steps
        return max(1, min(n, by_memory, by_progress))

    def run(self, emit=None, partial: bool = False, emit_fraction=None):
        """Generator over the whole reconstruction (yields Progress).

        ``emit(start, block)`` receives each chunk of slices as it is done (to
        stream to a file; the block's memory is reused for the next chunk, so
        emit copies what it keeps); without it the slices are collected and the
        generator returns a :class:`~volumedr.study.Reconstruction`.  With
        ``partial``, SART also yields an ``IterationResult`` (the slices so
        far) after each iteration, for a viewer to show as it converges.
        ``emit_fraction(start, block)`` receives the matching uint8 view
        fractions (see :attr:`~volumedr.study.Reconstruction.view_fraction`).
        """
        t0 = time.perf_counter()
        n = len(self.heights_mm)
        collected = None
        if emit is None:
            check_fits(n * self.grid.shape[0] * self.grid.shape[1] * 4 + self.projections.nbytes,
                       f"{n} slices of {self.grid.shape[0]} x {self.grid.shape[1]}")
            collected = np.empty((n,) + self.grid.shape, np.float32)
            fractions = np.empty((n,) + self.grid.shape, np.uint8)
        yield from self.prepare()
        if self._fbp is not None:
            slices = yield from self._run_sart(partial)
            extra = {"residuals": self._sart_residuals}
        else:
            slices, extra = None, {}
        step = self.chunk_size()
        count = np.empty((min(step, n),) + self.grid.shape, np.float32) if slices is None else None
        if collected is None and slices is None:
            out_buf = np.empty_like(count)
            frac_buf = np.empty(count.shape, np.uint8)
        for start in range(0, n, step):
            hs = self.heights_mm[start:start + step]
            if slices is not None:
                block = slices[start:start + step]
                frac = fraction_u8(self._fbp.view_weight(hs))
            elif collected is not None:
                block, frac = self._backproject_with_fraction(hs, collected[start:start + len(hs)],
                                                              fractions[start:start + len(hs)], count)
            else:  # streamed: one chunk's arrays, reused (emit copies what it keeps)
                block, frac = self._backproject_with_fraction(hs, out_buf[:len(hs)], frac_buf[:len(hs)], count)
            if collected is not None:
                if slices is not None:
                    collected[start:start + len(block)] = block
                    fractions[start:start + len(block)] = frac
            else:
                emit(start, block)
                if emit_fraction is not None:
                    emit_fraction(start, frac)
            yield Progress("reconstructing", min(n, start + step), n)
        rec = Reconstruction(
            slices=collected, heights_mm=self.heights_mm.copy(), pixel_spacing_mm=self.grid.pixel_spacing_mm,
            origin_mm=self.grid.origin_mm, thickness_mm=self.settings.thickness_mm, method=self.settings.method,
            parameters=self.parameters(seconds=time.perf_counter() - t0, **extra),
            view_fraction=fractions if collected is not None else None)
        return rec

    def _run_sart(self, partial: bool):
        """Generator: OS-SART from the FBP (or zero), yielding Progress (and, if ``partial``, an
        :class:`~volumedr.reconstruct.iterative.IterationResult` after each iteration); returns the
        user's slices in mu (1/mm)."""
        from .filters import cosine_weights
        from ._kernels.sart import resample
        from .iterative import IterationResult, Sart, resample_weights

        s = self.settings
        g = self.geometry
        p = self.projections
        weighted = np.empty_like(p)
        for v in range(g.n_views):
            np.multiply(p[v], cosine_weights(g, v), out=weighted[v])
        hm = self.model_heights_mm
        mg, (my, mx) = self._model_grid()
        coeffs = plane_coefficients(g, mg, hm[:, None])
        sart = Sart(weighted, coeffs, mg.shape, hm, iterations=s.iterations, subsets=self.subsets,
                    relaxation=s.relaxation, tv_weight=s.tv_weight)
        x = np.zeros((len(hm),) + mg.shape, np.float32)
        if s.init == "fbp":
            K.backproject(self._fbp.filtered_projections, *coeffs, np.float32(1.0 / g.n_views), x)
            np.maximum(x, 0.0, out=x)  # scaled to fit the data in the first subset (Sart.run's fit_scale)
            yield Progress("SART start (FBP)", 1, 1)
        dz = sart.dz
        n_sub = s.n_subplanes
        events = []
        metal_scale = self._metal_mu_scale(hm, dz) if self._metal is not None else 0.0

        r_idx, r_w = resample_weights(hm, self.heights_mm, s.thickness_mm, n_sub)

        def user_slices(vol):
            ny, nx = self.grid.shape
            out = np.empty((len(self.heights_mm), ny, nx), np.float32)
            resample(vol[:, my:my + ny, mx:mx + nx], r_idx, r_w, 1.0 / (r_idx.shape[1] * dz), out)
            if self._metal is not None:
                self._metal.add_to(out, self.heights_mm, metal_scale)
            return out

        def on_iteration(it, residual, vol):
            if partial:
                events.append(IterationResult(it, s.iterations, residual, user_slices(vol)))

        gen = sart.run(x, emit_iterations=on_iteration, fit_scale=s.init == "fbp")
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                x = stop.value
                break
            yield ev
            while events:
                yield events.pop(0)
        while events:
            yield events.pop(0)
        self._sart_residuals = [float(r) for r in sart.residuals]
        return user_slices(x)

    def _metal_mu_scale(self, hm: np.ndarray, dz: float) -> float:
        """The factor that turns the metal's FBP into SART's mu (1/mm): least squares between the forward
        projection of the metal put back at the model heights and the cosine-weighted metal projections."""
        from .filters import cosine_weights

        g = self.geometry
        vol = np.ascontiguousarray(self._metal.slices(hm))
        ax = np.empty((g.n_views,) + g.detector.shape, np.float32)
        K.forward_project(vol, *plane_coefficients(g, self._metal.rec.grid, hm[:, None]), np.float32(1.0), ax)
        num = den = 0.0
        for v in range(g.n_views):
            a = ax[v].astype(np.float64)
            num += float(np.vdot(a, self._metal.rec.projections[v] * cosine_weights(g, v)))
            den += float(np.vdot(a, a))
        return num / den / dz if den > 0 else 0.0

    def _model_grid(self):
        """SART's in-plane model: the slice grid widened by MODEL_MARGIN on every side, so that the body
        beyond the slices (a patient wider than the field) has voxels to explain its share of the rays
        instead of piling it into the slices' edge, then cut to the rows and columns that some view of
        some model plane sees (plus one): voxels no ray reaches cannot explain any datum, and every
        pass over the volume (the update, TV) paid for them (a third of the model on a 1024² panel).
        Returns (grid, (row, col) of the slice grid's first pixel in it)."""
        ny, nx = self.grid.shape
        my, mx = int(round(MODEL_MARGIN * ny)), int(round(MODEL_MARGIN * nx))
        py, px = self.grid.pixel_spacing_mm
        wide = SliceGrid((ny + 2 * my, nx + 2 * mx), (py, px),
                         (self.grid.origin_mm[0] - mx * px, self.grid.origin_mm[1] - my * py))
        det = self.geometry.detector
        a_c, b_c, a_r, b_r = plane_coefficients(self.geometry, wide, self.model_heights_mm[:, None])

        def seen(a, b, n_det, n, first, count):
            # grid index i lands on detector index a i + b (a > 0); seen where -1 < a i + b < n_det
            lo = int(np.floor(((-1.0 - b) / a).min())) - 1
            hi = int(np.ceil(((n_det - b) / a).max())) + 1
            return min(max(0, lo), first), max(min(n - 1, hi), first + count - 1)

        r0, r1 = seen(a_r, b_r, det.rows, wide.shape[0], my, ny)
        c0, c1 = seen(a_c, b_c, det.cols, wide.shape[1], mx, nx)
        grid = SliceGrid((r1 - r0 + 1, c1 - c0 + 1), (py, px),
                         (wide.origin_mm[0] + c0 * px, wide.origin_mm[1] + r0 * py))
        return grid, (my - r0, mx - c0)

    def parameters(self, **extra) -> dict:
        s = self.settings
        d = {"method": s.method, "spacing_mm": s.spacing_mm, "thickness_mm": s.thickness_mm,
             "n_subplanes": s.n_subplanes, "dc_fraction": s.dc_fraction, "apodisation_cutoff": s.apodisation_cutoff,
             "thickness_filter": s.thickness_filter, "sweep_axis_xy": self.geometry.sweep_axis_xy.tolist(),
             **({"iterations": s.iterations, "subsets": self.subsets, "tv_weight": s.tv_weight, "init": s.init,
                 "relaxation": s.relaxation, "units": "mu 1/mm",
                 "model_planes_mm": [float(self.model_heights_mm[0]), float(self.model_heights_mm[-1]),
                                     len(self.model_heights_mm)]} if s.method == "sart" else {}),
             **({"mar": self.mar_summary.as_dict() if self.mar_summary is not None else {}} if s.mar else {}),
             "z_range_mm": [float(self.heights_mm[0]), float(self.heights_mm[-1])]}
        d.update(extra)
        return d


def reconstruct(projections, geometry: AcquisitionGeometry, settings: ReconSettings | None = None, *,
                on_progress=None, cancel: CancelToken | None = None, **kw) -> Reconstruction:
    """Reconstruct all slices in memory (convenience wrapper around :class:`Reconstructor`)."""
    r = Reconstructor(projections, geometry, settings, **kw)
    return drive(r.run(), on_progress=on_progress, cancel=cancel)


__all__ = ["Reconstructor", "ReconSettings", "SliceGrid", "reconstruct", "plane_coefficients"]
