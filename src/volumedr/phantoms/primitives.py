"""Analytic primitives: ellipsoid, cylinder, box (and tube chains of them).

Every primitive is an affine image of a unit shape: unit sphere, unit cylinder
(x^2 + y^2 <= 1, |z| <= 1) or unit cube [-1, 1]^3.  A world point p maps to
unit space by ``M @ (p - centre)``.  Overlap rule (painter's order): where
primitives overlap, the one defined *later* wins, so a nodule listed after
the lung replaces lung.  Outside every primitive is air (vacuum for
attenuation: the flat field through air cancels it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CaseError

ELLIPSOID, CYLINDER, BOX = 0, 1, 2
KIND_NAMES = {ELLIPSOID: "ellipsoid", CYLINDER: "cylinder", BOX: "box"}


def rotation_matrix(rotation_deg) -> np.ndarray:
    """Rotation about x, then y, then z (extrinsic), degrees -> 3x3 local->world."""
    rx, ry, rz = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def frame_from_axis(axis) -> np.ndarray:
    """An orthonormal local->world frame whose third column is ``axis``.

    The first column is world x made perpendicular to the axis (world y when
    the axis is close to x), so an elliptic cylinder's ``radius_mm`` lies along
    x (or y) and ``radius_b_mm`` along the remaining direction.
    """
    a = np.asarray(axis, dtype=float)
    n = np.linalg.norm(a)
    if not np.isfinite(n) or n == 0:
        raise CaseError(f"cylinder axis must be a non-zero vector, got {list(axis)}")
    a = a / n
    ref = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = ref - (ref @ a) * a
    u /= np.linalg.norm(u)
    v = np.cross(a, u)
    return np.column_stack([u, v, a])


@dataclass(frozen=True, eq=False)
class Primitive:
    """One analytic solid of one material.

    Attributes
    ----------
    kind : int
        ELLIPSOID, CYLINDER or BOX.
    centre_mm : ndarray, shape (3,)
    half_sizes_mm : ndarray, shape (3,)
        Semi-axes (ellipsoid), (radius_a, radius_b, half_length) (cylinder) or
        half edge lengths (box), in the local frame.
    rotation : ndarray, shape (3, 3)
        Local -> world rotation.
    material : str
    label : str
    """

    kind: int
    centre_mm: np.ndarray
    half_sizes_mm: np.ndarray
    rotation: np.ndarray
    material: str
    label: str = ""

    def __post_init__(self):
        hs = np.asarray(self.half_sizes_mm, dtype=float)
        if hs.shape != (3,) or not np.all(np.isfinite(hs)) or np.any(hs <= 0):
            raise CaseError(f"{KIND_NAMES.get(self.kind, '?')} {self.label!r}: sizes must be positive, got {hs.tolist()}")
        c = np.asarray(self.centre_mm, dtype=float)
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise CaseError(f"{self.label!r}: centre must be 3 finite numbers")
        object.__setattr__(self, "half_sizes_mm", hs)
        object.__setattr__(self, "centre_mm", c)
        object.__setattr__(self, "rotation", np.asarray(self.rotation, dtype=float))

    @property
    def world_to_unit(self) -> np.ndarray:
        return (self.rotation / self.half_sizes_mm[None, :]).T

    def bounding_box_mm(self) -> np.ndarray:
        """Axis-aligned world bounds, shape (2, 3): [min, max]."""
        R, s = self.rotation, self.half_sizes_mm
        if self.kind == BOX:
            ext = np.abs(R) @ s
        elif self.kind == ELLIPSOID:
            ext = np.sqrt((R * s[None, :]) ** 2 @ np.ones(3))
        else:
            ext = np.sqrt((R[:, 0] * s[0]) ** 2 + (R[:, 1] * s[1]) ** 2) + np.abs(R[:, 2]) * s[2]
        return np.stack([self.centre_mm - ext, self.centre_mm + ext])

    def contains(self, points_mm) -> np.ndarray:
        """Boolean mask: which points (..., 3) lie inside."""
        q = (np.asarray(points_mm, dtype=float) - self.centre_mm) @ self.world_to_unit.T
        if self.kind == ELLIPSOID:
            return np.sum(q * q, axis=-1) <= 1.0
        if self.kind == CYLINDER:
            return (q[..., 0] ** 2 + q[..., 1] ** 2 <= 1.0) & (np.abs(q[..., 2]) <= 1.0)
        return np.all(np.abs(q) <= 1.0, axis=-1)

    @property
    def volume_mm3(self) -> float:
        a, b, c = self.half_sizes_mm
        return {ELLIPSOID: 4 / 3 * np.pi * a * b * c, CYLINDER: np.pi * a * b * 2 * c, BOX: 8 * a * b * c}[self.kind]


def ellipsoid(centre_mm, semi_axes_mm, material, rotation_deg=(0, 0, 0), label="") -> Primitive:
    return Primitive(ELLIPSOID, centre_mm, semi_axes_mm, rotation_matrix(rotation_deg), material, label)


def sphere(centre_mm, radius_mm, material, label="") -> Primitive:
    return ellipsoid(centre_mm, (radius_mm,) * 3, material, label=label)


def box(centre_mm, size_mm, material, rotation_deg=(0, 0, 0), label="") -> Primitive:
    return Primitive(BOX, centre_mm, np.asarray(size_mm, float) / 2.0, rotation_matrix(rotation_deg), material, label)


def cylinder(centre_mm, axis, radius_mm, length_mm, material, label="", radius_b_mm=None, roll_deg=0.0) -> Primitive:
    """A (possibly elliptic) cylinder of ``length_mm`` along ``axis`` through ``centre_mm``."""
    R = frame_from_axis(axis)
    if roll_deg:
        R = R @ rotation_matrix((0, 0, roll_deg))
    rb = radius_mm if radius_b_mm is None else radius_b_mm
    return Primitive(CYLINDER, centre_mm, (radius_mm, rb, length_mm / 2.0), R, material, label)


def cylinder_between(p0_mm, p1_mm, radius_mm, material, label="") -> Primitive:
    p0, p1 = np.asarray(p0_mm, float), np.asarray(p1_mm, float)
    length = np.linalg.norm(p1 - p0)
    if not length > 0:
        raise CaseError(f"cylinder {label!r}: end points coincide")
    return cylinder((p0 + p1) / 2, p1 - p0, radius_mm, length, material, label)


def tube(points_mm, radius_mm, material, label="") -> list[Primitive]:
    """A smooth tube along a polyline: cylinders joined by spheres (a capsule chain)."""
    pts = np.asarray(points_mm, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise CaseError(f"tube {label!r}: points_mm must be a list of at least two [x, y, z]")
    out = [sphere(pts[0], radius_mm, material, label)]
    for a, b in zip(pts[:-1], pts[1:]):
        out.append(cylinder_between(a, b, radius_mm, material, label))
        out.append(sphere(b, radius_mm, material, label))
    return out


@dataclass(frozen=True, eq=False)
class PackedPrimitives:
    """Primitives packed into arrays for the numba kernels."""

    kinds: np.ndarray  # (K,) int32
    world_to_unit: np.ndarray  # (K, 3, 3) float64
    centres_mm: np.ndarray  # (K, 3) float64
    material_index: np.ndarray  # (K,) int32
    bounds_mm: np.ndarray  # (K, 2, 3) float64
    material_names: tuple[str, ...]


def pack(primitives: list[Primitive]) -> PackedPrimitives:
    names: list[str] = []
    for p in primitives:
        if p.material not in names:
            names.append(p.material)
    k = len(primitives)
    return PackedPrimitives(
        kinds=np.array([p.kind for p in primitives], np.int32).reshape(k),
        world_to_unit=np.array([p.world_to_unit for p in primitives], np.float64).reshape(k, 3, 3),
        centres_mm=np.array([p.centre_mm for p in primitives], np.float64).reshape(k, 3),
        material_index=np.array([names.index(p.material) for p in primitives], np.int32).reshape(k),
        bounds_mm=np.array([p.bounding_box_mm() for p in primitives], np.float64).reshape(k, 2, 3),
        material_names=tuple(names),
    )
