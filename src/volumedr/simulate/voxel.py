"""Path lengths through a voxel phantom (a CT volume) for the simulator.

The volume's planes are parallel to the detector, so a plane maps onto the
detector by a scale and a shift (as in the reconstruction engine).  Rays are
traced on a coarse copy of the detector whose pitch matches the voxels
(finer sampling would only interpolate), with bilinear interpolation in each
plane, then the path lengths are interpolated up to the full detector.
Each plane crossing adds ``dz * |S - P| / S_z``: the plane spacing times the
ray's obliquity.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..geometry import AcquisitionGeometry, Detector
from ..phantoms.volume import VoxelVolume, material_fractions
from ..reconstruct.engine import SliceGrid, plane_coefficients
from . import _kernels as K

MATERIALS = ("water", "cortical_bone")


_FRACTIONS: dict = {}  # id(volume) -> (volume, fractions): the last few volumes projected


def _fractions(volume: VoxelVolume) -> np.ndarray:
    """Water and bone fractions of a volume, (2, nz, ny, nx) float32, computed once per volume object (a
    workstation simulates the same case again and again; this is the costly part of starting)."""
    hit = _FRACTIONS.get(id(volume))
    if hit is not None and hit[0] is volume:
        return hit[1]
    w, b = material_fractions(volume.hu, volume.effective_energy_kev)
    fr = np.ascontiguousarray(np.stack([w, b]))
    while len(_FRACTIONS) >= 3:
        _FRACTIONS.pop(next(iter(_FRACTIONS)))
    _FRACTIONS[id(volume)] = (volume, fr)
    return fr


class VoxelLengths:
    """Callable (geometry, view, out) -> per-material path lengths (M, R, C) in mm."""

    material_names = MATERIALS

    def __init__(self, volume: VoxelVolume):
        self.volume = volume
        self.fractions = _fractions(volume)  # (2, nz, ny, nx)
        dz, dy, dx = volume.spacing_mm
        self.grid = SliceGrid((volume.hu.shape[1], volume.hu.shape[2]), (dy, dx), volume.origin_mm[:2])
        self.heights = volume.axis_mm("z")
        self.dz = dz
        self.min_voxel_mm = min(dy, dx)
        self._up = None  # (detector, coarse detector, factor, coordinates) of the last detector seen

    def coarse_detector(self, det: Detector) -> tuple[Detector, int]:
        f = max(1, int(np.floor(self.min_voxel_mm / min(det.pitch_row_mm, det.pitch_col_mm))))
        rows, cols = -(-det.rows // f), -(-det.cols // f)
        return Detector(rows=rows, cols=cols, pitch_row_mm=det.pitch_row_mm * f, pitch_col_mm=det.pitch_col_mm * f), f

    def coarse(self, geometry: AcquisitionGeometry, view: int, detector: Detector) -> np.ndarray:
        """Path lengths (M, rows, cols) on ``detector`` (placed at this view's detector centre)."""
        g = AcquisitionGeometry(detector, geometry.source_positions_mm[view:view + 1],
                                geometry.detector_centres_mm[view:view + 1])
        a_col, b_col, a_row, b_row = plane_coefficients(g, self.grid, self.heights[:, None])
        out = np.empty((len(MATERIALS),) + detector.shape, np.float32)
        K.project_planes(self.fractions, a_col[:, 0, 0].copy(), b_col[:, 0, 0].copy(), a_row[:, 0, 0].copy(),
                         b_row[:, 0, 0].copy(), out)
        # obliquity: each plane crossing is dz * |S - P| / S_z long
        s = geometry.source_positions_mm[view]
        d = geometry.detector_centres_mm[view]
        y = (np.arange(detector.rows) - (detector.rows - 1) / 2) * detector.pitch_row_mm + d[1]
        x = (np.arange(detector.cols) - (detector.cols - 1) / 2) * detector.pitch_col_mm + d[0]
        ray = np.sqrt((x[None, :] - s[0]) ** 2 + (y[:, None] - s[1]) ** 2 + s[2] ** 2) / s[2]
        out *= (self.dz * ray).astype(np.float32)[None]
        return out

    def _upsampling(self, det: Detector):
        """(coarse detector, factor, fine-pixel coordinates on the coarse grid), computed once per detector."""
        up = self._up  # one read and one write: two simulations may share this object (threads)
        if up is None or up[0] != det:
            small, f = self.coarse_detector(det)
            coords = None
            if f > 1:
                # fine pixel centre r sits at coarse index (r - (R-1)/2) / f + (Rc-1)/2
                rf = (np.arange(det.rows) - (det.rows - 1) / 2) / f + (small.rows - 1) / 2
                cf = (np.arange(det.cols) - (det.cols - 1) / 2) / f + (small.cols - 1) / 2
                coords = np.meshgrid(rf, cf, indexing="ij")
            up = (det, small, f, coords)
            self._up = up
        return up[1:]

    def __call__(self, geometry: AcquisitionGeometry, view: int, out=None) -> np.ndarray:
        det = geometry.detector
        small, f, coords = self._upsampling(det)
        L = self.coarse(geometry, view, small)
        if out is None:
            out = np.empty((len(MATERIALS),) + det.shape, np.float32)
        if f == 1:
            out[...] = L
            return out
        for m in range(L.shape[0]):
            out[m] = ndimage.map_coordinates(L[m], coords, order=1, mode="nearest")
        return out
