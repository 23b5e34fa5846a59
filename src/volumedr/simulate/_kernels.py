"""numba kernels of the acquisition simulator (exact analytic projection).

Pure functions on arrays; one view (or one volume) per call so the Python loop
around them can report progress and stop.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MAX_HITS = 64


@njit(cache=True, nogil=True, inline="always")
def ray_interval(kind, M, c, sx, sy, sz, px, py, pz):
    """Parameter interval [t0, t1] (clipped to [0, 1]) of the segment
    s + t (p - s) inside primitive (kind, M, c); t0 >= t1 means no hit."""
    ox0, oy0, oz0 = sx - c[0], sy - c[1], sz - c[2]
    dx0, dy0, dz0 = px - sx, py - sy, pz - sz
    ox = M[0, 0] * ox0 + M[0, 1] * oy0 + M[0, 2] * oz0
    oy = M[1, 0] * ox0 + M[1, 1] * oy0 + M[1, 2] * oz0
    oz = M[2, 0] * ox0 + M[2, 1] * oy0 + M[2, 2] * oz0
    dx = M[0, 0] * dx0 + M[0, 1] * dy0 + M[0, 2] * dz0
    dy = M[1, 0] * dx0 + M[1, 1] * dy0 + M[1, 2] * dz0
    dz = M[2, 0] * dx0 + M[2, 1] * dy0 + M[2, 2] * dz0
    t0, t1 = 0.0, 1.0
    if kind == 0:  # ellipsoid -> unit sphere
        a = dx * dx + dy * dy + dz * dz
        b = ox * dx + oy * dy + oz * dz
        cc = ox * ox + oy * oy + oz * oz - 1.0
        disc = b * b - a * cc
        if disc <= 0.0 or a == 0.0:
            return 1.0, 0.0
        r = math.sqrt(disc)
        t0 = max(t0, (-b - r) / a)
        t1 = min(t1, (-b + r) / a)
    elif kind == 1:  # cylinder -> x^2 + y^2 <= 1, |z| <= 1
        a = dx * dx + dy * dy
        b = ox * dx + oy * dy
        cc = ox * ox + oy * oy - 1.0
        if a == 0.0:
            if cc > 0.0:
                return 1.0, 0.0
        else:
            disc = b * b - a * cc
            if disc <= 0.0:
                return 1.0, 0.0
            r = math.sqrt(disc)
            t0 = max(t0, (-b - r) / a)
            t1 = min(t1, (-b + r) / a)
        if dz == 0.0:
            if abs(oz) > 1.0:
                return 1.0, 0.0
        else:
            ta, tb = (-1.0 - oz) / dz, (1.0 - oz) / dz
            if ta > tb:
                ta, tb = tb, ta
            t0 = max(t0, ta)
            t1 = min(t1, tb)
    else:  # box -> [-1, 1]^3
        for o, d in ((ox, dx), (oy, dy), (oz, dz)):
            if d == 0.0:
                if abs(o) > 1.0:
                    return 1.0, 0.0
            else:
                ta, tb = (-1.0 - o) / d, (1.0 - o) / d
                if ta > tb:
                    ta, tb = tb, ta
                t0 = max(t0, ta)
                t1 = min(t1, tb)
    return t0, t1


@njit(cache=True, nogil=True, inline="always")
def active_objects(spans, r, active):
    """The objects whose shadow (spans (K, 4): r_lo, r_hi, c_lo, c_hi) covers detector row r, into
    ``active``; returns how many."""
    na = 0
    for k in range(spans.shape[0]):
        if spans[k, 0] <= r and r <= spans[k, 1]:
            active[na] = k
            na += 1
    return na


@njit(cache=True, nogil=True)
def resolve_painter(hit_t0, hit_t1, hit_mat, n_hits, ends, raylen, out_row, n_mat, col, rows_stride):
    """Add per-material path lengths of one ray (later hits win) into out."""
    m = 0
    for i in range(n_hits):
        ends[m] = hit_t0[i]
        ends[m + 1] = hit_t1[i]
        m += 2
    # insertion sort (m is small)
    for i in range(1, m):
        v = ends[i]
        j = i - 1
        while j >= 0 and ends[j] > v:
            ends[j + 1] = ends[j]
            j -= 1
        ends[j + 1] = v
    for j in range(m - 1):
        a, b = ends[j], ends[j + 1]
        if b <= a:
            continue
        mid = 0.5 * (a + b)
        for i in range(n_hits - 1, -1, -1):
            if hit_t0[i] <= mid and mid <= hit_t1[i]:
                out_row[hit_mat[i] * rows_stride + col] += (b - a) * raylen
                break


@njit(cache=True, nogil=True, parallel=True)
def path_lengths_view(src, xs, ys, kinds, Ms, cs, mat_idx, spans, n_mat, out, overflow):
    """Per-material path length (mm) of every ray of one view.

    src: (3,) source; xs: (C,) pixel-centre x; ys: (R,) pixel-centre y (z = 0);
    spans: (K, 4) int [r_lo, r_hi, c_lo, c_hi] shadow bounds of each primitive;
    out: (n_mat, R, C) float32, zeroed by the caller.
    """
    R = ys.shape[0]
    C = xs.shape[0]
    K = kinds.shape[0]
    for r in prange(R):
        active = np.empty(K, np.int64)
        na = active_objects(spans, r, active)
        hit_t0 = np.empty(MAX_HITS, np.float64)
        hit_t1 = np.empty(MAX_HITS, np.float64)
        hit_mat = np.empty(MAX_HITS, np.int64)
        ends = np.empty(2 * MAX_HITS, np.float64)
        row_buf = np.zeros(n_mat * C, np.float64)
        py = ys[r]
        for c in range(C):
            px = xs[c]
            nh = 0
            for ia in range(na):
                k = active[ia]
                if c < spans[k, 2] or c > spans[k, 3]:
                    continue
                t0, t1 = ray_interval(kinds[k], Ms[k], cs[k], src[0], src[1], src[2], px, py, 0.0)
                if t1 > t0:
                    if nh < MAX_HITS:
                        hit_t0[nh] = t0
                        hit_t1[nh] = t1
                        hit_mat[nh] = mat_idx[k]
                        nh += 1
                    else:
                        overflow[r] = 1
            if nh > 0:
                dx, dy, dz = px - src[0], py - src[1], -src[2]
                raylen = math.sqrt(dx * dx + dy * dy + dz * dz)
                resolve_painter(hit_t0, hit_t1, hit_mat, nh, ends, raylen, row_buf, n_mat, c, C)
        for m in range(n_mat):
            for c in range(C):
                out[m, r, c] = row_buf[m * C + c]


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def polychromatic(L, mu, wq, we, out_tq, out_te):
    """Transmission through per-material path lengths over an energy spectrum.

    L: (n_mat, R, C) mm; mu: (n_mat, n_E) 1/mm; wq: (n_E,) absorbed-quanta
    weights, we: (n_E,) absorbed-energy weights (each sums to 1).
    out_tq: quantum-weighted transmission; out_te: energy-weighted transmission.
    """
    n_mat, R, C = L.shape
    nE = mu.shape[1]
    for r in prange(R):
        for c in range(C):
            tq = 0.0
            te = 0.0
            for e in range(nE):
                a = 0.0
                for m in range(n_mat):
                    a += mu[m, e] * L[m, r, c]
                t = math.exp(-a)
                tq += wq[e] * t
                te += we[e] * t
            out_tq[r, c] = tq
            out_te[r, c] = te


@njit(cache=True, nogil=True, parallel=True)
def label_volume(kinds, Ms, cs, bounds, origin, spacing, shape, labels):
    """Painter's-order label (primitive index, -1 = air) at each voxel centre.

    origin: (3,) centre of voxel (0,0,0) as (x, y, z); spacing: (3,) (x, y, z);
    labels: (nz, ny, nx) int32 filled with -1 by the caller.
    """
    nz, ny, nx = shape[0], shape[1], shape[2]
    K = kinds.shape[0]
    for iz in prange(nz):
        z = origin[2] + iz * spacing[2]
        for k in range(K):
            if z < bounds[k, 0, 2] or z > bounds[k, 1, 2]:
                continue
            y0 = max(0, int(math.floor((bounds[k, 0, 1] - origin[1]) / spacing[1])))
            y1 = min(ny - 1, int(math.ceil((bounds[k, 1, 1] - origin[1]) / spacing[1])))
            x0 = max(0, int(math.floor((bounds[k, 0, 0] - origin[0]) / spacing[0])))
            x1 = min(nx - 1, int(math.ceil((bounds[k, 1, 0] - origin[0]) / spacing[0])))
            M = Ms[k]
            c = cs[k]
            kind = kinds[k]
            for iy in range(y0, y1 + 1):
                y = origin[1] + iy * spacing[1]
                for ix in range(x0, x1 + 1):
                    x = origin[0] + ix * spacing[0]
                    ox, oy, oz = x - c[0], y - c[1], z - c[2]
                    u = M[0, 0] * ox + M[0, 1] * oy + M[0, 2] * oz
                    v = M[1, 0] * ox + M[1, 1] * oy + M[1, 2] * oz
                    w = M[2, 0] * ox + M[2, 1] * oy + M[2, 2] * oz
                    if kind == 0:
                        inside = u * u + v * v + w * w <= 1.0
                    elif kind == 1:
                        inside = u * u + v * v <= 1.0 and abs(w) <= 1.0
                    else:
                        inside = abs(u) <= 1.0 and abs(v) <= 1.0 and abs(w) <= 1.0
                    if inside:
                        labels[iz, iy, ix] = k


@njit(cache=True, nogil=True, inline="always")
def _bilinear(vol, m, s, j0, wj, k0, wk, ny, nx):
    v = 0.0
    for dj in range(2):
        j = j0 + dj
        if j < 0 or j >= ny:
            continue
        fj = wj if dj == 1 else 1.0 - wj
        for dk in range(2):
            k = k0 + dk
            if k < 0 or k >= nx:
                continue
            fk = wk if dk == 1 else 1.0 - wk
            v += fj * fk * vol[m, s, j, k]
    return v


@njit(cache=True, nogil=True)
def nonzero_spans(vols, spans):
    """First and last column (k) of each plane row that holds anything, per material: spans (M, S, ny, 2)
    int32, (nx, -1) for an empty row.  Lets :func:`project_planes` skip the air around the body, and the
    bone fraction wherever a row holds no bone."""
    M, S, ny, nx = vols.shape
    for m in range(M):
        for s in range(S):
            for j in range(ny):
                lo = nx
                hi = -1
                for k in range(nx):
                    if vols[m, s, j, k] != 0.0:
                        lo = k
                        break
                for k in range(nx - 1, -1, -1):
                    if vols[m, s, j, k] != 0.0:
                        hi = k
                        break
                spans[m, s, j, 0] = lo
                spans[m, s, j, 1] = hi


@njit(cache=True, nogil=True, parallel=True, fastmath=True)
def project_planes(vols, a_col, b_col, a_row, b_row, out, spans):
    """Ray-driven projection of a stack of planes parallel to the detector (one view).

    Plane s pixel (j, k) lies on detector row ``a_row[s] * j + b_row[s]`` and
    column ``a_col[s] * k + b_col[s]``; detector pixel (r, c) therefore reads
    plane s at j = (r - b_row[s]) / a_row[s], k = (c - b_col[s]) / a_col[s],
    interpolated bilinearly (zero outside).  out[m, r, c] = sum_s vols[m, s](j, k).
    vols (M, S, ny, nx) f32; a_*, b_* (S,) f64; out (M, R, C) f32, overwritten;
    spans (M, S, ny, 2) int32 from :func:`nonzero_spans`: for each material only
    the columns whose samples can touch one of its non-zero voxels are visited
    (the result is the same).  The column positions are the same for every
    detector row, so they are tabulated once per plane.
    """
    M, S, ny, nx = vols.shape
    R = out.shape[1]
    C = out.shape[2]
    k0s = np.empty((S, C), np.int64)
    wks = np.empty((S, C), np.float64)
    for s in range(S):
        inv = 1.0 / a_col[s]
        for c in range(C):
            kf = (c - b_col[s]) * inv
            k0 = int(math.floor(kf))
            k0s[s, c] = k0
            wks[s, c] = kf - k0
    for r in prange(R):
        acc = np.zeros((M, C), np.float64)
        for s in range(S):
            jf = (r - b_row[s]) / a_row[s]
            j0 = int(math.floor(jf))
            if j0 < -1 or j0 > ny - 1:
                continue
            wj = jf - j0
            fa = 1.0 - wj if j0 >= 0 else 0.0
            fb = wj if j0 + 1 <= ny - 1 else 0.0
            ja = j0 if j0 >= 0 else 0
            jb = j0 + 1 if j0 + 1 <= ny - 1 else ny - 1
            for m in range(M):
                klo = min(spans[m, s, ja, 0] if fa != 0.0 else nx, spans[m, s, jb, 0] if fb != 0.0 else nx)
                khi = max(spans[m, s, ja, 1] if fa != 0.0 else -1, spans[m, s, jb, 1] if fb != 0.0 else -1)
                if khi < klo:
                    continue
                # columns whose k0 lies in [klo - 1, khi]: the samples that can touch the non-zero voxels
                e0 = a_col[s] * (klo - 1) + b_col[s]
                e1 = a_col[s] * (khi + 1) + b_col[s]
                c0 = max(0, int(math.floor(min(e0, e1))) - 1)
                c1 = min(C - 1, int(math.ceil(max(e0, e1))) + 1)
                for c in range(c0, c1 + 1):
                    k0 = k0s[s, c]
                    if k0 < -1 or k0 > nx - 1:
                        continue
                    wk = wks[s, c]
                    if k0 >= 0 and k0 <= nx - 2:
                        acc[m, c] += (fa * ((1.0 - wk) * vols[m, s, ja, k0] + wk * vols[m, s, ja, k0 + 1])
                                      + fb * ((1.0 - wk) * vols[m, s, jb, k0] + wk * vols[m, s, jb, k0 + 1]))
                    else:
                        acc[m, c] += _bilinear(vols, m, s, j0, wj, k0, wk, ny, nx)
        for m in range(M):
            for c in range(C):
                out[m, r, c] = acc[m, c]


@njit(cache=True, nogil=True, parallel=True)
def voxels_inside_objects(vols, z0, dz, ox, oy, py_mm, px_mm, src, xs, ys, kinds, Ms, cs, spans, out, overflow):
    """The voxel material each ray crosses inside the union of the analytic objects, as the voxel
    projector (:func:`project_planes`) sees it: plane s holds the slab z_s +- dz/2 (z_s = z0 + s dz),
    bilinear in x and y; a ray's sample on plane s counts for the length of its chord inside the objects
    that lies in that slab.  For a uniform volume this is exactly the volume's material along the
    objects' chords, so the objects replace the voxels along their own chords with no fringe.

    vols (M, S, ny, nx) f32 fractions; (ox, oy) the centre of voxel (0, 0), (py_mm, px_mm) its pitch;
    src (3,); xs (C,), ys (R,) pixel centres (z = 0); spans (K, 4) shadow bounds of each object;
    out (M, R, C) f32, overwritten (0 outside the shadows)."""
    M, S, ny, nx = vols.shape
    R = ys.shape[0]
    C = xs.shape[0]
    K = kinds.shape[0]
    sx, sy, sz = src[0], src[1], src[2]
    for r in prange(R):
        active = np.empty(K, np.int64)
        na = active_objects(spans, r, active)
        for m in range(M):
            for c in range(C):
                out[m, r, c] = 0.0
        if na == 0:
            continue
        t0s = np.empty(MAX_HITS, np.float64)
        t1s = np.empty(MAX_HITS, np.float64)
        acc = np.zeros(M, np.float64)
        py = ys[r]
        for c in range(C):
            px = xs[c]
            nh = 0
            for ia in range(na):
                k = active[ia]
                if c < spans[k, 2] or c > spans[k, 3]:
                    continue
                a, b = ray_interval(kinds[k], Ms[k], cs[k], sx, sy, sz, px, py, 0.0)
                if b > a:
                    if nh < MAX_HITS:
                        # insert sorted by entry
                        i = nh
                        while i > 0 and t0s[i - 1] > a:
                            t0s[i] = t0s[i - 1]
                            t1s[i] = t1s[i - 1]
                            i -= 1
                        t0s[i] = a
                        t1s[i] = b
                        nh += 1
                    else:
                        overflow[r] = 1
            if nh == 0:
                continue
            for m in range(M):
                acc[m] = 0.0
            obliq = math.sqrt((px - sx) ** 2 + (py - sy) ** 2 + sz * sz) / sz  # path length per mm of height
            i = 0
            while i < nh:
                a = t0s[i]
                b = t1s[i]
                i += 1
                while i < nh and t0s[i] <= b:  # merge overlapping intervals (the union of the objects)
                    b = max(b, t1s[i])
                    i += 1
                zhi = sz * (1.0 - a)
                zlo = sz * (1.0 - b)
                s_lo = max(0, int(math.ceil((zlo - z0) / dz - 0.5)) - 1)
                s_hi = min(S - 1, int(math.floor((zhi - z0) / dz + 0.5)) + 1)
                for s in range(s_lo, s_hi + 1):
                    zs = z0 + s * dz
                    ov = min(zhi, zs + 0.5 * dz) - max(zlo, zs - 0.5 * dz)
                    if ov <= 0.0:
                        continue
                    t = 1.0 - zs / sz
                    kf = (sx + t * (px - sx) - ox) / px_mm
                    jf = (sy + t * (py - sy) - oy) / py_mm
                    k0 = int(math.floor(kf))
                    j0 = int(math.floor(jf))
                    if j0 < -1 or j0 > ny - 1 or k0 < -1 or k0 > nx - 1:
                        continue
                    wk = kf - k0
                    wj = jf - j0
                    w = ov * obliq
                    for m in range(M):
                        acc[m] += w * _bilinear(vols, m, s, j0, wj, k0, wk, ny, nx)
            for m in range(M):
                out[m, r, c] = acc[m]
