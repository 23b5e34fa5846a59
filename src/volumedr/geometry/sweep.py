"""Tube sweeps and the per-view geometry they produce."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import GeometryError, VolumedrWarning
from .detector import Detector

SWEEP_KINDS = ("linear", "arc", "opposed")
CLINICAL_VIEWS = (25, 60)
ALLOWED_VIEWS = (3, 120)


@dataclass(frozen=True)
class Sweep:
    """A tomosynthesis tube sweep.

    Angles are those of the central ray (source -> pivot point ``(0, 0,
    pivot_height_mm)``) from the detector normal, evenly spaced over
    ``total_angle_deg`` and centred on 0.

    kinds
    -----
    ``linear``
        The tube moves on a line parallel to the detector at height
        ``source_to_image_mm``; the detector stays still (GE-style room).
    ``arc``
        The tube moves on a circle of radius ``source_to_image_mm -
        pivot_height_mm`` about the pivot; the detector stays still.
    ``opposed``
        Tube (at height ``source_to_image_mm``) and detector move in opposite
        directions so that the central ray always passes through the pivot and
        hits the detector centre (fluoroscopy-table style linear tomography):
        the pivot (fulcrum) plane is in focus on every raw view.
    """

    kind: str = "linear"
    total_angle_deg: float = 30.0
    n_projections: int = 60
    source_to_image_mm: float = 1800.0
    pivot_height_mm: float = 100.0
    direction: str = "y"

    def __post_init__(self):
        if self.kind not in SWEEP_KINDS:
            raise GeometryError(f"sweep kind must be one of {', '.join(SWEEP_KINDS)}; got {self.kind!r}")
        if self.direction not in ("x", "y"):
            raise GeometryError(f"sweep direction must be 'x' or 'y', got {self.direction!r}")
        n = self.n_projections
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise GeometryError(f"number of projections must be an integer, got {n!r}")
        if not ALLOWED_VIEWS[0] <= n <= ALLOWED_VIEWS[1]:
            raise GeometryError(
                f"number of projections must be {ALLOWED_VIEWS[0]}..{ALLOWED_VIEWS[1]}, got {n}")
        if not CLINICAL_VIEWS[0] <= n <= CLINICAL_VIEWS[1]:
            warnings.warn(
                f"{n} projections is outside the clinical range {CLINICAL_VIEWS[0]}-{CLINICAL_VIEWS[1]}",
                VolumedrWarning, stacklevel=3)
        a = float(self.total_angle_deg)
        if not (np.isfinite(a) and 0.0 < a <= 90.0):
            raise GeometryError(f"total sweep angle must be > 0 and <= 90 degrees, got {self.total_angle_deg}")
        sid = float(self.source_to_image_mm)
        if not (np.isfinite(sid) and 200.0 <= sid <= 5000.0):
            raise GeometryError(f"source-to-image distance must be 200..5000 mm, got {self.source_to_image_mm}")
        p = float(self.pivot_height_mm)
        if not (np.isfinite(p) and 0.0 <= p < 0.8 * sid):
            raise GeometryError(
                f"pivot height must be >= 0 and below 80% of the source-to-image distance, got {p} mm")

    @property
    def angles_deg(self) -> np.ndarray:
        """Central-ray angle of each view, shape (n,), from -total/2 to +total/2."""
        half = self.total_angle_deg / 2.0
        return np.linspace(-half, half, self.n_projections)

    def geometry(self, detector: Detector) -> "AcquisitionGeometry":
        """The per-view source positions and detector centres over ``detector``."""
        th = np.deg2rad(self.angles_deg)
        sid, piv = float(self.source_to_image_mm), float(self.pivot_height_mm)
        n = len(th)
        along = np.zeros(n)
        det_along = np.zeros(n)
        if self.kind == "linear":
            along = (sid - piv) * np.tan(th)
            z = np.full(n, sid)
        elif self.kind == "arc":
            r = sid - piv
            along = r * np.sin(th)
            z = piv + r * np.cos(th)
        else:  # opposed
            along = (sid - piv) * np.tan(th)
            det_along = -piv * np.tan(th)
            z = np.full(n, sid)
        src = np.zeros((n, 3))
        det = np.zeros((n, 3))
        axis = 0 if self.direction == "x" else 1
        src[:, axis] = along
        src[:, 2] = z
        det[:, axis] = det_along
        return AcquisitionGeometry(detector=detector, source_positions_mm=src,
                                   detector_centres_mm=det, angles_deg=self.angles_deg.copy())


def _frozen_array(a, shape_tail, name) -> np.ndarray:
    arr = np.array(a, dtype=np.float64)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise GeometryError(f"{name} must have shape (n_views, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GeometryError(f"{name} contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class AcquisitionGeometry:
    """Per-view geometry of an acquisition: what the reconstruction needs.

    Attributes
    ----------
    detector : Detector
    source_positions_mm : ndarray, shape (n_views, 3)
        Focal-spot position of each view; every z must be > 0.
    detector_centres_mm : ndarray, shape (n_views, 3)
        Centre of the detector for each view; z must be 0.
    angles_deg : ndarray, shape (n_views,), optional
        Nominal central-ray angles (for display and DICOM); derived from the
        positions when not given.
    """

    detector: Detector
    source_positions_mm: np.ndarray
    detector_centres_mm: np.ndarray = None
    angles_deg: np.ndarray = field(default=None)

    def __post_init__(self):
        src = _frozen_array(self.source_positions_mm, (3,), "source_positions_mm")
        if len(src) < 1:
            raise GeometryError("geometry needs at least one view")
        if np.any(src[:, 2] <= 0):
            raise GeometryError("every source position must be above the detector (z > 0)")
        det = self.detector_centres_mm
        det = np.zeros_like(src) if det is None else _frozen_array(det, (3,), "detector_centres_mm")
        if det.shape != src.shape:
            raise GeometryError(
                f"detector_centres_mm has {len(det)} views but source_positions_mm has {len(src)}")
        if np.any(np.abs(det[:, 2]) > 1e-6):
            raise GeometryError("detector centres must lie in the plane z = 0")
        det.setflags(write=False)
        object.__setattr__(self, "source_positions_mm", src)
        object.__setattr__(self, "detector_centres_mm", det)
        if self.angles_deg is None:
            d = src[:, :2] - det[:, :2]
            ang = np.rad2deg(np.arctan2(np.linalg.norm(d, axis=1), src[:, 2]))
            axis = self.sweep_axis_xy
            ang = ang * np.sign(d @ axis + 1e-300)
        else:
            ang = np.array(self.angles_deg, dtype=np.float64).reshape(-1)
            if ang.shape != (len(src),):
                raise GeometryError("angles_deg must have one value per view")
        ang.setflags(write=False)
        object.__setattr__(self, "angles_deg", ang)

    @property
    def n_views(self) -> int:
        return len(self.source_positions_mm)

    @property
    def sweep_axis_xy(self) -> np.ndarray:
        """Unit vector (x, y) of the shadow motion across views.

        The principal direction of the source position relative to the
        detector centre, so that linear, arc and opposed sweeps along any
        in-plane direction are handled alike.  (1, 0) if there is no motion.
        """
        d = self.source_positions_mm[:, :2] - self.detector_centres_mm[:, :2]
        d = d - d.mean(axis=0)
        if len(d) < 2 or np.allclose(d, 0.0):
            return np.array([1.0, 0.0])
        _, _, vt = np.linalg.svd(d, full_matrices=False)
        v = vt[0]
        if abs(v[0]) >= abs(v[1]):
            v = v * np.sign(v[0])
        else:
            v = v * np.sign(v[1])
        return v / np.linalg.norm(v)

    @property
    def total_angle_deg(self) -> float:
        return float(self.angles_deg.max() - self.angles_deg.min())

    def pixel_centres_mm(self, view: int) -> tuple[np.ndarray, np.ndarray]:
        """(x of each column, y of each row) of ``view``'s pixel centres, in mm."""
        dc = self.detector_centres_mm[view]
        return self.detector.col_offsets_mm() + dc[0], self.detector.row_offsets_mm() + dc[1]

    def subset(self, views) -> "AcquisitionGeometry":
        views = np.asarray(views)
        return AcquisitionGeometry(self.detector, self.source_positions_mm[views],
                                   self.detector_centres_mm[views], self.angles_deg[views])


def require_sweep(geometry: AcquisitionGeometry) -> None:
    """Refuse an acquisition without a sweep: slices need views from more than one source position
    (relative to the detector); one position carries no depth information."""
    rel = geometry.source_positions_mm - geometry.detector_centres_mm
    if geometry.n_views < 2:
        raise GeometryError(f"{geometry.n_views} view: tomosynthesis needs a sweep of several views "
                            "(25-60 in clinical practice)")
    if float(np.ptp(rel, axis=0).max()) < 1e-3:
        raise GeometryError(f"all {geometry.n_views} views come from the same source position: there is no sweep, "
                            "so no depth information to reconstruct slices from")


def plain_film_geometry(detector: Detector, source_to_image_mm: float = 1800.0) -> AcquisitionGeometry:
    """A single view at 0 degrees: the conventional radiograph."""
    sid = float(source_to_image_mm)
    if not (np.isfinite(sid) and 200.0 <= sid <= 5000.0):
        raise GeometryError(f"source-to-image distance must be 200..5000 mm, got {source_to_image_mm}")
    return AcquisitionGeometry(detector, np.array([[0.0, 0.0, sid]]), np.zeros((1, 3)), np.zeros(1))
