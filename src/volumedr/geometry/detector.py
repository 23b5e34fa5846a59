"""The flat-panel detector."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GeometryError

MAX_DETECTOR_PIXELS = 8192


@dataclass(frozen=True)
class Detector:
    """A flat-panel detector in the plane z = 0.

    The default is a clinical 43 cm x 43 cm caesium-iodide panel: 2048 x 2048
    pixels at 0.21 mm.  Use :meth:`binned` for previews and tests.

    Parameters
    ----------
    rows, cols : int
        Pixel counts along +y (rows) and +x (columns).
    pitch_row_mm, pitch_col_mm : float
        Pixel pitch along y and along x, in mm.
    scintillator_blur_mm : float
        Standard deviation of the light spread in the scintillator, in mm.
    csi_thickness_mm : float
        Thickness of the CsI:Tl scintillator (sets the quantum efficiency).
    electronic_noise_quanta : float
        Standard deviation of the additive electronic noise, expressed in
        equivalent absorbed x-ray quanta per pixel (at the native pitch).
    """

    rows: int = 2048
    cols: int = 2048
    pitch_row_mm: float = 0.21
    pitch_col_mm: float = 0.21
    scintillator_blur_mm: float = 0.12
    csi_thickness_mm: float = 0.6
    electronic_noise_quanta: float = 3.0

    def __post_init__(self):
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise GeometryError(f"detector {name} must be an integer, got {v!r}")
            if not 1 <= v <= MAX_DETECTOR_PIXELS:
                raise GeometryError(f"detector {name} must be 1..{MAX_DETECTOR_PIXELS}, got {v}")
        for name in ("pitch_row_mm", "pitch_col_mm"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and 0.01 <= v <= 10.0):
                raise GeometryError(f"detector {name} must be 0.01..10 mm, got {v}")
        if not (np.isfinite(self.scintillator_blur_mm) and self.scintillator_blur_mm >= 0):
            raise GeometryError("detector scintillator_blur_mm must be >= 0")
        if not (np.isfinite(self.csi_thickness_mm) and self.csi_thickness_mm > 0):
            raise GeometryError("detector csi_thickness_mm must be > 0")
        if not (np.isfinite(self.electronic_noise_quanta) and self.electronic_noise_quanta >= 0):
            raise GeometryError("detector electronic_noise_quanta must be >= 0")

    @property
    def width_mm(self) -> float:
        return self.cols * self.pitch_col_mm

    @property
    def height_mm(self) -> float:
        return self.rows * self.pitch_row_mm

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def binned(self, factor: int) -> "Detector":
        """The same panel read out with ``factor x factor`` binning."""
        if not isinstance(factor, (int, np.integer)) or factor < 1:
            raise GeometryError(f"binning factor must be a positive integer, got {factor!r}")
        if factor > min(self.rows, self.cols):
            raise GeometryError(f"binning {factor} is larger than the detector ({self.rows} x {self.cols})")
        return Detector(
            rows=self.rows // factor,
            cols=self.cols // factor,
            pitch_row_mm=self.pitch_row_mm * factor,
            pitch_col_mm=self.pitch_col_mm * factor,
            scintillator_blur_mm=self.scintillator_blur_mm,
            csi_thickness_mm=self.csi_thickness_mm,
            # binned pixels sum the electronic noise of factor**2 native pixels
            electronic_noise_quanta=self.electronic_noise_quanta * factor,
        )

    def col_offsets_mm(self) -> np.ndarray:
        """x of each column centre relative to the detector centre, shape (cols,)."""
        return (np.arange(self.cols) - (self.cols - 1) / 2.0) * self.pitch_col_mm

    def row_offsets_mm(self) -> np.ndarray:
        """y of each row centre relative to the detector centre, shape (rows,)."""
        return (np.arange(self.rows) - (self.rows - 1) / 2.0) * self.pitch_row_mm
