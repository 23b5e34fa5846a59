"""Reconstruction settings (frozen, validated, units in names)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..study import RECONSTRUCTION_METHODS as METHODS

MAX_SLICES = 4000


@dataclass(frozen=True)
class ReconSettings:
    """What the technologist chooses, plus the FBP filter parameters.

    Parameters
    ----------
    method : "fbp" or "saa"
    spacing_mm : float
        Distance between slice centres (>= 0.1 mm).
    thickness_mm : float
        Effective slice thickness; a thickness above the spacing averages
        ``ceil(thickness / spacing)`` thin planes evenly spread over the slab.
    z_min_mm, z_max_mm : float or None
        Height range of slice centres above the detector; None = cover the object.
    dc_fraction : float
        FBP: weight of the constant (low-frequency) term against the ramp;
        H(f) = (dc + (1 - dc) |f| / f_N) / dc * apodisation * thickness filter,
        so H(0) = 1 and large structures keep their shift-and-add grey level.
    apodisation_cutoff : float
        FBP: the Hann apodisation window reaches zero at this fraction of the
        Nyquist frequency (1.0 = Nyquist).
    thickness_filter : bool
        FBP: apply the slice-thickness (Hann) filter along the sweep direction
        with cutoff 1 / (thickness tan(sweep/2)).
    """

    method: str = "fbp"
    spacing_mm: float = 1.0
    thickness_mm: float = 1.0
    z_min_mm: float | None = None
    z_max_mm: float | None = None
    dc_fraction: float = 0.1
    apodisation_cutoff: float = 1.0
    thickness_filter: bool = True

    def __post_init__(self):
        if self.method not in METHODS:
            raise ParameterError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        sp = float(self.spacing_mm)
        if not (np.isfinite(sp) and sp >= 0.1):
            raise ParameterError(f"slice spacing must be at least 0.1 mm, got {self.spacing_mm}")
        th = float(self.thickness_mm)
        if not (np.isfinite(th) and th >= 0.1):
            raise ParameterError(f"slice thickness must be at least 0.1 mm, got {self.thickness_mm}")
        if th > 200:
            raise ParameterError(f"slice thickness must be at most 200 mm, got {th}")
        for name in ("z_min_mm", "z_max_mm"):
            v = getattr(self, name)
            if v is not None and not np.isfinite(float(v)):
                raise ParameterError(f"{name} must be a finite height in mm, got {v}")
        if self.z_min_mm is not None and self.z_max_mm is not None and self.z_max_mm < self.z_min_mm:
            raise ParameterError(f"height range is empty: {self.z_min_mm} to {self.z_max_mm} mm")
        if not (0.0 < self.dc_fraction <= 1.0):
            raise ParameterError(f"dc_fraction must be in (0, 1], got {self.dc_fraction}")
        if not (0.05 <= self.apodisation_cutoff <= 2.0):
            raise ParameterError(f"apodisation_cutoff must be 0.05..2, got {self.apodisation_cutoff}")

    def heights_mm(self, default_range: tuple[float, float]) -> np.ndarray:
        lo = self.z_min_mm if self.z_min_mm is not None else default_range[0]
        hi = self.z_max_mm if self.z_max_mm is not None else default_range[1]
        if hi < lo:
            raise ParameterError(f"height range is empty: {lo} to {hi} mm")
        n = int(np.floor((hi - lo) / self.spacing_mm + 1e-9)) + 1
        if n > MAX_SLICES:
            raise ParameterError(f"{n} slices requested (range {lo:g}..{hi:g} mm at {self.spacing_mm:g} mm); "
                                 f"at most {MAX_SLICES}")
        return lo + self.spacing_mm * np.arange(n)

    @classmethod
    def from_case(cls, defaults: dict) -> "ReconSettings":
        """The settings a case's ``[reconstruction]`` table asks for (method, range_mm, spacing_mm, thickness_mm)."""
        d = dict(defaults or {})
        try:
            spacing = float(d.get("spacing_mm", 1.0))
            rng = d.get("range_mm")
            lo, hi = (float(rng[0]), float(rng[1])) if rng is not None else (None, None)
            return cls(method=str(d.get("method", "fbp")), spacing_mm=spacing,
                       thickness_mm=float(d.get("thickness_mm", spacing)), z_min_mm=lo, z_max_mm=hi)
        except (TypeError, ValueError, IndexError) as exc:
            raise ParameterError(f"reconstruction defaults {d!r}: {exc}") from None

    @property
    def n_subplanes(self) -> int:
        return max(1, int(np.ceil(self.thickness_mm / self.spacing_mm - 1e-9)))


def parse_range(text: str) -> tuple[float, float]:
    """'ZMIN:ZMAX' -> (zmin, zmax) in mm."""
    try:
        a, b = text.split(":")
        lo, hi = float(a), float(b)
    except ValueError:
        raise ParameterError(f"height range must look like ZMIN:ZMAX in mm (e.g. 20:240), got {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ParameterError(f"height range must be finite, got {text!r}")
    if hi < lo:
        raise ParameterError(f"height range {text!r} is empty (ZMAX < ZMIN)")
    return lo, hi
