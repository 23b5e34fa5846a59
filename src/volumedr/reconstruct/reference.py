"""Plain NumPy twins of the numba kernels (the tests compare both).

Same sampling rule as :mod:`volumedr.reconstruct._kernels.backproject`:
bilinear interpolation, zero outside the detector, column range
[-1, n - EDGE_EPS).
"""
from __future__ import annotations

import numpy as np

from ._kernels.backproject import EDGE_EPS


def _cols(a, b, C, nx):
    k = np.arange(nx)
    k_lo = max(0, int(np.ceil((-1.0 - b) / a)))
    k_hi = min(nx - 1, int(np.floor((C - EDGE_EPS - b) / a)))
    valid = (k >= k_lo) & (k <= k_hi)
    cf = np.where(valid, a * k + b + 1.0, 0.0)
    c0 = np.floor(cf).astype(np.int64)
    return valid, c0, (cf - c0)


def _rows(a, b, R, ny):
    rf = a * np.arange(ny) + b
    r0 = np.floor(rf).astype(np.int64)
    w = rf - r0
    inside = (r0 >= -1) & (r0 <= R - 1)
    w0 = np.where(inside & (r0 >= 0), 1.0 - w, 0.0)
    w1 = np.where(inside & (r0 + 1 <= R - 1), w, 0.0)
    return np.clip(r0 + 1, 0, R + 1), w0, w1  # row index into the zero-padded image


def backproject_numpy(proj, a_col, b_col, a_row, b_row, scale, shape):
    V, R, C = proj.shape
    S, ny, nx = shape
    Q = a_col.shape[1]
    pad = np.zeros((V, R + 2, C + 2), np.float64)
    pad[:, 1:R + 1, 1:C + 1] = proj
    out = np.zeros(shape, np.float64)
    for s in range(S):
        for q in range(Q):
            for v in range(V):
                rp, w0, w1 = _rows(a_row[s, q, v], b_row[s, q, v], R, ny)
                rows = w0[:, None] * pad[v, rp] + w1[:, None] * pad[v, np.minimum(rp + 1, R + 1)]
                valid, c0, w = _cols(a_col[s, q, v], b_col[s, q, v], C, nx)
                val = (1.0 - w) * rows[:, c0] + w * rows[:, np.minimum(c0 + 1, C + 1)]
                out[s] += np.where(valid[None, :], val, 0.0)
    return (out * scale).astype(np.float32)


def forward_project_numpy(vol, a_col, b_col, a_row, b_row, scale, det_shape):
    S, ny, nx = vol.shape
    V, R, C = det_shape
    Q = a_col.shape[1]
    out = np.zeros((V, R + 2, C + 2), np.float64)
    for s in range(S):
        for q in range(Q):
            for v in range(V):
                rp, w0, w1 = _rows(a_row[s, q, v], b_row[s, q, v], R, ny)
                valid, c0, w = _cols(a_col[s, q, v], b_col[s, q, v], C, nx)
                x = np.where(valid[None, :], vol[s].astype(np.float64), 0.0)
                tmp = np.zeros((ny, C + 2))
                for kk in range(nx):
                    tmp[:, c0[kk]] += x[:, kk] * (1.0 - w[kk])
                    tmp[:, c0[kk] + 1] += x[:, kk] * w[kk]
                np.add.at(out[v], rp, w0[:, None] * tmp)
                np.add.at(out[v], np.minimum(rp + 1, R + 1), w1[:, None] * tmp)
    return (out[:, 1:R + 1, 1:C + 1] * scale).astype(np.float32)


def coverage_numpy(a_col, b_col, a_row, b_row, n_rows, n_cols, shape):
    """Twin of the numba ``coverage``: the backprojection of a detector of ones."""
    V = a_col.shape[2]
    ones = np.ones((V, n_rows, n_cols), np.float32)
    return backproject_numpy(ones, a_col, b_col, a_row, b_row, 1.0, shape)


def normalised_residual_numpy(p, ax, raysum, out):
    """Twin of the numba ``normalised_residual``."""
    d = p.astype(np.float64) - ax
    ok = raysum > 1e-6
    out[...] = np.where(ok, d / np.where(ok, raysum, 1.0), 0.0)
    return float(np.sum(np.where(ok, d * d, 0.0)))


def apply_update_numpy(x, upd, cover, relaxation):
    """Twin of the numba ``apply_update``."""
    ok = cover > 1e-6
    x[...] = np.where(ok, np.maximum(x + relaxation * upd / np.where(ok, cover, 1.0), 0.0), x)


def coverage_tapered_numpy(a_col, b_col, a_row, b_row, taper_r, taper_c, shape):
    """Twin of the numba ``coverage_tapered``: the backprojection of the tapered detector weight."""
    V = a_col.shape[2]
    w = np.broadcast_to(np.outer(taper_r, taper_c)[None], (V, len(taper_r), len(taper_c)))
    return backproject_numpy(np.ascontiguousarray(w, np.float32), a_col, b_col, a_row, b_row, 1.0, shape)
