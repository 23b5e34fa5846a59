"""Acquisition geometry: detector, tube sweep and per-view positions.

Convention (every module and the study file use it): right-handed, mm.  The
detector's sensitive plane is z = 0; columns run along +x, rows along +y.
Pixel (r, c) of view i is centred at
``x = (c - (cols-1)/2) * pitch_col + dx_i``, ``y = (r - (rows-1)/2) * pitch_row + dy_i``
where ``(dx_i, dy_i, 0)`` is that view's detector centre.  The patient lies at
z > 0, every source has z > 0, and a reconstructed slice at height h is the
plane z = h.
"""
from .detector import Detector
from .sweep import SWEEP_KINDS, AcquisitionGeometry, Sweep, plain_film_geometry, require_sweep

__all__ = ["Detector", "Sweep", "AcquisitionGeometry", "SWEEP_KINDS", "plain_film_geometry", "require_sweep"]
