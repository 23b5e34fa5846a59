"""FBP projection filtering along the sweep direction.

Each projection is first cosine-weighted (``p * s_z / |s - pixel|``: an
oblique ray's path is converted to its vertical equivalent), then, for FBP,
filtered along the direction of shadow motion (derived from the geometry):

    H(f) = (dc + (1 - dc) |f| / f_N) / dc            ramp with a DC term
           * 0.5 (1 + cos(pi f / (a f_N)))           Hann apodisation (0 beyond a f_N)
           * 0.5 (1 + cos(pi f / f_T))               slice-thickness filter (0 beyond f_T)

with f in cycles/mm along the sweep direction, f_N the Nyquist frequency of
the detector along it and f_T = 1 / (thickness * tan(sweep / 2)).  Sweeps
along x or y use 1-D FFTs along rows or columns; an oblique sweep uses a 2-D
FFT with H evaluated at the frequency component along the sweep.  Projections
are padded by edge replication to at least twice their length.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..geometry import AcquisitionGeometry
from .settings import ReconSettings

AXIS_TOLERANCE = np.cos(np.deg2rad(1.0))


def frequency_response(f_cyc_mm: np.ndarray, f_nyquist: float, settings: ReconSettings, sweep_deg: float) -> np.ndarray:
    f = np.abs(f_cyc_mm)
    dc = settings.dc_fraction
    h = (dc + (1.0 - dc) * f / f_nyquist) / dc
    fa = settings.apodisation_cutoff * f_nyquist
    h *= np.where(f < fa, 0.5 * (1.0 + np.cos(np.pi * f / fa)), 0.0)
    if settings.thickness_filter and sweep_deg > 0:
        ft = 1.0 / (settings.thickness_mm * np.tan(np.deg2rad(sweep_deg) / 2.0))
        if ft < f_nyquist * settings.apodisation_cutoff:
            h *= np.where(f < ft, 0.5 * (1.0 + np.cos(np.pi * f / ft)), 0.0)
    return h


def cosine_weights(geometry: AcquisitionGeometry, view: int) -> np.ndarray:
    s = geometry.source_positions_mm[view]
    xs, ys = geometry.pixel_centres_mm(view)
    # float32 from the start (the float64 grid cost a fifth of the filtering): the 1-D terms in float64
    dx2 = ((xs - s[0]) ** 2 + s[2] * s[2]).astype(np.float32)[None, :]
    dy2 = ((ys - s[1]) ** 2).astype(np.float32)[:, None]
    w = np.add(dx2, dy2)
    np.sqrt(w, out=w)
    np.divide(np.float32(s[2]), w, out=w)
    return w


class ProjectionFilter:
    """Weights and filters projections of one geometry (one view per call)."""

    def __init__(self, geometry: AcquisitionGeometry, settings: ReconSettings):
        self.geometry = geometry
        self.settings = settings
        det = geometry.detector
        axis = geometry.sweep_axis_xy
        self.sweep_deg = geometry.total_angle_deg
        if abs(axis[0]) >= AXIS_TOLERANCE:
            self.mode, self.axis, pitch, n = "1d", 1, det.pitch_col_mm, det.cols
        elif abs(axis[1]) >= AXIS_TOLERANCE:
            self.mode, self.axis, pitch, n = "1d", 0, det.pitch_row_mm, det.rows
        else:
            self.mode = "2d"
        if self.mode == "1d":
            self.n = n
            self.n_pad = sfft.next_fast_len(2 * n, real=True)
            f = sfft.rfftfreq(self.n_pad, d=pitch)
            self.h = frequency_response(f, 0.5 / pitch, settings, self.sweep_deg).astype(np.float32)
        else:
            self.pad_shape = tuple(sfft.next_fast_len(2 * m, real=True) for m in det.shape)
            fy = sfft.fftfreq(self.pad_shape[0], d=det.pitch_row_mm)[:, None]
            fx = sfft.rfftfreq(self.pad_shape[1], d=det.pitch_col_mm)[None, :]
            f_along = fx * axis[0] + fy * axis[1]
            f_nyq = 0.5 / (abs(axis[0]) * det.pitch_col_mm + abs(axis[1]) * det.pitch_row_mm)
            self.h = frequency_response(f_along, f_nyq, settings, self.sweep_deg).astype(np.float32)

    def _filter_lines(self, p: np.ndarray) -> np.ndarray:
        """The 1-D filter along the sweep axis of every line of ``p``."""
        n, npad = self.n, self.n_pad
        left = (npad - n) // 2
        # edge replication by hand (np.pad's general machinery cost as much as the copy)
        if self.axis == 1:
            pp = np.empty((p.shape[0], npad), np.float32)
            pp[:, left:left + n] = p
            pp[:, :left] = p[:, :1]
            pp[:, left + n:] = p[:, -1:]
        else:
            pp = np.empty((npad, p.shape[1]), np.float32)
            pp[left:left + n] = p
            pp[:left] = p[:1]
            pp[left + n:] = p[-1:]
        spec = sfft.rfft(pp, axis=self.axis, workers=-1)
        spec *= self.h[:, None] if self.axis == 0 else self.h[None, :]
        res = sfft.irfft(spec, n=npad, axis=self.axis, workers=-1)
        return res[left:left + n] if self.axis == 0 else res[:, left:left + n]

    def apply(self, projection: np.ndarray, view: int, out: np.ndarray | None = None,
              taper: np.ndarray | None = None) -> np.ndarray:
        """Cosine-weight and (for FBP) filter one projection (rows, cols) -> float32; then multiply by
        ``taper`` (rows, cols) when given (in the same pass as the copy to ``out``)."""
        p = cosine_weights(self.geometry, view)
        p *= np.asarray(projection, dtype=np.float32)
        if self.settings.method == "saa":
            res = p
        elif self.mode == "1d":
            # each detector line along the sweep is filtered on its own: lines that are all zero (a metal
            # trace's projections hold little else) stay zero and are skipped
            lines = np.flatnonzero(np.any(p != 0, axis=self.axis))
            if len(lines) < p.shape[1 - self.axis] // 2:
                res = np.zeros(p.shape, np.float32)
                if self.axis == 0:
                    res[:, lines] = self._filter_lines(p[:, lines])
                else:
                    res[lines] = self._filter_lines(p[lines])
            else:
                res = self._filter_lines(p)
        else:
            R, C = p.shape
            top, left = (self.pad_shape[0] - R) // 2, (self.pad_shape[1] - C) // 2
            pp = np.pad(p, [(top, self.pad_shape[0] - R - top), (left, self.pad_shape[1] - C - left)], mode="edge")
            spec = sfft.rfft2(pp, workers=-1)
            spec *= self.h
            res = sfft.irfft2(spec, s=self.pad_shape, workers=-1)[top:top + R, left:left + C]
        if out is None:
            out = np.empty(res.shape, np.float32)
        if taper is not None:
            np.multiply(res, taper, out=out)
        else:
            out[...] = res
        return out


def edge_taper(n: int, margin: int) -> np.ndarray:
    """1-D weight over a detector axis of ``n`` pixels: 1 inside, falling as a raised cosine to
    almost 0 over the outer ``margin`` pixels (sample i at the edge gets w = sin^2(pi (i + 1) / (2 (margin + 1))))."""
    w = np.ones(n, np.float32)
    m = int(min(margin, n // 2))
    if m > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(m) + 1) / (m + 1)) ** 2
        w[:m] = ramp
        w[n - m:] = ramp[::-1]
    return w


def taper_margin(n: int) -> int:
    """Pixels of taper at each detector edge: 3 % of the axis, at least 4."""
    return max(4, int(round(0.03 * n)))
