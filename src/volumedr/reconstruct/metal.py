"""Metal artefact reduction (MAR) in the projection domain, for every reconstruction method.

Metal (a hip stem, a knee component, screws) stops so many photons that every slice above and below
it shows blurred copies of it: the backprojection of a huge, sharp-edged signal that only the
metal's own height brings into focus.  MAR takes the metal out of the projections, reconstructs the
tissue without it, and puts the metal back at its own height only (Shimadzu's "T-smart"; the DBT
clip method of PMC5735824; field notes, "Metal artefact reduction"):

1. **Find the metal in each view** (:func:`candidate_mask`).  A line integral that stands more than
   ``threshold`` (default 2.5, i.e. less than 8 % of the surroundings' transmission) above its
   surroundings is metal.  The surroundings are the grey-level *opening* of the projection with a
   square ``width_mm`` wide (default 60 mm): the opening removes every bright structure narrower
   than the square and keeps the body's own slow variation, so ``p - opening(p)`` (the white
   top-hat) is the excess of narrow bright objects over their background.  Seeds must fill a 2 x 2
   block (:func:`_seeds`): scattered pixels that counted no photon are not metal.  Specks smaller than
   ``min_area_mm2`` are dropped, holes are filled (a cup wider than the square is found by its rim),
   and the mask grows by ``dilate_mm`` to take in the partial-volume rim and the detector blur.
   Measured on the bundled cases at their protocols (docs/reconstruction.md): bone and soft tissue
   stay below 1.9; titanium and cobalt-chrome components reach 3-12; enamel seen end-on reaches 5
   (dental enamel is, for MAR, metal-like, and is then also put back at its own height).
2. **Consistency across views** (:func:`vote`).  The masks are backprojected onto the planes of the
   object's height range: a point inside a metal object is marked by (nearly) every view that sees
   it, so the *support*, where at least ``VOTE`` of the seeing views agree, is the 3-D region the
   metal can occupy.  A detection that the other views do not confirm (noise, a single-view
   artefact) has no support and is removed from its view.  A study whose masks have no support
   passes through MAR unchanged, bit for bit.
3. **Fill each metal trace from its surroundings** (:func:`inpaint`): the harmonic interpolant (the
   solution of Laplace's equation inside the trace with the measured values on its border), smooth
   along and across the sweep; solved by red-black over-relaxation from the mean of the row and column
   interpolations (numba), for traces deeper than ``COARSE_DEPTH`` pixels from the fill of a 2x
   coarser grid.
4. **Reconstruct the tissue** from the filled projections with the chosen method (FBP, SAA or SART);
   **reconstruct the metal** apart, by the same FBP/SAA, from the metal-only projections
   ``p - filled`` on the part of the slice grid that holds the support; and **put it back at its own
   height only**: where the support allows it and the metal's reconstruction is at least ``FOCUS`` of
   its maximum over height at that pixel.  Where the metal is kept, tissue + metal is exactly the
   plain reconstruction (the operators are linear), so the metal is in focus at its height with its
   own edges.  For SART the metal is converted to mu (1/mm) by the least-squares factor that makes its
   forward projection explain the metal-only projections.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as splinalg

from ..errors import ParameterError
from ..progress import Progress
from ._kernels import backproject as K
from ._kernels import inpaint as KI

GROW = 0.4  # the mask grows from its seeds through pixels standing this fraction of the threshold above their surroundings
GROW_MM = 2.0  # ... by at most this distance
VOTE = 0.9  # a point is in the metal's support when this fraction of the views that see it mark it as metal
VOTE_SOFT = 0.15  # ... the metal put back fading in from VOTE - VOTE_SOFT to all the views
FOCUS = 0.75  # the metal is put back where its reconstruction reaches this fraction of its maximum over height
FOCUS_SOFT = 0.1  # ... fading in over FOCUS +- this, so the metal's outline at other heights is not ragged with noise
WEIGHT_BLUR_MM = 1.5  # the weight of the metal put back is smoothed in-plane by a Gaussian of this sigma
COARSE_DEPTH = 24  # traces more than this many pixels deep are filled coarse to fine
RELAX_SWEEPS = 60  # over-relaxation sweeps at each finer level of the coarse-to-fine fill (at the optimal omega)
SOR_TOL = 1e-4  # the fill stops when no pixel changes by more than this (line-integral units)
CACHE_BYTES = 256 * 2**20  # the metal's slices are kept (for its peak over height) up to this size
OPENING_GRID_MM = 2.0  # the background under the metal (the opening) is found on a grid about this coarse
VOTE_GRID_PIXELS = 256  # the support is found on a grid of at most this many pixels along each axis


@dataclass(frozen=True)
class MarSettings:
    """Parameters of metal detection (see the module docstring)."""

    threshold: float = 2.5
    width_mm: float = 60.0
    min_area_mm2: float = 4.0
    dilate_mm: float = 1.0

    def __post_init__(self):
        for name, lo, hi in (("threshold", 0.2, 20.0), ("width_mm", 2.0, 500.0), ("min_area_mm2", 0.0, 1e4),
                             ("dilate_mm", 0.0, 20.0)):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and lo <= v <= hi):
                raise ParameterError(f"MAR {name.replace('_', ' ')} must be from {lo:g} to {hi:g}, got {v}")


@dataclass(frozen=True)
class MetalSummary:
    """How much metal MAR found: area per view (mm^2 on the detector) and the views it is in."""

    n_views: int
    area_mm2: tuple[float, ...]
    threshold: float
    seconds: float = 0.0

    @property
    def views_with_metal(self) -> int:
        return int(sum(a > 0 for a in self.area_mm2))

    @property
    def found(self) -> bool:
        return self.views_with_metal > 0

    def as_dict(self) -> dict:
        a = np.asarray(self.area_mm2, float)
        hit = a[a > 0]
        return {"views_with_metal": self.views_with_metal, "n_views": self.n_views, "threshold": self.threshold,
                "area_mm2_median": float(np.median(hit)) if len(hit) else 0.0,
                "area_mm2_max": float(hit.max()) if len(hit) else 0.0, "seconds": round(self.seconds, 3)}

    def line(self) -> str:
        return mar_line(self.as_dict())


def mar_line(d: dict) -> str:
    """One line for the user from :meth:`MetalSummary.as_dict` (as stored in the reconstruction's parameters)."""
    n = d.get("n_views", "?")
    if not d.get("views_with_metal"):
        return f"MAR: no metal found in {n} views (threshold {d.get('threshold', '?')}); slices unchanged"
    return (f"MAR: metal in {d['views_with_metal']} of {n} views, {d.get('area_mm2_median', 0):.0f} mm^2 per view "
            f"(max {d.get('area_mm2_max', 0):.0f}) on the detector; {d.get('seconds', 0):.1f} s")


def _tissue_ceiling(p: np.ndarray, seed: np.ndarray | None = None) -> float:
    """The top of the view's tissue range: the 90th percentile of its line integrals (without the metal)."""
    sample = p[::2, ::2] if seed is None else p[::2, ::2][~seed[::2, ::2]]
    return float(np.percentile(sample, 90)) if sample.size else float(p.max())


def _box_around(rr: np.ndarray, cc: np.ndarray, shape, margin_rows: int, margin_cols: int):
    """(rows, cols) slices of the box around pixels (rr, cc), grown by the margins and clipped to ``shape``."""
    R, C = shape[0], shape[1]
    return (slice(max(int(rr.min()) - margin_rows, 0), min(int(rr.max()) + margin_rows + 1, R)),
            slice(max(int(cc.min()) - margin_cols, 0), min(int(cc.max()) + margin_cols + 1, C)))


def candidate_mask(p: np.ndarray, pitch_mm: tuple[float, float], s: MarSettings) -> np.ndarray:
    """The pixels of one projection (line integrals) that are metal, before the cross-view check."""
    pr, pc = pitch_mm
    seed = _seeds(p > _tissue_ceiling(p) + s.threshold)
    if not seed.any():
        return seed
    seed = _seeds(p > _tissue_ceiling(p, seed) + s.threshold)  # the ceiling once more, without the metal's own pixels
    if not seed.any():
        return seed
    # the background is needed within reach of the seeds (the opening's width plus the growth and the rim);
    # the mask itself never leaves the seeds' box grown by the growth and the rim, so the morphology (the
    # growth, the labelling, the holes, the rim) runs on that smaller box: the same mask, a third of the work
    rr, cc = np.nonzero(seed)

    def around(reach_mm):
        return _box_around(rr, cc, p.shape, int(np.ceil(reach_mm / pr)) + 2, int(np.ceil(reach_mm / pc)) + 2)

    wide, near = around(s.width_mm + GROW_MM + s.dilate_mm), around(GROW_MM + s.dilate_mm)
    bg = np.empty(p.shape, p.dtype)
    bg[wide] = _background(p[wide], pr, pc, s)
    out = np.zeros(p.shape, bool)
    out[near] = _grow(p[near] - bg[near], seed[near], pr, pc, s)
    return out


def _seeds(above: np.ndarray) -> np.ndarray:
    """The pixels above the threshold that are part of a 2 x 2 block above it.  Metal covers many
    neighbouring pixels; a pixel that counted no photon at all (a thick pelvis at a low dose) reads the
    clipped line integral of MIN_TRANSMISSION, far above any threshold, but such pixels are scattered one
    by one, and grown and voted on they made a false "metal" region over the spine (measured: about 1 %
    of the pixels behind the lower spine of a 400 mm abdomen at 80 kVp, 0.9 mAs a view)."""
    if not above.any():
        return above
    return ndimage.binary_opening(above, structure=np.ones((2, 2), bool))


def _background(p: np.ndarray, pr: float, pc: float, s: MarSettings) -> np.ndarray:
    """The surroundings of narrow bright objects: the grey-level opening of ``p`` with a square ``width_mm``
    wide, on a grid of about OPENING_GRID_MM (a block minimum first keeps the opening's "never above p")."""
    f = max(1, int(round(OPENING_GRID_MM / max(min(pr, pc), 1e-6))))
    R, C = p.shape
    Rb, Cb = -(-R // f), -(-C // f)
    padded = np.pad(p, ((0, Rb * f - R), (0, Cb * f - C)), mode="edge")
    small = padded[0::f, 0::f].copy()  # the block minimum, by strided views (a reduction over a 4-D reshape is slow)
    for i in range(f):
        for j in range(f):
            if i or j:
                np.minimum(small, padded[i::f, j::f], out=small)
    size = (max(3, int(round(s.width_mm / (pr * f))) | 1), max(3, int(round(s.width_mm / (pc * f))) | 1))
    bg = ndimage.grey_opening(small, size=size, mode="nearest")
    return np.repeat(np.repeat(bg, f, axis=0), f, axis=1)[:R, :C]


def _grow(excess: np.ndarray, seed: np.ndarray, pr: float, pc: float, s: MarSettings) -> np.ndarray:
    """The metal mask from its seeds and the excess of the projection over its background."""
    # hysteresis: from the seeds out to where the metal's excess over its surroundings fades, but at most
    # GROW_MM (the partial-volume rim of a rounded edge; not on along a bone that touches the metal)
    steps = max(1, int(np.ceil(GROW_MM / min(pr, pc))))
    mask = ndimage.binary_dilation(seed, iterations=steps, mask=seed | (excess > GROW * s.threshold))
    lab, n = ndimage.label(mask)
    area = np.bincount(lab.ravel(), minlength=n + 1) * (pr * pc)
    keep = area >= s.min_area_mm2
    keep[0] = False
    mask = keep[lab]
    if not mask.any():
        return mask
    mask = _fill_holes(mask)
    r = int(np.ceil(s.dilate_mm / min(pr, pc) - 1e-9))
    if r > 0:
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        mask = ndimage.binary_dilation(mask, structure=(yy * pr) ** 2 + (xx * pc) ** 2 <= (s.dilate_mm + 1e-9) ** 2)
    return mask


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region that does not reach the array's edge filled (one labelling,
    much faster than SciPy's iterative ``binary_fill_holes``; the same result)."""
    lab, n = ndimage.label(~mask)
    if n == 0:
        return mask
    edge = np.zeros(n + 1, bool)
    for side in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        edge[side] = True
    edge[0] = True
    return mask | ~edge[lab]


def _per_view(work, n_views: int):
    """(view, work(view)) for every view in order, computed on a thread per core (SciPy's filters and
    sparse solver release the GIL); a generator, so progress and Cancel answer after every view."""
    workers = max(1, min(os.cpu_count() or 1, 8))
    if workers == 1:
        for v in range(n_views):
            yield v, work(v)
        return
    with ThreadPoolExecutor(workers) as ex:
        pending = [ex.submit(work, v) for v in range(min(n_views, 2 * workers))]
        for v in range(n_views):
            result = pending[v].result()
            pending[v] = None
            nxt = v + 2 * workers
            if nxt < n_views:
                pending.append(ex.submit(work, nxt))
            yield v, result


# -- filling a trace ------------------------------------------------------------------------------
def harmonic_direct(u: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Harmonic fill of ``u`` inside ``m`` by one sparse solve (Neumann at the array's edge): the
    NumPy/SciPy twin of the numba fill that :func:`inpaint` uses."""
    idx = -np.ones(m.shape, np.int64)
    rr, cc = np.nonzero(m)
    n = len(rr)
    idx[rr, cc] = np.arange(n)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    rhs = np.zeros(n)
    R, C = m.shape
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        r2, c2 = rr + dr, cc + dc
        inside = (r2 >= 0) & (r2 < R) & (c2 >= 0) & (c2 < C)
        diag[inside] += 1.0
        r2i, c2i, ii = r2[inside], c2[inside], np.nonzero(inside)[0]
        j = idx[r2i, c2i]
        unknown = j >= 0
        rows.append(ii[unknown])
        cols.append(j[unknown])
        vals.append(-np.ones(int(unknown.sum())))
        np.add.at(rhs, ii[~unknown], u[r2i[~unknown], c2i[~unknown]])
    if n == 0 or not (diag > 0).all():
        return u.copy()
    A = sparse.csr_matrix((np.concatenate([diag] + vals), (np.concatenate([np.arange(n)] + rows),
                                                           np.concatenate([np.arange(n)] + cols))), shape=(n, n))
    out = u.astype(np.float64, copy=True)
    out[rr, cc] = splinalg.spsolve(A.tocsc(), rhs)
    return out


def _fill(u: np.ndarray, m: np.ndarray) -> None:
    """Harmonic fill in place (numba SOR); wide traces start from the fill of a 2x coarser grid."""
    depth = int(ndimage.distance_transform_cdt(m, metric="chessboard").max()) if m.any() else 0
    if depth == 0:
        return
    if depth > COARSE_DEPTH:
        R, C = u.shape
        Rb, Cb = -(-R // 2), -(-C // 2)
        up = np.pad(u, ((0, 2 * Rb - R), (0, 2 * Cb - C)), mode="edge")
        mp = np.pad(m, ((0, 2 * Rb - R), (0, 2 * Cb - C)), mode="edge")
        known = (~mp).reshape(Rb, 2, Cb, 2)
        cnt = known.sum(axis=(1, 3))
        coarse = np.where(cnt > 0, (up.reshape(Rb, 2, Cb, 2) * known).sum(axis=(1, 3)) / np.maximum(cnt, 1), 0.0)
        coarse_m = cnt < 4  # a coarse pixel is unknown when any fine pixel under it is
        _fill(coarse, coarse_m)
        fine = ndimage.zoom(coarse, 2, order=1, mode="nearest", grid_mode=True)[:R, :C]
        u[m] = fine[m]
        # the coarse fill leaves a smooth error: over-relaxed at the trace's optimal omega it dies out in a few
        # dozen sweeps (on the knee's traces 60 sweeps come 3x closer to the exact fill than 100 at omega 1.8)
        KI.harmonic_fill(u, m, _omega(depth), RELAX_SWEEPS, SOR_TOL, False)
        return
    KI.harmonic_fill(u, m, _omega(depth), 20 * depth + 50, SOR_TOL, True)


def _omega(depth: int) -> float:
    """The optimal over-relaxation for a trace ``depth`` pixels deep (a square of side 2 depth + 2)."""
    return 2.0 / (1.0 + np.sin(np.pi / (2 * depth + 2)))


def inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the pixels in ``mask`` replaced by the harmonic interpolant of their surroundings
    (the solution of Laplace's equation with the surrounding values on the trace's border)."""
    if not mask.any():
        return image.copy()
    box = _box_around(*np.nonzero(mask), mask.shape, 2, 2)
    u = image[box].astype(np.float64)
    _fill(u, np.ascontiguousarray(mask[box]))
    out = image.copy()
    out[box] = u
    return out


# -- consistency across views ---------------------------------------------------------------------
def vote(masks_f32: np.ndarray, coeffs, shape) -> np.ndarray:
    """Fraction of the views that see each point (S, ny, nx) and mark it as metal, 0..1."""
    votes = np.empty(shape, np.float32)
    K.backproject(masks_f32, *coeffs, np.float32(1.0), votes, K.row_spans(masks_f32))  # masks are mostly zeros
    seen = np.empty(shape, np.float32)
    K.coverage(*coeffs, masks_f32.shape[1], masks_f32.shape[2], seen)
    return np.divide(votes, seen, out=np.zeros_like(votes), where=seen > 0.5)


def _coarse(grid):
    """``grid`` coarsened to at most VOTE_GRID_PIXELS a side (the support need not be finer); (grid, factor)."""
    from .engine import SliceGrid

    f = max(1, int(np.ceil(max(grid.shape) / VOTE_GRID_PIXELS)))
    ny, nx = -(-grid.shape[0] // f), -(-grid.shape[1] // f)
    py, px = grid.pixel_spacing_mm
    return SliceGrid((ny, nx), (py * f, px * f), (grid.origin_mm[0] + (f - 1) / 2 * px,
                                                  grid.origin_mm[1] + (f - 1) / 2 * py)), f


def find_metal(projections: np.ndarray, geometry, grid, heights_mm: np.ndarray, settings: MarSettings,
               margin_px: int = 4):
    """Generator: per-view masks confirmed across views.

    ``grid`` is the slice grid and ``heights_mm`` the planes the support is looked for on (the object's
    height range).  Yields :class:`Progress`; returns ``(masks (V, R, C) bool, area per view in mm^2,
    box, planes)`` where ``box`` is the (rows, cols) slices of ``grid`` that hold the support and
    ``planes`` the heights it spans (both None: no metal)."""
    from .engine import plane_coefficients

    det = geometry.detector
    pitch = (det.pitch_row_mm, det.pitch_col_mm)
    V = projections.shape[0]
    masks = np.zeros(projections.shape, bool)
    for v, m in _per_view(lambda v: candidate_mask(projections[v], pitch, settings), V):
        masks[v] = m
        yield Progress("MAR: finding metal", v + 1, V)
    box, planes = None, None
    if masks.any():
        coarse, f = _coarse(grid)
        h = np.asarray(heights_mm, float)
        coeffs = plane_coefficients(geometry, coarse, h[:, None])
        support = vote(masks.astype(np.float32), coeffs, (len(h),) + coarse.shape) >= VOTE
        if support.any():
            # the support's own box (planes, rows, cols), reprojected: every view's mask must lie in it
            zz = np.nonzero(support.any(axis=(1, 2)))[0]
            rr, cc = np.nonzero(support.any(axis=0))
            z0, z1 = max(zz.min() - 1, 0), min(zz.max() + 2, len(h))
            rows, cols = slice(rr.min(), rr.max() + 1), slice(cc.min(), cc.max() + 1)
            sub = crop_grid(coarse, (rows, cols))
            planes = h[z0:z1]
            reproj = np.empty(projections.shape, np.float32)
            K.forward_project(np.ascontiguousarray(support[z0:z1, rows, cols], dtype=np.float32),
                              *plane_coefficients(geometry, sub, planes[:, None]), np.float32(1.0), reproj)
            # a coarse voxel covers about f * magnification detector pixels: close the gaps between them
            py, px = coarse.pixel_spacing_mm
            reach = int(np.ceil(max(py / det.pitch_row_mm, px / det.pitch_col_mm) * 1.3)) + 1
            for v in range(V):
                rr_v, cc_v = np.nonzero(masks[v])
                if len(rr_v):  # only the mask's own box (and the filter's reach around it) matters
                    b = _box_around(rr_v, cc_v, masks[v].shape, reach, reach)
                    masks[v][b] &= ndimage.maximum_filter(reproj[v][b] > 0, size=2 * reach + 1)
        else:
            masks[:] = False  # no view confirms what one view found
        if masks.any():
            box = (slice(int(max(0, rr.min() * f - margin_px - f)), int(min(grid.shape[0], (rr.max() + 1) * f + margin_px + f))),
                   slice(int(max(0, cc.min() * f - margin_px - f)), int(min(grid.shape[1], (cc.max() + 1) * f + margin_px + f))))
        yield Progress("MAR: checking across views", 1, 1)
    area = masks.sum(axis=(1, 2)) * (pitch[0] * pitch[1])
    return masks, tuple(float(a) for a in area), box, planes


def fill_traces(projections: np.ndarray, masks: np.ndarray):
    """Generator: (filled projections, metal-only projections) (both (V, R, C) float32); yields Progress."""
    filled = projections.copy()
    V = projections.shape[0]
    for v, f in _per_view(lambda v: inpaint(projections[v], masks[v]) if masks[v].any() else None, V):
        if f is not None:
            filled[v] = f
        yield Progress("MAR: filling metal traces", v + 1, V)
    metal = projections - filled
    return filled, metal


class MetalPart:
    """The metal reconstructed apart on the part of the slice grid that holds it, and put back at its
    own height.  ``rec`` is a Reconstructor of the metal-only projections (FBP or SAA) on ``crop``,
    ``offset`` the crop's (row, col) in the full slice grid."""

    def __init__(self, rec, masks: np.ndarray, offset: tuple[int, int], model_heights_mm: np.ndarray):
        self.rec = rec
        self.masks = masks
        self.offset = offset
        self.model_heights_mm = np.asarray(model_heights_mm, float)
        self._peak = self._support = None
        self._cache = None  # (heights, the metal's slices there) when the model is taken from the slices

    def _model(self) -> None:
        """The metal's reconstruction and support at the model heights (once): its peak over height and
        where the views allow it.  When the slices are at least as fine as the model's planes, the metal is
        reconstructed once at the slices' heights and the model planes beyond them, its peak taken over all
        of those, and the slices served from that (one backprojection instead of two)."""
        from .engine import plane_coefficients

        h = self.model_heights_mm
        sh = np.asarray(self.rec.heights_mm, float)
        step = float(np.min(np.diff(h))) if len(h) > 1 else 0.0
        cy, cx = self.rec.grid.shape
        finer = len(sh) > 1 and float(np.max(np.diff(sh))) <= step + 1e-9
        # the slices' heights, and the model's planes beyond their reach (the peak is over all of the metal)
        both = np.unique(np.concatenate([sh, h[(h < sh[0] - step) | (h > sh[-1] + step)]])) if len(sh) else h
        if finer and len(both) * cy * cx * 4 <= CACHE_BYTES:
            self._cache = (both, self.rec.backproject_heights(both))
            self._peak = _smooth(self._cache[1]).max(axis=0)
        else:
            self._peak = _smooth(self.rec.backproject_heights(h)).max(axis=0)
        coeffs = plane_coefficients(self.rec.geometry, self.rec.grid, h[:, None])
        v = vote(self.masks.astype(np.float32), coeffs, (len(h),) + self.rec.grid.shape)
        # soft at its border (VOTE_SOFT below VOTE to all views), so the metal does not end in a cut edge
        self._support = np.clip((v - (VOTE - VOTE_SOFT)) / (1.0 - VOTE + VOTE_SOFT), 0.0, 1.0).astype(np.float32)

    def keep(self, slices: np.ndarray, heights_mm: np.ndarray) -> np.ndarray:
        """Weight 0..1 of the metal put back: where the views support it (at the nearest model plane, fading in
        from VOTE - VOTE_SOFT of them to all) and its (lightly smoothed) reconstruction is near its maximum
        over height (fading over FOCUS +- FOCUS_SOFT)."""
        if self._peak is None:
            self._model()
        h = np.atleast_1d(np.asarray(heights_mm, float))
        nearest = np.abs(h[:, None] - self.model_heights_mm[None, :]).argmin(axis=1)
        peak = self._peak[None]
        ratio = np.divide(_smooth(slices), peak, out=np.zeros(slices.shape, np.float32), where=peak > 0)
        w = np.clip((ratio - (FOCUS - FOCUS_SOFT)) / (2 * FOCUS_SOFT), 0.0, 1.0).astype(np.float32)
        w *= self._support[nearest]
        # a soft weight: where the metal is in focus its own edges stay sharp (the weight multiplies them), where
        # it is not the weight does not cut a sharp outline into its blur
        sigma = WEIGHT_BLUR_MM / min(self.rec.grid.pixel_spacing_mm)
        return ndimage.gaussian_filter(w, (0, sigma, sigma), mode="nearest").astype(np.float32, copy=False)

    def slices(self, heights_mm: np.ndarray) -> np.ndarray:
        """The metal to add at ``heights_mm``, (S, crop rows, crop cols) in the reconstruction's units."""
        if self._peak is None:
            self._model()
        h = np.atleast_1d(np.asarray(heights_mm, float))
        m = None
        if self._cache is not None:
            ch, cm = self._cache
            i = np.clip(np.searchsorted(ch, h), 0, len(ch) - 1)
            if np.all(ch[i] == h):
                m = cm[i]
        if m is None:
            m = self.rec.backproject_heights(h)
        return m * self.keep(m, h)

    def add_to(self, out: np.ndarray, heights_mm: np.ndarray, scale: float = 1.0) -> None:
        r0, c0 = self.offset
        cy, cx = self.rec.grid.shape
        out[:, r0:r0 + cy, c0:c0 + cx] += np.float32(scale) * self.slices(heights_mm)


def _smooth(slices: np.ndarray) -> np.ndarray:
    """A light in-plane Gaussian (1 pixel) of each slice: the focus test should not follow the noise."""
    return ndimage.gaussian_filter(slices, (0, 1.0, 1.0), mode="nearest").astype(np.float32, copy=False)


def crop_grid(grid, masks_support_rc: tuple[slice, slice]):
    """The sub-grid of ``grid`` over rows/cols ``masks_support_rc``, pixel-aligned with it."""
    from .engine import SliceGrid

    rs, cs = masks_support_rc
    py, px = grid.pixel_spacing_mm
    return SliceGrid((rs.stop - rs.start, cs.stop - cs.start), (py, px),
                     (grid.origin_mm[0] + cs.start * px, grid.origin_mm[1] + rs.start * py))
