"""numba backprojector for planes parallel to the detector, and its adjoint.

For slice s, sub-plane q (height h) and view v, slice pixel (row j, col k)
projects onto detector column ``A_col[s,q,v] * k + B_col[s,q,v]`` and row
``A_row[s,q,v] * j + B_row[s,q,v]`` (fractional indices): a plane maps onto
the detector by a scale and a shift.  Detector samples are interpolated
bilinearly with zero outside the detector (index range [-1, n) is partly
inside).  ``backproject`` computes out = scale * sum_{q,v} B_{s,q,v} p_v and
``forward_project`` its exact adjoint, so the pair passes <Ax, y> = <x, A^T y>.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

EDGE_EPS = 1e-4
TINY = 1e-6  # a column sum below this sees no view (sart.TINY)
UPDATE_ROWS = 8  # slice rows per parallel task of sart_update
BP_BAND = 16  # slice rows per parallel task of the dense backprojection
DIRECT_VIEWS = 8  # coverage_row adds the runs of at most this many planes x views directly


@njit(cache=True, nogil=True, inline="always")
def col_range(a, b, n_det, n_out):
    """Slice columns k whose detector coordinate a*k + b lies in [-1, n_det - EDGE_EPS)."""
    k_lo = int(math.ceil((-1.0 - b) / a))
    k_hi = int(math.floor((n_det - EDGE_EPS - b) / a))
    if k_lo < 0:
        k_lo = 0
    if k_hi > n_out - 1:
        k_hi = n_out - 1
    return k_lo, k_hi


@njit(cache=True, nogil=True, inline="always")
def row_weights(rf, n_rows):
    """(r0, w0, w1): rows r0 and r0+1 with weights; w0 = w1 = 0 when outside."""
    r0 = int(math.floor(rf))
    w = rf - r0
    w0 = 1.0 - w
    w1 = w
    if r0 < -1 or r0 > n_rows - 1:
        return 0, 0.0, 0.0
    if r0 < 0:
        w0 = 0.0
    if r0 + 1 > n_rows - 1:
        w1 = 0.0
    return r0, w0, w1


@njit(cache=True, nogil=True, inline="always")
def column_pattern(a, b, n_det, n_out, idx, wts, runs, offs):
    """The column gather of one plane in one view: slice column k reads tmp[idx[k]] and tmp[idx[k] + 1]
    (tmp: the blended detector row with a zero on each side) with weight wts[k] on the second; outside
    [k_lo, k_hi] idx is 0 and wts 0.  ``runs``/``offs`` split [k_lo, k_hi] into runs of unit stride:
    for k in runs[i] .. runs[i + 1] - 1, idx[k] = k + offs[i] (the magnification of a plane is within a
    few per cent of the grid's, so runs are tens to hundreds of columns long).  Over a run the gather is
    a contiguous load, which vectorises; the scattered gather ``tmp[idx[k]]`` does not.  Returns
    (k_lo, k_hi, number of runs)."""
    lo, hi = col_range(a, b, n_det, n_out)
    b1 = b + 1.0
    n = 0
    prev = -(2 ** 30)
    for k in range(n_out):
        if lo <= k <= hi:
            cf = a * k + b1
            c0 = int(cf)
            idx[k] = c0
            wts[k] = np.float32(cf - c0)
            if c0 - k != prev:
                prev = c0 - k
                runs[n] = k
                offs[n] = prev
                n += 1
        else:
            idx[k] = 0
            wts[k] = np.float32(0.0)
    runs[n] = hi + 1
    return lo, hi, n


@njit(cache=True, nogil=True, inline="always")
def gather_runs(acc, tmp, wk, runs, offs, n, k_a, k_b):
    """acc[k] += tmp[c] + wk[k] (tmp[c + 1] - tmp[c]), c = k + offs of k's run, for k in [k_a, k_b].
    The runs are indexed with unsigned integers (a signed index into a numba array carries a wrap-around
    select that stops vectorisation), not through slices: a slice costs its bounds arithmetic once per
    run, and runs are as short as 18-40 columns on a SART model, where slicing had made the gather
    1.2x and the forward projection 2x slower (the same result to the bit)."""
    one = np.uint64(1)
    for r in range(n):
        ka = max(runs[r], k_a)
        kb = min(runs[r + 1], k_b + 1)
        m = kb - ka
        if m <= 0:
            continue
        cu = np.uint64(ka + offs[r])
        ku = np.uint64(ka)
        for i in range(np.uint64(m)):
            x0 = tmp[cu + i]
            acc[ku + i] += x0 + wk[ku + i] * (tmp[cu + i + one] - x0)


@njit(cache=True, nogil=True, inline="always")
def scatter_runs_rows(d0, f0, d1, f1, x, wk, runs, offs, n):
    """Adjoint of :func:`gather_runs` over the whole pattern, scaled by ``f0`` into ``d0`` and by ``f1`` into
    ``d1`` at once (two detector rows with a zero cell on each side): d[c] += f x[k] (1 - wk[k]) and
    d[c + 1] += f x[k] wk[k], c = k + offs.  Inside a run every cell but the two ends receives from two
    neighbouring columns, written as a gather so that it vectorises; each cell's blend is formed once and
    added to both rows (no row buffer to zero, no second pass over the detector row)."""
    one = np.float32(1.0)
    u1 = np.uint64(1)
    for r in range(n):
        ka = runs[r]
        kb = runs[r + 1]
        m = kb - ka
        if m <= 0:
            continue
        c = ka + offs[r]
        t = x[ka] * (one - wk[ka])  # the run's first cell
        d0[c] += f0 * t
        d1[c] += f1 * t
        cu = np.uint64(c + 1)
        ku = np.uint64(ka)
        for i in range(np.uint64(m - 1)):  # unsigned indices, no slices (see gather_runs)
            t = x[ku + i] * wk[ku + i] + x[ku + i + u1] * (one - wk[ku + i + u1])
            d0[cu + i] += f0 * t
            d1[cu + i] += f1 * t
        t = x[kb - 1] * wk[kb - 1]  # the run's last cell
        d0[c + m] += f0 * t
        d1[c + m] += f1 * t


@njit(cache=True, nogil=True, inline="always")
def _pattern_arrays(S, Q, V, nx):
    """Room for the column patterns of S x Q planes in V views (:func:`column_pattern`)."""
    return (np.empty((S, Q, V, nx), np.int32), np.empty((S, Q, V, nx), np.float32),
            np.empty((S, Q, V, nx + 1), np.int32), np.empty((S, Q, V, nx + 1), np.int32),
            np.empty((S, Q, V), np.int64), np.empty((S, Q, V), np.int64), np.empty((S, Q, V), np.int64))


@njit(cache=True, nogil=True, inline="always")
def _pattern_at(t, a_col, b_col, C, nx, idx, wts, runs, offs, nrun, klo, khi):
    """The column pattern of plane and view number t (s, q, v in C order) into the arrays."""
    Q = a_col.shape[1]
    V = a_col.shape[2]
    s = t // (Q * V)
    rem = t - s * Q * V
    q = rem // V
    v = rem - q * V
    lo, hi, n = column_pattern(a_col[s, q, v], b_col[s, q, v], C, nx, idx[s, q, v], wts[s, q, v],
                               runs[s, q, v], offs[s, q, v])
    klo[s, q, v] = lo
    khi[s, q, v] = hi
    nrun[s, q, v] = n


@njit(cache=True, nogil=True, inline="always")
def blend_rows(tmp, proj, v, r0, f0, f1):
    """tmp[1:C + 1] = f0 proj[v, r0] + f1 proj[v, r0 + 1] (a row weight of 0 reads nothing: the row may
    lie off the detector); the whole detector row, a loop of constant length, which vectorises best
    (15 % faster on the full grid than a loop over just the columns a slice row reads)."""
    C = proj.shape[2]
    if f0 != 0.0 and f1 != 0.0:
        for c in range(C):
            tmp[c + 1] = f0 * proj[v, r0, c] + f1 * proj[v, r0 + 1, c]
    elif f0 != 0.0:
        for c in range(C):
            tmp[c + 1] = f0 * proj[v, r0, c]
    else:
        for c in range(C):
            tmp[c + 1] = f1 * proj[v, r0 + 1, c]


@njit(cache=True, nogil=True, parallel=True)
def row_spans(proj):
    """(V, R, 2) int32: the first and last nonzero column of every detector row (C and -1 when the row is
    all zero), for :func:`backproject` of sparse projections (metal masks and traces)."""
    V, R, C = proj.shape
    out = np.empty((V, R, 2), np.int32)
    for v in prange(V):
        for r in range(R):
            lo = C
            hi = -1
            for c in range(C):
                if proj[v, r, c] != 0.0:
                    lo = c
                    break
            if lo < C:
                for c in range(C - 1, lo - 1, -1):
                    if proj[v, r, c] != 0.0:
                        hi = c
                        break
            out[v, r, 0] = lo
            out[v, r, 1] = hi
    return out


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def backproject(proj, a_col, b_col, a_row, b_row, scale, out, spans=None):
    """proj (V, R, C) f32; a_*/b_* (S, Q, V) f64; out (S, ny, nx) f32 (overwritten).

    The column gather of plane (s, q) in view v (:func:`column_pattern`) is the same for every slice
    row, so it is computed once per (s, q, v) before the rows are, and runs over runs of unit stride
    (:func:`gather_runs`): 4x faster at 1024² from 60 views than the scattered gather it replaced, with
    the same result to the bit (benchmarks/bench_roofline.py).  ``spans`` (:func:`row_spans` of ``proj``)
    skips the zeros of sparse projections: a detector row pair that is all zero is not read, and only
    the slice columns that reach its nonzero run are gathered (the same result)."""
    V, R, C = proj.shape
    S, ny, nx = out.shape
    Q = a_col.shape[1]
    idx, wts, runs, offs, nrun, klo, khi = _pattern_arrays(S, Q, V, nx)
    for t in prange(S * Q * V):
        _pattern_at(t, a_col, b_col, C, nx, idx, wts, runs, offs, nrun, klo, khi)
    if spans is None:
        # dense: bands of BP_BAND slice rows, every view through the whole band before the next, so
        # that each view's detector rows are read as one run of memory (a stream the hardware prefetches)
        # and the band's sums stay in L2; each pixel still sums the views in order (the same result)
        nb = (ny + BP_BAND - 1) // BP_BAND
        for task in prange(S * nb):
            b = task // S
            s = task - b * S
            j0 = b * BP_BAND
            j1 = min(ny, j0 + BP_BAND)
            acc2 = np.zeros((j1 - j0, nx), np.float32)
            tmp2 = np.zeros(C + 2, np.float32)
            for q in range(Q):
                for v in range(V):
                    if khi[s, q, v] < klo[s, q, v]:
                        continue
                    for j in range(j0, j1):
                        r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                        if w0 == 0.0 and w1 == 0.0:
                            continue
                        blend_rows(tmp2, proj, v, r0, np.float32(w0), np.float32(w1))
                        gather_runs(acc2[j - j0], tmp2, wts[s, q, v], runs[s, q, v], offs[s, q, v], nrun[s, q, v],
                                    klo[s, q, v], khi[s, q, v])
            for j in range(j0, j1):
                o = out[s, j]
                a2 = acc2[j - j0]
                for k in range(nx):
                    o[k] = a2[k] * scale
        return
    for ii in prange(S * ny):
        j = ii // S
        s = ii - j * S
        acc = np.zeros(nx, np.float32)
        tmp = np.zeros(C + 2, np.float32)
        for q in range(Q):
            for v in range(V):
                r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                if w0 == 0.0 and w1 == 0.0:
                    continue
                k_lo = klo[s, q, v]
                k_hi = khi[s, q, v]
                if k_hi < k_lo:
                    continue
                f0 = np.float32(w0)
                f1 = np.float32(w1)
                ix = idx[s, q, v]
                wk = wts[s, q, v]
                k_a = k_lo
                k_b = k_hi
                # sparse: only the nonzero run of the two detector rows, within the columns this slice row
                # reads; tmp[0] and tmp[C + 1], the zeros outside the detector, are never written
                lo_c = C
                hi_c = -1
                if f0 != 0.0:
                    lo_c = min(lo_c, spans[v, r0, 0])
                    hi_c = max(hi_c, spans[v, r0, 1])
                if f1 != 0.0:
                    lo_c = min(lo_c, spans[v, r0 + 1, 0])
                    hi_c = max(hi_c, spans[v, r0 + 1, 1])
                c_a = max(ix[k_lo] - 1, lo_c, 0)
                c_b = min(ix[k_hi], hi_c, C - 1)
                if c_b < c_a:
                    continue  # nothing but zeros where this slice row reads
                # zeros beside the run, so that a column reading just outside it adds nothing
                if c_a >= 1:
                    tmp[c_a] = np.float32(0.0)
                if c_b + 2 <= C:
                    tmp[c_b + 2] = np.float32(0.0)
                # the slice columns whose two samples (tmp[c0], tmp[c0 + 1]) touch the run
                seg = ix[k_lo:k_hi + 1]
                k_a = k_lo + np.searchsorted(seg, c_a)
                k_b = k_lo + np.searchsorted(seg, c_b + 1, side="right") - 1
                # unsigned column indices (see gather_runs): a loop from c_a does not vectorise
                pa = proj[v, r0 if f0 != 0.0 else r0 + 1]
                pb = proj[v, r0 + 1 if f1 != 0.0 else r0]
                cu = np.uint64(c_a)
                u1 = np.uint64(1)
                if f0 != 0.0 and f1 != 0.0:
                    for i in range(np.uint64(c_b + 1 - c_a)):
                        tmp[cu + i + u1] = f0 * pa[cu + i] + f1 * pb[cu + i]
                elif f0 != 0.0:
                    for i in range(np.uint64(c_b + 1 - c_a)):
                        tmp[cu + i + u1] = f0 * pa[cu + i]
                else:
                    for i in range(np.uint64(c_b + 1 - c_a)):
                        tmp[cu + i + u1] = f1 * pb[cu + i]
                gather_runs(acc, tmp, wk, runs[s, q, v], offs[s, q, v], nrun[s, q, v], k_a, k_b)
        for k in range(nx):
            out[s, j, k] = acc[k] * scale


PLANE_SPLIT_BYTES = 256 * 2 ** 20  # the planes are split among the threads while their detectors fit in this


def split_detector_bytes(n_views: int, det_shape) -> int:
    """Bytes of the threads' own detectors (with their border of zeros) when a projection into ``n_views``
    views is split by planes (:func:`forward_project_planes`, :func:`sart_update_project`)."""
    return numba.get_num_threads() * n_views * (det_shape[0] + 2) * (det_shape[1] + 2) * 4


def forward_project(vol, a_col, b_col, a_row, b_row, scale, out):
    """Adjoint of :func:`backproject`: vol (S, ny, nx) f32 -> out (V, R, C) f32 (overwritten).

    With fewer views than twice the threads (a SART subset), the threads share out the planes, each
    projecting its planes into every view's detector of its own (:func:`forward_project_planes`): each
    voxel row is read from memory once for all views, not once per view.  Otherwise, or when those
    detectors would take more than ``PLANE_SPLIT_BYTES``, each thread takes whole views
    (:func:`forward_project_views`)."""
    V, R, C = out.shape
    T = numba.get_num_threads()
    if T > 1 and V < 2 * T and split_detector_bytes(V, (R, C)) <= PLANE_SPLIT_BYTES and vol.shape[0] >= T:
        forward_project_planes(vol, a_col, b_col, a_row, b_row, scale, out, T)
    else:
        forward_project_views(vol, a_col, b_col, a_row, b_row, scale, out)


@njit(cache=True, nogil=True, parallel=True)
def _sum_detectors(dets, scale, out):
    """out[v] = scale * the sum over threads t of dets[t, v] without its border of zeros."""
    T, V = dets.shape[:2]
    R, C = out.shape[1:]
    for i in prange(V * R):
        v = i // R
        r = i - v * R
        for c in range(C):
            acc = np.float32(0.0)
            for t in range(T):
                acc += dets[t, v, r + 1, c + 1]
            out[v, r, c] = acc * scale


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def forward_project_planes(vol, a_col, b_col, a_row, b_row, scale, out, T):
    """:func:`forward_project` with the planes split into ``T`` blocks, one per thread, each block
    projected into every view's detector of its own (T x V detectors), which are then summed: a 2-view
    subset's forward projection 78 -> 57 ms at 1024² from 100 planes (docs/benchmarks.md).  The same
    sums as :func:`forward_project_views` in another order (equal within float rounding)."""
    S, ny, nx = vol.shape
    V, R, C = out.shape
    Q = a_col.shape[1]
    dets = np.zeros((T, V, R + 2, C + 2), np.float32)  # a zero row and column on each side, as below
    for t in prange(T):
        s_a = (S * t) // T
        s_b = (S * (t + 1)) // T
        idx = np.empty(nx, np.int32)
        wts = np.empty((V, nx), np.float32)
        runs = np.empty((V, nx + 1), np.int32)
        offs = np.empty((V, nx + 1), np.int32)
        nr = np.zeros(V, np.int64)
        det = dets[t]
        for s in range(s_a, s_b):
            for q in range(Q):
                for v in range(V):
                    k_lo, k_hi, n = column_pattern(a_col[s, q, v], b_col[s, q, v], C, nx, idx, wts[v], runs[v],
                                                   offs[v])
                    nr[v] = n if k_hi >= k_lo else 0
                for j in range(ny):
                    xr = vol[s, j]  # read once, projected into every view while it is in L1
                    for v in range(V):
                        if nr[v] == 0:
                            continue
                        r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                        if w0 == 0.0 and w1 == 0.0:
                            continue
                        scatter_runs_rows(det[v, r0 + 1], np.float32(w0), det[v, r0 + 2], np.float32(w1), xr, wts[v],
                                          runs[v], offs[v], nr[v])
    _sum_detectors(dets, scale, out)


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def forward_project_views(vol, a_col, b_col, a_row, b_row, scale, out):
    """:func:`forward_project` with each thread taking whole views."""
    S, ny, nx = vol.shape
    V, R, C = out.shape
    Q = a_col.shape[1]
    for v in prange(V):
        det = np.zeros((R + 2, C + 2), np.float32)  # a zero row and column on each side (the pattern's edges)
        idx = np.empty(nx, np.int32)
        wts = np.empty(nx, np.float32)
        runs = np.empty(nx + 1, np.int32)
        offs = np.empty(nx + 1, np.int32)
        for s in range(S):
            for q in range(Q):
                k_lo, k_hi, n = column_pattern(a_col[s, q, v], b_col[s, q, v], C, nx, idx, wts, runs, offs)
                if k_hi < k_lo:
                    continue
                for j in range(ny):
                    r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                    if w0 == 0.0 and w1 == 0.0:
                        continue
                    # detector rows r0 and r0 + 1 are det rows r0 + 1 and r0 + 2 (r0 may be -1 with w0 = 0)
                    scatter_runs_rows(det[r0 + 1], np.float32(w0), det[r0 + 2], np.float32(w1), vol[s, j], wts,
                                      runs, offs, n)
        for r in range(R):
            for c in range(C):
                out[v, r, c] = det[r + 1, c + 1] * scale



@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def forward_project_ones(shape, a_col, b_col, a_row, b_row, scale, out):
    """:func:`forward_project` of a volume of ones of ``shape`` (S, ny, nx) (SART's ray sums), without the
    volume: a plane of ones projects to the outer product of its row weights summed over the slice rows
    and its column weights summed over the slice columns, so each plane costs one pass over the detector
    instead of one per slice row (equal to the forward projection of ones within float rounding)."""
    S, ny, nx = shape
    V, R, C = out.shape
    Q = a_col.shape[1]
    for v in prange(V):
        det = np.zeros((R, C), np.float32)
        tmp = np.zeros(C + 2, np.float32)
        rows = np.zeros(R, np.float32)
        ones = np.ones(nx, np.float32)
        idx = np.empty(nx, np.int32)
        wts = np.empty(nx, np.float32)
        runs = np.empty(nx + 1, np.int32)
        offs = np.empty(nx + 1, np.int32)
        for s in range(S):
            for q in range(Q):
                k_lo, k_hi, n = column_pattern(a_col[s, q, v], b_col[s, q, v], C, nx, idx, wts, runs, offs)
                if k_hi < k_lo:
                    continue
                tmp[:] = 0.0
                scatter_runs_rows(tmp, np.float32(1.0), tmp, np.float32(0.0), ones, wts, runs, offs, n)
                rows[:] = 0.0
                for j in range(ny):
                    r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                    if w0 != 0.0:
                        rows[r0] += np.float32(w0)
                    if w1 != 0.0:
                        rows[r0 + 1] += np.float32(w1)
                for r in range(R):
                    f = rows[r]
                    if f != 0.0:
                        d = det[r]
                        for c in range(C):
                            d[c] += f * tmp[c + 1]
        for r in range(R):
            for c in range(C):
                out[v, r, c] = det[r, c] * scale

@njit(cache=True, nogil=True, inline="always")
def _taper_at(t, u, n):
    """Bilinear value of the 1-D taper ``t`` (zero outside [0, n)) at fractional index u."""
    i = int(math.floor(u))
    w = u - i
    v0 = t[i] if 0 <= i < n else 0.0
    v1 = t[i + 1] if 0 <= i + 1 < n else 0.0
    return v0 + w * (v1 - v0)


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def coverage_tapered(a_col, b_col, a_row, b_row, taper_r, taper_c, margin, out):
    """``backproject`` (scale 1) of every view's detector weight ``taper_r[r] * taper_c[c]``: how much
    of the views, weighted as the backprojection weights them, sees each slice pixel (the view count of
    each pixel, and SART's column sums).  The tapers are 1 more than ``margin`` pixels inside the
    detector, where the run is added through a difference array, so a row costs O(views + columns),
    not O(views x columns); the column taper of the edge columns of each plane and view is the same for
    every row, so it is tabulated once per plane and view (2.6-3x faster than evaluating it per row,
    the same result to the bit).  With tapers of ones and ``margin`` 0 it is the backprojection of a
    detector of ones (see :func:`coverage`)."""
    S, ny, nx = out.shape
    V = a_col.shape[2]
    Q = a_col.shape[1]
    cw = np.empty((S, Q, V, nx), np.float32)  # the column taper, filled at the edge columns only
    seg = np.empty((S, Q, V, 4), np.int64)  # k_lo, first interior column, last interior column, k_hi
    for t in prange(S * Q * V):
        _taper_table_at(t, a_col, b_col, taper_c, margin, nx, cw, seg)
    for idx in prange(S * ny):
        j = idx // S
        s = idx - j * S
        acc = np.zeros(nx, np.float32)
        run = np.zeros(nx + 1, np.float32)
        coverage_row(acc, run, s, j, a_row, b_row, taper_r, cw, seg)
        o = out[s, j]
        for k in range(nx):
            o[k] = acc[k]


@njit(cache=True, nogil=True, inline="always")
def _taper_table_at(t, a_col, b_col, taper_c, margin, nx, cw, seg):
    """The column taper of the edge columns of plane and view number t, and its segments, into cw, seg."""
    Q = a_col.shape[1]
    V = a_col.shape[2]
    C = taper_c.shape[0]
    s = t // (Q * V)
    rem = t - s * Q * V
    q = rem // V
    v = rem - q * V
    a = a_col[s, q, v]
    b = b_col[s, q, v]
    k_lo, k_hi = col_range(a, b, C, nx)
    lo = k_lo
    while lo <= k_hi and a * lo + b < margin:
        cw[s, q, v, lo] = np.float32(_taper_at(taper_c, a * lo + b, C))
        lo += 1
    hi = k_hi
    while hi >= lo and a * hi + b > C - 1 - margin:
        cw[s, q, v, hi] = np.float32(_taper_at(taper_c, a * hi + b, C))
        hi -= 1
    seg[s, q, v, 0] = k_lo
    seg[s, q, v, 1] = lo
    seg[s, q, v, 2] = hi
    seg[s, q, v, 3] = k_hi


@njit(cache=True, nogil=True, inline="always")
def _row_view_edges(acc, s, q, v, j, a_row, b_row, taper_r, cw, seg):
    """The edge columns of plane (s, q) in view v for slice row j added to ``acc`` (their tapered column
    weight times the row weight); returns (wr, lo, hi): the row weight (0: the view does not see the row)
    and the interior columns [lo, hi], of weight wr, which the caller adds its own way."""
    k_lo = seg[s, q, v, 0]
    k_hi = seg[s, q, v, 3]
    if k_hi < k_lo:
        return np.float32(0.0), 0, -1
    wr = np.float32(_taper_at(taper_r, a_row[s, q, v] * j + b_row[s, q, v], taper_r.shape[0]))
    if wr == 0.0:
        return wr, 0, -1
    c = cw[s, q, v]
    lo = seg[s, q, v, 1]
    hi = seg[s, q, v, 2]
    for k in range(k_lo, lo):
        acc[k] += wr * c[k]
    for k in range(hi + 1, k_hi + 1):
        acc[k] += wr * c[k]
    return wr, lo, hi


@njit(cache=True, nogil=True, inline="always")
def coverage_row(acc, run, s, j, a_row, b_row, taper_r, cw, seg):
    """acc (zeros on entry, nx) <- the view count of slice row j of slice s (``coverage_tapered``);
    run (nx + 1, zeros on entry) is scratch.  With many views the interior runs go through the difference
    array ``run`` and one prefix sum (O(views + columns)); with few (a SART subset) each is added directly,
    a loop that vectorises, where the prefix sum's chain of dependent additions cost more than the
    subset's backprojection."""
    Q = a_row.shape[1]
    V = a_row.shape[2]
    direct = Q * V <= DIRECT_VIEWS
    nx = acc.shape[0]
    for q in range(Q):
        for v in range(V):
            wr, lo, hi = _row_view_edges(acc, s, q, v, j, a_row, b_row, taper_r, cw, seg)
            if wr == 0.0:
                continue
            if direct and hi >= lo:
                # an unsigned index (see gather_runs): with k from range(lo, hi + 1) this loop ran scalar,
                # a third of a SART update's time
                ku = np.uint64(lo)
                for i in range(np.uint64(hi + 1 - lo)):
                    acc[ku + i] += wr
            elif hi >= lo:
                run[lo] += wr
                run[hi + 1] -= wr
    if not direct:
        total = np.float32(0.0)
        for k in range(nx):
            total += run[k]
            acc[k] += total


@njit(cache=True, nogil=True, inline="always")
def coverage_row_outside(cover, s, j, a_row, b_row, taper_r, cw, seg):
    """:func:`coverage_row` (direct: few views) for slice row j of slice s, split in two: returns (i_lo,
    i_hi, tot), where [i_lo, i_hi] are the columns inside the interior of every view that sees the row
    (their column sum is tot, the sum of the row weights, the same float sum as ``coverage_row`` forms
    there) and fills ``cover`` with the column sums of the other columns only (i_hi < i_lo: none is
    inside all, ``cover`` holds the whole row).  Saves zeroing and summing the row in full."""
    Q = a_row.shape[1]
    V = a_row.shape[2]
    R = taper_r.shape[0]
    nx = cover.shape[0]
    i_lo = 0
    i_hi = nx - 1
    tot = np.float32(0.0)
    for q in range(Q):
        for v in range(V):
            if seg[s, q, v, 3] < seg[s, q, v, 0]:
                continue
            wr = np.float32(_taper_at(taper_r, a_row[s, q, v] * j + b_row[s, q, v], R))
            if wr == 0.0:
                continue
            tot += wr
            i_lo = max(i_lo, seg[s, q, v, 1])
            i_hi = min(i_hi, seg[s, q, v, 2])
    if i_hi < i_lo:
        i_lo, i_hi = nx, nx - 1
    for k in range(i_lo):
        cover[k] = 0.0
    ku = np.uint64(i_hi + 1)
    for i in range(np.uint64(nx - 1 - i_hi)):
        cover[ku + i] = 0.0
    for q in range(Q):
        for v in range(V):
            wr, lo, hi = _row_view_edges(cover, s, q, v, j, a_row, b_row, taper_r, cw, seg)
            if wr == 0.0:
                continue
            # the interior outside [i_lo, i_hi] (unsigned indices: see gather_runs)
            _add_span(cover, wr, lo, min(hi, i_lo - 1) + 1)
            _add_span(cover, wr, max(lo, i_hi + 1), hi + 1)
    return i_lo, i_hi, tot


@njit(cache=True, nogil=True, inline="always")
def _add_span(a, w, k_a, k_b):
    """a[k] += w for k in [k_a, k_b)."""
    if k_b > k_a:
        ku = np.uint64(k_a)
        for i in range(np.uint64(k_b - k_a)):
            a[ku + i] += w


@njit(cache=True, nogil=True, inline="always")
def _update_span(xr, acc, cover, lam, k_a, k_b):
    """The SART update of columns [k_a, k_b) of a row: x <- max(0, x + lam acc / cover) where cover > TINY."""
    if k_b > k_a:
        ku = np.uint64(k_a)
        for i in range(np.uint64(k_b - k_a)):
            cv = cover[ku + i]
            if cv > TINY:
                val = xr[ku + i] + lam * acc[ku + i] / cv
                xr[ku + i] = val if val > 0.0 else np.float32(0.0)


def sart_update(ratio, a_col, b_col, a_row, b_row, x, relaxation):
    """One SART update of x (S, ny, nx) in place from the normalised residual ``ratio`` (V, R, C) of a
    subset's views: x <- max(0, x + relaxation * B ratio / B 1) where B 1 > TINY (B: ``backproject``
    with scale 1; B 1: ``coverage``).  The same result to the bit as ``backproject``, ``coverage`` and
    ``sart.apply_update`` one after the other, without writing the update and the column sums out and
    reading them back (three passes over the volume fewer per subset): :func:`sart_update_project` with
    no next views to project into."""
    S, Q = a_col.shape[:2]
    none = np.empty((S, Q, 0))
    sart_update_project(ratio, a_col, b_col, a_row, b_row, x, relaxation, none, none, none, none,
                        np.empty((0,) + ratio.shape[1:], np.float32), numba.get_num_threads())


def fused_update_fits(n_views_next: int, det_shape) -> bool:
    """Whether :func:`sart_update_project` can take the next subset's forward projection (its T x V
    detectors within ``PLANE_SPLIT_BYTES``)."""
    return split_detector_bytes(n_views_next, det_shape) <= PLANE_SPLIT_BYTES


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def sart_update_project(ratio, a_col, b_col, a_row, b_row, x, relaxation, n_col, nb_col, n_row, nb_row, out, T):
    """The SART update of x from ``ratio`` (the views of a_*/b_*; :func:`sart_update`) and the forward
    projection of the updated x through the next subset's coefficients (n_col, nb_col, n_row, nb_row: the
    a and b of its columns and rows) into ``out`` (scale 1), in one pass: each voxel row is projected into
    the next views while it is still in L1 from its update, so the next subset's forward projection no
    longer reads the model from memory.  The tasks (blocks of rows of a plane) are split into ``T`` runs
    of tasks, one per thread (scratch once per thread), each projecting into detectors of its own, which
    are summed at the end; x ends the same to the bit for any T, and ``out`` equals ``forward_project``
    of it within float rounding
    (``out`` may hold no views: :func:`sart_update`)."""
    V, R, C = ratio.shape
    S, ny, nx = x.shape
    Q = a_col.shape[1]
    W, Rn, Cn = out.shape
    Qn = n_col.shape[1]
    idx, wts, runs, offs, nrun, klo, khi = _pattern_arrays(S, Q, V, nx)
    for t in prange(S * Q * V):
        _pattern_at(t, a_col, b_col, C, nx, idx, wts, runs, offs, nrun, klo, khi)
    ones_r = np.ones(R, np.float32)
    ones_c = np.ones(C, np.float32)
    cw = np.empty((S, Q, V, nx), np.float32)
    seg = np.empty((S, Q, V, 4), np.int64)
    for t in prange(S * Q * V):
        _taper_table_at(t, a_col, b_col, ones_c, 0, nx, cw, seg)
    # the next subset's column patterns, as in backproject
    pidx, pw, pruns, poffs, pn, plo, phi = _pattern_arrays(S, Qn, W, nx)
    for t in prange(S * Qn * W):
        _pattern_at(t, n_col, nb_col, Cn, nx, pidx, pw, pruns, poffs, pn, plo, phi)
    lam = np.float32(relaxation)
    direct = Q * V <= DIRECT_VIEWS
    dets = np.zeros((T, W, Rn + 2, Cn + 2), np.float32)
    nb = (ny + UPDATE_ROWS - 1) // UPDATE_ROWS
    n_tasks = S * nb
    for t in prange(T):
        # tasks in sart_update's order (blocks of rows, every plane through a block before the next), so
        # that the detector rows a block reads and writes stay in cache from plane to plane
        acc = np.empty(nx, np.float32)
        tmp = np.zeros(C + 2, np.float32)  # tmp[0], tmp[C + 1]: the zeros outside the detector
        cover = np.empty(nx, np.float32)
        run = np.empty(nx + 1, np.float32)
        det = dets[t]
        for task in range((n_tasks * t) // T, (n_tasks * (t + 1)) // T):
            jb = task // S
            s = task - jb * S
            for j in range(jb * UPDATE_ROWS, min(ny, (jb + 1) * UPDATE_ROWS)):
                acc[:] = 0.0
                for q in range(Q):
                    for v in range(V):
                        r0, w0, w1 = row_weights(a_row[s, q, v] * j + b_row[s, q, v], R)
                        if (w0 == 0.0 and w1 == 0.0) or khi[s, q, v] < klo[s, q, v]:
                            continue
                        blend_rows(tmp, ratio, v, r0, np.float32(w0), np.float32(w1))
                        gather_runs(acc, tmp, wts[s, q, v], runs[s, q, v], offs[s, q, v], nrun[s, q, v],
                                    klo[s, q, v], khi[s, q, v])
                xr = x[s, j]
                if direct:
                    # the columns every view that sees this row sees in full ([i_lo, i_hi]) have the row
                    # weights' sum as column sum; only the others go through ``cover``
                    i_lo, i_hi, tot = coverage_row_outside(cover, s, j, a_row, b_row, ones_r, cw, seg)
                    if tot > TINY and i_hi >= i_lo:
                        f = lam / tot
                        ku = np.uint64(i_lo)
                        for i in range(np.uint64(i_hi + 1 - i_lo)):  # unsigned (see gather_runs)
                            val = xr[ku + i] + f * acc[ku + i]
                            xr[ku + i] = val if val > 0.0 else np.float32(0.0)
                else:
                    cover[:] = 0.0
                    run[:] = 0.0
                    coverage_row(cover, run, s, j, a_row, b_row, ones_r, cw, seg)
                    i_lo, i_hi = nx, nx - 1
                _update_span(xr, acc, cover, lam, 0, i_lo)
                _update_span(xr, acc, cover, lam, i_hi + 1, nx)
                for q in range(Qn):
                    for w in range(W):
                        if phi[s, q, w] < plo[s, q, w]:
                            continue
                        r0, w0, w1 = row_weights(n_row[s, q, w] * j + nb_row[s, q, w], Rn)
                        if w0 == 0.0 and w1 == 0.0:
                            continue
                        scatter_runs_rows(det[w, r0 + 1], np.float32(w0), det[w, r0 + 2], np.float32(w1), xr,
                                          pw[s, q, w], pruns[s, q, w], poffs[s, q, w], pn[s, q, w])
    _sum_detectors(dets, np.float32(1.0), out)


@njit(cache=True, nogil=True, parallel=True)
def normalise(out, count, floor, scale, fraction):
    """One pass of the whole-field normalisation: out /= max(count, floor) and fraction (uint8) =
    round(255 * count * scale) clipped to 0..255, the view fraction in the form it is stored in (without
    fastmath: the same result to the bit as the NumPy passes it replaces, ``engine.fraction_u8``)."""
    S, ny, nx = out.shape
    for idx in prange(S * ny):
        s = idx // ny
        j = idx - s * ny
        o = out[s, j]
        c = count[s, j]
        f = fraction[s, j]
        for k in range(nx):
            cv = c[k]
            w = np.rint(cv * scale * np.float32(255.0))
            f[k] = np.uint8(min(max(w, np.float32(0.0)), np.float32(255.0)))
            o[k] = o[k] / max(cv, floor)


def coverage(a_col, b_col, a_row, b_row, n_rows, n_cols, out):
    """``backproject`` of a detector of ones with scale 1 (SART's column sums)."""
    coverage_tapered(a_col, b_col, a_row, b_row, np.ones(n_rows, np.float32), np.ones(n_cols, np.float32), 0, out)
