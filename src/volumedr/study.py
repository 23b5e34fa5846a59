"""The in-memory study: what the study file holds (see docs/file-format.md)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import AcquisitionGeometry

RECONSTRUCTION_METHODS = ("fbp", "saa", "sart")


@dataclass
class Reconstruction:
    """Slices parallel to the detector.

    slices : ndarray, shape (n_slices, rows, cols), float32
    heights_mm : ndarray, shape (n_slices,)   height z of each slice above the detector
    pixel_spacing_mm : (row, col)             in-plane spacing at the slice (demagnified)
    origin_mm : (x, y)                        centre of pixel (0, 0)
    view_fraction : ndarray (n_slices, rows, cols) uint8, optional
        how much of the views see each pixel (255 = all; weighted as the backprojection weights them),
        so a viewer can mark the part of the field that fewer than half of the views see
    """

    slices: np.ndarray
    heights_mm: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    origin_mm: tuple[float, float]
    thickness_mm: float
    method: str
    parameters: dict = field(default_factory=dict)
    view_fraction: np.ndarray | None = None  # (n_slices, rows, cols) uint8: share of the views seeing each pixel, 255 = all

    def pixel_of(self, x_mm: float, y_mm: float) -> tuple[float, float]:
        """(row, col) of a point (fractional)."""
        return ((y_mm - self.origin_mm[1]) / self.pixel_spacing_mm[0],
                (x_mm - self.origin_mm[0]) / self.pixel_spacing_mm[1])

    def position_of(self, row: float, col: float) -> tuple[float, float]:
        """(x, y) in mm of a (row, col)."""
        return (self.origin_mm[0] + col * self.pixel_spacing_mm[1],
                self.origin_mm[1] + row * self.pixel_spacing_mm[0])

    def well_seen(self, index: int) -> np.ndarray | None:
        """Slice ``index``'s pixels that at least half of the views see (bool, rows x cols): the part of
        the field to trust and to measure; None without a usable view-fraction map."""
        vf = self.view_fraction
        if vf is None or self.slices is None or vf.shape != self.slices.shape:
            return None
        return vf[index] >= 128


@dataclass
class CTReference:
    """A CT-like volume in HU.

    hu : ndarray, shape (nz, ny, nx), float32
    spacing_mm : (z, y, x) voxel size
    origin_mm : (x, y, z) centre of voxel (0, 0, 0); z is height above the detector
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    def heights_mm(self) -> np.ndarray:
        return self.origin_mm[2] + np.arange(self.hu.shape[0]) * self.spacing_mm[0]


@dataclass
class Study:
    """One examination: projections + geometry, and what goes with them."""

    projections: np.ndarray
    geometry: AcquisitionGeometry
    dr: np.ndarray | None = None
    ct_reference: CTReference | None = None
    reconstruction: Reconstruction | None = None
    metadata: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    dropped: list = field(default_factory=list)  # broken optional items left out when the file was read
