"""Dose readout: incident and entrance air kerma, DAP and effective dose.

Method (docs/physics.md): air kerma at 1 m per mAs comes from the spekpy
spectrum table; it is scaled by the inverse square law to the skin entrance
(source to the top of the patient along the central ray) and multiplied by a
backscatter factor for the entrance surface air kerma (ESAK).  The kerma-area
product (DAP) is the free-in-air kerma at the detector plane times the
collimated field area there (DAP does not change along the beam).  Effective
dose = DAP x a region-specific conversion coefficient (mSv per Gy cm^2) given
by the case; the chest value 0.26 is from Bath et al., Radiat Prot Dosimetry
2010;139:153-158.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..geometry import AcquisitionGeometry


@dataclass(frozen=True)
class DoseReport:
    n_views: int
    mas_per_view: float
    incident_air_kerma_per_view_ugy: float
    entrance_surface_air_kerma_per_view_ugy: float
    entrance_surface_air_kerma_total_ugy: float
    kerma_area_product_gy_cm2: float
    effective_dose_msv: float

    def as_dict(self) -> dict:
        return asdict(self)


def dose_report(geometry: AcquisitionGeometry, *, mas_per_view: float, kerma_ugy_per_mas_at_1m: float,
                skin_height_mm: float, field_mm: tuple[float, float], backscatter_factor: float,
                coeff_msv_per_gy_cm2: float) -> DoseReport:
    src = geometry.source_positions_mm
    ang = np.deg2rad(geometry.angles_deg)
    d_skin = (src[:, 2] - skin_height_mm) / np.maximum(np.cos(ang), 0.2)
    incident = kerma_ugy_per_mas_at_1m * mas_per_view * (1000.0 / d_skin) ** 2
    k_det = kerma_ugy_per_mas_at_1m * mas_per_view * (1000.0 / src[:, 2]) ** 2  # uGy at detector plane
    area_cm2 = field_mm[0] * field_mm[1] / 100.0
    dap = float(np.sum(k_det) * 1e-6 * area_cm2)
    return DoseReport(
        n_views=len(src), mas_per_view=float(mas_per_view),
        incident_air_kerma_per_view_ugy=float(incident.mean()),
        entrance_surface_air_kerma_per_view_ugy=float(incident.mean() * backscatter_factor),
        entrance_surface_air_kerma_total_ugy=float(incident.sum() * backscatter_factor),
        kerma_area_product_gy_cm2=dap, effective_dose_msv=dap * coeff_msv_per_gy_cm2)
