"""Ordered-subset SART on the plane projector / backprojector pair, with an optional TV step.

The model is a stack of P thin planes parallel to the detector, at heights z_p spaced dz apart and
covering the whole object (the projections are explained by all of the object, not only by the
slices the user asked for).  Plane p holds x_p = mu * dz (the plane's share of a vertical line
integral); the data are the cosine-weighted projections p' = p * s_z / |s - pixel| (an oblique ray's
path converted to its vertical equivalent, as for FBP), and the forward model is A x = sum_p
interp_v(x_p), the exact adjoint of the backprojector (``forward_project`` / ``backproject``).

One iteration visits the M subsets S_1..S_M (views m, m + M, m + 2M, ...) and for each updates all
planes at once (SART, Andersen & Kak 1984; ordered subsets as in RTK's ``--nprojpersubset``):

    x <- max(0, x + lambda * A_S^T[(p'_S - A_S x) / A_S 1] / A_S^T 1)

where A_S 1 (the ray sums) is the forward projection of a volume of ones and A_S^T 1 (the column
sums, the number of views of the subset that see each voxel) comes from ``coverage``; pixels seen
by no view of the subset are left as they are.  Between iterations an optional total-variation step
(ASD-POCS, Sidky & Pan 2008): ``tv_steps`` gradient steps on the 3-D isotropic TV, each of length
tv_weight * ||x_k - x_(k-1)||, so the regulariser follows the size of the data update.

Initialisation: zero, or the FBP volume at the model heights scaled by the least-squares factor
c = <A_1 f, p'_1> / <A_1 f, A_1 f> of the first subset, so that A (c f) explains the data as well as a
scaled FBP can.  The first update needs A_1 f anyway, so the fit costs nothing; fitted on every view it
had cost a forward projection of all of them, a quarter of an iteration (the factors differ by 0.3-1.7 %
on the chest, kub and hip: docs/reconstruction.md).
The slices returned are mu (1/mm) = x / dz, resampled to the user's heights and thickness.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..errors import ParameterError
from ..progress import Progress
from ..sysinfo import check_fits
from ._kernels import backproject as K
from ._kernels import sart as S

TV_STEPS = 10
TV_EPS = 1e-8


@dataclass(frozen=True)
class IterationResult:
    """What one SART iteration reached: its number, the data residual and the slices (for display)."""

    iteration: int
    n_iterations: int
    residual: float
    slices: np.ndarray | None


def model_heights(object_range_mm, user_heights_mm: np.ndarray, spacing_mm: float, zmin_source_mm: float,
                  max_planes: int = 400) -> np.ndarray:
    """Plane heights of the SART model: the object's range and the user's, on the user's slice grid,
    at most 2 mm apart (finer when the user's spacing is), above the detector and below the source."""
    dz = min(float(spacing_mm), 2.0)
    lo = min(float(user_heights_mm[0]), float(object_range_mm[0]))
    hi = max(float(user_heights_mm[-1]), float(object_range_mm[1]))
    base = float(user_heights_mm[0])
    k_lo = int(np.floor((lo - base) / dz + 1e-9))
    k_hi = int(np.ceil((hi - base) / dz - 1e-9))
    h = base + dz * np.arange(k_lo, k_hi + 1)
    h = h[(h > 0.25 * dz) & (h < zmin_source_mm - dz)]
    if len(h) > max_planes:
        raise ParameterError(f"the SART model would need {len(h)} planes ({lo:.0f}..{hi:.0f} mm every {dz:g} mm); "
                             f"at most {max_planes}: choose a coarser slice spacing")
    return h


def tv_gradient(x: np.ndarray) -> np.ndarray:
    """Gradient of the smoothed isotropic 3-D total variation sum sqrt(|grad x|^2 + eps) (voxel units);
    the NumPy twin of the numba ``tv_gradient`` that SART uses."""
    dz = np.diff(x, axis=0, append=x[-1:])
    dy = np.diff(x, axis=1, append=x[:, -1:])
    dx = np.diff(x, axis=2, append=x[:, :, -1:])
    norm = np.sqrt(dz * dz + dy * dy + dx * dx + TV_EPS)
    gz, gy, gx = dz / norm, dy / norm, dx / norm
    g = -(gz + gy + gx)
    g[1:] += gz[:-1]
    g[:, 1:] += gy[:, :-1]
    g[:, :, 1:] += gx[:, :, :-1]
    return g


class Sart:
    """OS-SART for one study: set up once, then :meth:`run` (a generator) iterates.

    ``weighted`` are the cosine-weighted projections (V, R, C) float32; ``coeffs`` the plane
    coefficients (P, 1, V) of the model heights; ``init`` a (P, ny, nx) starting volume (in the units
    of x) or None for zero.
    """

    def __init__(self, weighted: np.ndarray, coeffs, grid_shape, heights_mm: np.ndarray, *, iterations: int,
                 subsets: int, relaxation: float, tv_weight: float):
        V, R, C = weighted.shape
        if not 1 <= subsets <= V:
            raise ParameterError(f"SART subsets must be from 1 to the number of views ({V}), got {subsets}")
        self.p = weighted
        self.coeffs = coeffs
        self.heights_mm = np.asarray(heights_mm, float)
        self.dz = float(self.heights_mm[1] - self.heights_mm[0]) if len(self.heights_mm) > 1 else 1.0
        self.shape = (len(self.heights_mm),) + tuple(grid_shape)
        self.iterations, self.subsets = int(iterations), int(subsets)
        self.relaxation, self.tv_weight = float(relaxation), float(tv_weight)
        self.order = [np.arange(m, V, subsets) for m in _subset_order(subsets)]
        self.residuals: list[float] = []
        self.start_scale: float | None = None  # the factor a fitted start was scaled by (run's fit_scale)

    @staticmethod
    def memory_bytes(n_views, det_shape, n_planes, grid_shape, subset_views: int = 1) -> int:
        proj = n_views * det_shape[0] * det_shape[1] * 4
        vol = n_planes * grid_shape[0] * grid_shape[1] * 4
        # the threads' detectors of a subset's forward projection where it is split by planes (at most
        # PLANE_SPLIT_BYTES, else it is not split)
        dets = K.split_detector_bytes(subset_views, det_shape) if K.fused_update_fits(subset_views, det_shape) else 0
        return 2 * proj + 2 * vol + dets  # ray sums, residual | volume, previous (TV; then its gradient) | detectors

    def _sub(self, views):
        return tuple(np.ascontiguousarray(c[:, :, views]) for c in self.coeffs)

    def forward(self, x, views) -> np.ndarray:
        out = np.empty((len(views),) + self.p.shape[1:], np.float32)
        K.forward_project(x, *self._sub(views), np.float32(1.0), out)
        return out

    def fit_scale(self, x, views=None) -> float:
        """Least-squares c >= 0 so that A (c x) best explains the data of ``views`` (default: all)."""
        views = np.arange(self.p.shape[0]) if views is None else np.asarray(views)
        return self.subset_scale(self.forward(x, views), views)

    def subset_scale(self, ax, views) -> float:
        """Least-squares c >= 0 with c ``ax`` closest to the data of ``views`` (``ax`` = A_views x)."""
        den = float(np.vdot(ax, ax))
        return max(float(np.vdot(ax, self.p[views]) / den), 0.0) if den > 0 else 0.0

    def run(self, x: np.ndarray, emit_iterations=None, fit_scale: bool = False):
        """Generator: iterate in place on ``x`` (P, ny, nx) float32, yielding Progress; returns x.  With
        ``fit_scale`` x is first scaled by the least-squares factor that best explains the first subset's
        data (:meth:`subset_scale`), from the forward projection the first update needs anyway."""
        check_fits(self.memory_bytes(self.p.shape[0], self.p.shape[1:], self.shape[0], self.shape[1:],
                                     max(len(v) for v in self.order)),
                   f"SART on {self.shape[0]} planes of {self.shape[1]} x {self.shape[2]}")
        raysum = np.empty_like(self.p)
        K.forward_project_ones(self.shape, *self.coeffs, np.float32(1.0), raysum)  # A 1, the ray sums
        total = self.iterations * self.subsets
        step = 0
        # x_(k-1) for the TV step's length; once that is measured, the same memory holds the TV gradient
        # (a third volume had cost its size and, fresh, 0.5-1 s of page faults on its first use)
        before = np.empty(self.shape, np.float32) if self.tv_weight > 0 else None
        g = before
        for it in range(self.iterations):
            if self.tv_weight > 0:
                S.copy_volume(x, before)
            res2 = 0.0
            ax = None  # the current subset's forward projection, when the last update made it
            sub_next = None  # its coefficients, taken out by the last update
            for i, views in enumerate(self.order):
                sub = sub_next if sub_next is not None else self._sub(views)
                sub_next = None
                if ax is None:
                    ax = np.empty((len(views),) + self.p.shape[1:], np.float32)
                    K.forward_project(x, *sub, np.float32(1.0), ax)
                if fit_scale and step == 0:
                    c = np.float32(self.subset_scale(ax, views))
                    x *= c
                    ax *= c  # A (c x) = c A x: the scaled start's projection without projecting again
                    self.start_scale = float(c)
                    if self.tv_weight > 0:
                        S.copy_volume(x, before)  # the TV step follows the data update, not the scaling
                res2 += S.normalised_residual(self.p[views], ax, raysum[views], ax)  # ax becomes the ratio
                nxt = self.order[i + 1] if i + 1 < len(self.order) else None
                if nxt is not None and K.fused_update_fits(len(nxt), self.p.shape[1:]):
                    # backprojection, column sums and update in one pass, which also projects the updated
                    # rows into the next subset's views (its forward projection without reading x again)
                    ax_next = np.empty((len(nxt),) + self.p.shape[1:], np.float32)
                    sub_next = self._sub(nxt)
                    K.sart_update_project(ax, *sub, x, self.relaxation, *sub_next, ax_next,
                                          numba.get_num_threads())
                    ax = ax_next
                else:  # the last subset (the TV step comes next) or a subset too large to fuse
                    K.sart_update(ax, *sub, x, self.relaxation)
                    ax = None
                step += 1
                yield Progress(f"SART iteration {it + 1}/{self.iterations}", step, total)
            self.residuals.append(float(np.sqrt(res2)))
            if self.tv_weight > 0:
                d = float(np.sqrt(S.diff_sum_squares(x, before)))  # before is free from here: g
                for i in range(TV_STEPS):
                    gn = float(np.sqrt(S.tv_gradient(x, TV_EPS, g)))
                    if gn == 0 or d == 0:
                        break
                    S.descend(x, g, self.tv_weight * d / gn, i == TV_STEPS - 1)  # clipped at the end
            if emit_iterations is not None:
                emit_iterations(it + 1, self.residuals[-1], x)
        return x


def _subset_order(m: int) -> list[int]:
    """The subsets' first views in an order that spreads consecutive updates over the sweep (bit
    reversal, as ordered-subset methods do), so each update adds what the last one lacked."""
    if m <= 2:
        return list(range(m))
    bits = int(np.ceil(np.log2(m)))
    order = []
    for i in range(1 << bits):
        r = int(f"{i:0{bits}b}"[::-1], 2)
        if r < m:
            order.append(r)
    return order


def default_subsets(n_views: int) -> int:
    """Two views a subset (30 subsets of 60 views).  Measured on beads (docs/reconstruction.md): at a
    fixed 3 iterations the depth spread (ASF FWHM) of a 4 mm bead falls from 13 mm with 6 views a
    subset to 9 mm with 2 (FBP: 15 mm), for 1.3x the time; single-view subsets gain little more and
    amplify noise."""
    return int(max(1, min(n_views, round(n_views / 2))))


def resample_weights(model_heights_mm: np.ndarray, heights_mm: np.ndarray, thickness_mm: float,
                     n_sub: int):
    """Where each slice at ``heights_mm`` of ``thickness_mm`` reads the model planes: the ``n_sub``
    heights spread over the slab, each between planes idx and idx + 1 with weight w on the second;
    (idx (S, n_sub) int64, w (S, n_sub) float32)."""
    offs = (np.arange(n_sub) - (n_sub - 1) / 2.0) * (thickness_mm / n_sub) if n_sub > 1 else np.zeros(1)
    hm = np.asarray(model_heights_mm, float)
    idx = np.zeros((len(heights_mm), len(offs)), np.int64)
    w = np.zeros((len(heights_mm), len(offs)), np.float32)
    if len(hm) == 1:
        return idx, w
    for s, h in enumerate(heights_mm):
        for m, o in enumerate(offs):
            z = np.clip(h + o, hm[0], hm[-1])
            i = int(np.clip(np.searchsorted(hm, z) - 1, 0, len(hm) - 2))
            idx[s, m] = i
            w[s, m] = (z - hm[i]) / (hm[i + 1] - hm[i])
    return idx, w


def resample_planes(x: np.ndarray, model_heights_mm: np.ndarray, heights_mm: np.ndarray, thickness_mm: float,
                    n_sub: int) -> np.ndarray:
    """Slices at ``heights_mm`` of ``thickness_mm`` from the model planes: the mean of ``n_sub`` heights
    spread over the slab, each linearly interpolated between planes; (S, ny, nx) float32.  The NumPy twin
    of the numba ``resample`` that SART uses."""
    idx, w = resample_weights(model_heights_mm, heights_mm, thickness_mm, n_sub)
    out = np.zeros((len(heights_mm),) + x.shape[1:], np.float32)
    for s in range(len(heights_mm)):
        for i, wm in zip(idx[s], w[s]):
            out[s] += (1.0 - wm) * x[i] + (wm * x[i + 1] if wm != 0 else 0.0)
        out[s] /= idx.shape[1]
    return out
