"""Acquisition settings (frozen, validated, units in names)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError


def _positive(name, v, lo=0.0, hi=np.inf, inclusive_lo=False):
    v = float(v)
    ok = np.isfinite(v) and (v >= lo if inclusive_lo else v > lo) and v <= hi
    if not ok:
        bound = f">= {lo}" if inclusive_lo else f"> {lo}"
        raise ParameterError(f"{name} must be {bound}" + (f" and <= {hi}" if np.isfinite(hi) else "") + f", got {v}")


@dataclass(frozen=True)
class AcquisitionSettings:
    """Exposure and detector-physics settings of one simulated examination.

    ``sweep_mas`` is the total tube current-time product of the whole sweep,
    split evenly over the views; ``plain_film_mas`` is that of the single
    conventional radiograph.  Published chest practice (GE VolumeRAD): the
    sweep uses about 10 times the mAs of the PA film.
    """

    kvp: float = 120.0
    filtration: str = "2.5Al+0.1Cu"
    sweep_mas: float = 19.2
    plain_film_mas: float = 1.9
    energy_bin_kev: float = 4.0
    scatter_fraction: float = 0.0
    scatter_kernel_mm: float = 40.0
    grid: bool = True
    grid_primary_transmission: float = 0.72
    grid_scatter_transmission: float = 0.12
    backscatter_factor: float = 1.35
    ct_voxel_mm: float = 2.0
    ct_noise_hu: float = 10.0
    ct_effective_energy_kev: float = 60.0

    def __post_init__(self):
        _positive("kVp", self.kvp, 40.0, 150.0, inclusive_lo=True)
        _positive("sweep mAs", self.sweep_mas, 0.0, 2000.0)
        _positive("plain-film mAs", self.plain_film_mas, 0.0, 2000.0)
        _positive("energy bin width (keV)", self.energy_bin_kev, 1.0, 20.0, inclusive_lo=True)
        _positive("scatter fraction", self.scatter_fraction, 0.0, 20.0, inclusive_lo=True)
        _positive("scatter kernel (mm)", self.scatter_kernel_mm, 0.0, 500.0)
        _positive("grid primary transmission", self.grid_primary_transmission, 0.0, 1.0)
        _positive("grid scatter transmission", self.grid_scatter_transmission, 0.0, 1.0)
        _positive("backscatter factor", self.backscatter_factor, 1.0, 2.0, inclusive_lo=True)
        _positive("CT voxel size (mm)", self.ct_voxel_mm, 0.25, 20.0, inclusive_lo=True)
        _positive("CT noise (HU)", self.ct_noise_hu, 0.0, 500.0, inclusive_lo=True)
        _positive("CT effective energy (keV)", self.ct_effective_energy_kev, 20.0, 150.0, inclusive_lo=True)
        from .spectrum import filtrations

        if self.filtration not in filtrations():
            raise ParameterError(f"filtration must be one of {', '.join(filtrations())}; got {self.filtration!r}")

    def mas_per_view(self, n_views: int) -> float:
        return self.sweep_mas / n_views
