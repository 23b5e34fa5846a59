"""numba kernel: the harmonic fill of a metal trace (Laplace's equation inside a mask).

The NumPy/SciPy twin is :func:`volumedr.reconstruct.metal.harmonic_direct` (one sparse solve); the
tests check that the two agree.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def harmonic_fill(u, mask, omega, max_sweeps, tol, initialise):
    """Fill ``u`` (R, C) float64 inside ``mask`` (R, C) bool in place; returns the sweeps used.

    Start (with ``initialise``; else from the values in ``u``): the mean of the linear interpolations
    along the row and along the column between the nearest known pixels (one of them where the other
    has none).  Then red-black successive over-relaxation of the 5-point Laplacian, with Neumann
    conditions at the array's edge, until the largest change of a sweep is below ``tol``.
    """
    if initialise:
        _initial(u, mask)
    return _sor(u, mask, omega, max_sweeps, tol)


@njit(cache=True, nogil=True)
def _runs(u, mask, out, has):
    """Along every row of ``u``: each run of masked pixels interpolated linearly between the known pixels at
    its ends (the one end's value where the run meets the array's edge) into ``out``; ``has`` where set."""
    R, C = u.shape
    for r in range(R):
        c = 0
        while c < C:
            if not mask[r, c]:
                c += 1
                continue
            c1 = c
            while c1 < C and mask[r, c1]:
                c1 += 1
            a, b = c - 1, c1  # known neighbours (or outside)
            for k in range(c, c1):
                if a >= 0 and b < C:
                    t = (k - a) / (b - a)
                    out[r, k] = u[r, a] * (1.0 - t) + u[r, b] * t
                    has[r, k] = True
                elif a >= 0:
                    out[r, k] = u[r, a]
                    has[r, k] = True
                elif b < C:
                    out[r, k] = u[r, b]
                    has[r, k] = True
            c = c1


@njit(cache=True, nogil=True)
def _initial(u, mask):
    """The start of the fill: the mean of the row and the column interpolations (either where only one exists)."""
    R, C = u.shape
    along_r = np.zeros((R, C))
    has_r = np.zeros((R, C), np.bool_)
    _runs(u, mask, along_r, has_r)
    along_c = np.zeros((C, R))
    has_c = np.zeros((C, R), np.bool_)
    _runs(u.T, mask.T, along_c, has_c)
    for r in range(R):
        for c in range(C):
            if not mask[r, c]:
                continue
            if has_c[c, r] and has_r[r, c]:
                u[r, c] = 0.5 * (along_c[c, r] + along_r[r, c])
            elif has_c[c, r]:
                u[r, c] = along_c[c, r]
            elif has_r[r, c]:
                u[r, c] = along_r[r, c]


@njit(cache=True, nogil=True)
def _sor(u, mask, omega, max_sweeps, tol):
    """Red-black SOR over the masked pixels only: their indices are listed once (red in row order, then
    black), so a sweep does not scan the known pixels of the trace's box; the same updates in the same
    order as a scan of the box."""
    R, C = u.shape
    n_m = 0
    for r in range(R):
        for c in range(C):
            if mask[r, c]:
                n_m += 1
    rs = np.empty(n_m, np.int64)
    cs = np.empty(n_m, np.int64)
    k = 0
    for colour in range(2):
        for r in range(R):
            for c in range((r + colour) % 2, C, 2):
                if mask[r, c]:
                    rs[k] = r
                    cs[k] = c
                    k += 1
    sweeps = 0
    for it in range(max_sweeps):
        change = 0.0
        for k in range(n_m):
            r = rs[k]
            c = cs[k]
            if 0 < r < R - 1 and 0 < c < C - 1:
                s = 0.0
                s += u[r - 1, c]
                s += u[r + 1, c]
                s += u[r, c - 1]
                s += u[r, c + 1]
                d = omega * (s / 4 - u[r, c])
            else:
                s = 0.0
                n = 0
                if r > 0:
                    s += u[r - 1, c]
                    n += 1
                if r < R - 1:
                    s += u[r + 1, c]
                    n += 1
                if c > 0:
                    s += u[r, c - 1]
                    n += 1
                if c < C - 1:
                    s += u[r, c + 1]
                    n += 1
                if n == 0:
                    continue
                d = omega * (s / n - u[r, c])
            u[r, c] += d
            if abs(d) > change:
                change = abs(d)
        sweeps = it + 1
        if change < tol:
            break
    return sweeps
