"""numba kernels of the SART update (twins in :mod:`volumedr.reconstruct.reference`)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

TINY = 1e-6


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def normalised_residual(p, ax, raysum, out):
    """out = (p - ax) / raysum where the ray crosses the model (raysum > TINY), else 0; returns
    sum (p - ax)^2 over those rays.  All (V, R, C) float32."""
    V, R, C = p.shape
    part = np.zeros(V * R)
    for idx in prange(V * R):
        v = idx // R
        r = idx - v * R
        acc = 0.0
        for c in range(C):
            rs = raysum[v, r, c]
            if rs > TINY:
                d = p[v, r, c] - ax[v, r, c]
                out[v, r, c] = d / rs
                acc += d * d
            else:
                out[v, r, c] = 0.0
        part[idx] = acc
    return part.sum()


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def apply_update(x, upd, cover, relaxation):
    """x <- max(0, x + relaxation * upd / cover) where the voxel is seen (cover > TINY); in place."""
    S, ny, nx = x.shape
    lam = np.float32(relaxation)
    for idx in prange(S * ny):
        s = idx // ny
        j = idx - s * ny
        for k in range(nx):
            cv = cover[s, j, k]
            if cv > TINY:
                v = x[s, j, k] + lam * upd[s, j, k] / cv
                x[s, j, k] = v if v > 0.0 else np.float32(0.0)


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def tv_gradient(x, eps, out):
    """Gradient of the smoothed isotropic 3-D total variation sum sqrt(|grad x|^2 + eps), forward
    differences with a zero difference past the last voxel (voxel units); out (S, ny, nx) float32.
    Returns sum(out^2), the squared norm that the TV step divides by."""
    S, ny, nx = x.shape
    part = np.zeros(S * ny)
    for idx in prange(S * ny):
        s = idx // ny
        j = idx - s * ny
        acc = 0.0
        for k in range(nx):
            c = x[s, j, k]
            # this voxel's own term: d/dc sqrt((xs-c)^2 + (xj-c)^2 + (xk-c)^2 + eps)
            dz = x[s + 1, j, k] - c if s + 1 < S else 0.0
            dy = x[s, j + 1, k] - c if j + 1 < ny else 0.0
            dx = x[s, j, k + 1] - c if k + 1 < nx else 0.0
            g = -(dz + dy + dx) / math.sqrt(dz * dz + dy * dy + dx * dx + eps)
            # the terms of the three neighbours before it, in which c is the forward neighbour
            if s > 0:
                p = x[s - 1, j, k]
                a = c - p
                b = x[s - 1, j + 1, k] - p if j + 1 < ny else 0.0
                e = x[s - 1, j, k + 1] - p if k + 1 < nx else 0.0
                g += a / math.sqrt(a * a + b * b + e * e + eps)
            if j > 0:
                p = x[s, j - 1, k]
                a = x[s + 1, j - 1, k] - p if s + 1 < S else 0.0
                b = c - p
                e = x[s, j - 1, k + 1] - p if k + 1 < nx else 0.0
                g += b / math.sqrt(a * a + b * b + e * e + eps)
            if k > 0:
                p = x[s, j, k - 1]
                a = x[s + 1, j, k - 1] - p if s + 1 < S else 0.0
                b = x[s, j + 1, k - 1] - p if j + 1 < ny else 0.0
                e = c - p
                g += e / math.sqrt(a * a + b * b + e * e + eps)
            out[s, j, k] = g
            acc += g * g
        part[idx] = acc
    return part.sum()


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def diff_sum_squares(a, b):
    """sum (a - b)^2."""
    S, ny, nx = a.shape
    part = np.zeros(S * ny)
    for idx in prange(S * ny):
        s = idx // ny
        j = idx - s * ny
        acc = 0.0
        for k in range(nx):
            v = a[s, j, k] - b[s, j, k]
            acc += v * v
        part[idx] = acc
    return part.sum()


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def descend(x, g, step, clip):
    """x <- x - step * g, then max(x, 0) if ``clip``; in place."""
    S, ny, nx = x.shape
    st = np.float32(step)
    for idx in prange(S * ny):
        s = idx // ny
        j = idx - s * ny
        for k in range(nx):
            v = x[s, j, k] - st * g[s, j, k]
            x[s, j, k] = v if (v > 0.0 or not clip) else np.float32(0.0)
