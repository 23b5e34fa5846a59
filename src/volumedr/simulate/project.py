"""Exact analytic projection of primitive phantoms onto the detector."""
from __future__ import annotations

import numpy as np

from ..errors import GeometryError, VolumedrError
from ..geometry import AcquisitionGeometry
from ..phantoms.primitives import PackedPrimitives, Primitive, pack
from . import _kernels as K


def shadow_spans(packed: PackedPrimitives, geometry: AcquisitionGeometry, view: int) -> np.ndarray:
    """Detector row/column bounds of each primitive's shadow, shape (K, 4) int64.

    The perspective image of a convex set is the convex hull of the images of
    its bounding box's corners, so the bounds are conservative.
    """
    det = geometry.detector
    s = geometry.source_positions_mm[view]
    dc = geometry.detector_centres_mm[view]
    b = packed.bounds_mm  # (K, 2, 3)
    corners = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3)
    pts = np.stack([b[:, corners[:, i], i] for i in range(3)], -1)  # (K, 8, 3)
    if np.any(pts[..., 2] >= s[2] - 1e-6):
        raise GeometryError(f"view {view}: the source (z = {s[2]:.0f} mm) is inside or below the phantom")
    scale = s[2] / (s[2] - pts[..., 2])
    u = s[0] + (pts[..., 0] - s[0]) * scale
    v = s[1] + (pts[..., 1] - s[1]) * scale
    col = (u - dc[0]) / det.pitch_col_mm + (det.cols - 1) / 2.0
    row = (v - dc[1]) / det.pitch_row_mm + (det.rows - 1) / 2.0
    spans = np.empty((len(b), 4), np.int64)
    spans[:, 0] = np.floor(row.min(1)) - 1
    spans[:, 1] = np.ceil(row.max(1)) + 1
    spans[:, 2] = np.floor(col.min(1)) - 1
    spans[:, 3] = np.ceil(col.max(1)) + 1
    return spans


def path_lengths(primitives: list[Primitive] | PackedPrimitives, geometry: AcquisitionGeometry,
                 view: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """Path length (mm) through each material for every ray of one view.

    Returns
    -------
    ndarray, shape (n_materials, rows, cols), float32
        In the order of ``packed.material_names``.
    """
    packed = primitives if isinstance(primitives, PackedPrimitives) else pack(list(primitives))
    det = geometry.detector
    n_mat = len(packed.material_names)
    if out is None:
        out = np.zeros((n_mat, det.rows, det.cols), np.float32)
    else:
        out[...] = 0.0
    xs, ys = geometry.pixel_centres_mm(view)
    overflow = np.zeros(det.rows, np.int8)
    K.path_lengths_view(geometry.source_positions_mm[view].astype(np.float64), xs.astype(np.float64),
                        ys.astype(np.float64), packed.kinds, packed.world_to_unit, packed.centres_mm,
                        packed.material_index, shadow_spans(packed, geometry, view), n_mat, out, overflow)
    if overflow.any():
        raise VolumedrError(f"more than {K.MAX_HITS} overlapping objects along one ray; simplify the case")
    return out


def line_integral(primitives, geometry: AcquisitionGeometry, view: int, mu_per_mm: dict[str, float]) -> np.ndarray:
    """Monoenergetic line integral sum(mu * L) of one view (for tests and checks)."""
    packed = primitives if isinstance(primitives, PackedPrimitives) else pack(list(primitives))
    L = path_lengths(packed, geometry, view)
    mu = np.array([mu_per_mm[n] for n in packed.material_names], np.float64)
    return np.tensordot(mu, L, axes=1).astype(np.float32)
