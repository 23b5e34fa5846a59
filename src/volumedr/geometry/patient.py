"""Where the patient lies in the volumedr frame, and the DICOM patient frame (LPS).

A case states which patient direction each volumedr axis points to, as three
letters for +x, +y, +z: ``"LFP"`` (the default, a PA exposure: +x towards the
patient's left, +y towards the feet, +z from the detector towards the
patient's back), ``"RFA"`` (AP, supine on the table), ``"PFR"`` (left lateral: the
left side on the detector) and ``"AFL"`` (right lateral).  The letters are L/R (left/right), A/P (anterior/posterior),
H/F (head/feet); the three must form a right-handed frame.

DICOM's patient coordinate system is LPS: +x to the patient's left, +y
posterior, +z towards the head.  :class:`PatientFrame` maps volumedr
coordinates (mm, z = height above the detector) to LPS and back, and gives
the Image Orientation (Patient) of a slice parallel to the detector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GeometryError

LPS_VECTORS = {
    "L": (1.0, 0.0, 0.0), "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0), "A": (0.0, -1.0, 0.0),
    "H": (0.0, 0.0, 1.0), "F": (0.0, 0.0, -1.0),
}
OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}
# (the laterals were listed as AFR/PFL, which are left-handed and so could never be built)
VIEW_POSITIONS = {"LFP": "PA", "RFA": "AP", "PFR": "LL", "AFL": "RL"}


@dataclass(frozen=True)
class PatientFrame:
    """The patient directions of volumedr's +x, +y, +z (e.g. ``"LFP"``)."""

    axes: str = "LFP"

    def __post_init__(self):
        a = str(self.axes).upper()
        if len(a) != 3 or any(c not in LPS_VECTORS for c in a):
            raise GeometryError(f"patient_axes must be three letters from L R A P H F, got {self.axes!r}")
        m = np.array([LPS_VECTORS[c] for c in a]).T
        if abs(np.linalg.det(m) - 1.0) > 1e-9:
            raise GeometryError(f"patient_axes {self.axes!r} is not a right-handed frame "
                                "(each of L/R, A/P, H/F once; e.g. LFP for PA, RFA for AP)")
        object.__setattr__(self, "axes", a)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 rotation: LPS = matrix @ (x, y, z) + offset."""
        return np.array([LPS_VECTORS[c] for c in self.axes]).T

    def to_lps(self, xyz_mm) -> np.ndarray:
        """volumedr (x, y, z) -> DICOM LPS, mm (detector centre at the origin)."""
        return np.asarray(xyz_mm, float) @ self.matrix.T

    def from_lps(self, lps_mm) -> np.ndarray:
        return np.asarray(lps_mm, float) @ self.matrix

    def image_orientation(self) -> list[float]:
        """Image Orientation (Patient) of a slice: row direction (+x), column direction (+y)."""
        m = self.matrix
        return [float(v) for v in np.concatenate([m[:, 0], m[:, 1]])]

    def patient_orientation(self) -> list[str]:
        """Patient Orientation (0020,0020) of a detector-parallel image: [row dir, column dir]."""
        return [self.axes[0], self.axes[1]]

    def display_sides(self) -> tuple[bool, str, str]:
        """How a detector-parallel image is shown by radiological convention: (mirror +x, the patient side
        on the viewer's left, the side on the viewer's right).  Frontal views put the patient's right on
        the viewer's left, PA and AP alike: a PA image (+x = left) is shown as stored, an AP image (+x =
        right) mirrored.  A lateral (+x = anterior or posterior) is shown as stored, its sides named."""
        c = self.axes[0]
        if c in "LR":
            return c == "R", "R", "L"
        return False, OPPOSITE[c], c

    @property
    def view_position(self) -> str:
        """DICOM View Position (PA, AP, LL, RL) when the frame is a standard one, else ''."""
        return VIEW_POSITIONS.get(self.axes, "")

    @classmethod
    def from_orientation(cls, iop) -> "PatientFrame":
        """The frame whose x/y match an Image Orientation (Patient); z completes it right-handed."""
        iop = np.asarray(iop, float).reshape(2, 3)
        letters = []
        for v in iop:
            k = int(np.argmax(np.abs(v)))
            if abs(abs(v[k]) - 1.0) > 1e-3:
                raise GeometryError(f"image orientation {list(np.round(iop.ravel(), 4))} is not aligned with the "
                                    "patient axes (oblique or tilted); volumedr needs slices parallel to the detector")
            letters.append([["R", "L"], ["A", "P"], ["F", "H"]][k][int(v[k] > 0)])
        z = np.cross(LPS_VECTORS[letters[0]], LPS_VECTORS[letters[1]])
        k = int(np.argmax(np.abs(z)))
        letters.append([["R", "L"], ["A", "P"], ["F", "H"]][k][int(z[k] > 0)])
        return cls("".join(letters))
