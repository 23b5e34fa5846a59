"""X-ray tube spectra from tables generated with spekpy (tools/make_spectra.py)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..resources import resource_path


@functools.lru_cache(maxsize=1)
def _table():
    with np.load(resource_path("spectra.npz")) as d:
        return {k: d[k] for k in d.files}


def filtrations() -> tuple[str, ...]:
    return tuple(str(f) for f in _table()["filters"])


@dataclass(frozen=True)
class Spectrum:
    """A tungsten-anode tube spectrum at 1 m, per mAs.

    Attributes
    ----------
    kvp : float
    filtration : str
        One of :func:`filtrations`, e.g. ``"2.5Al+0.1Cu"``.
    energies_kev : ndarray, shape (n_E,)
    fluence_per_mm2_per_mas : ndarray, shape (n_E,)
        Photons per mm^2 per mAs at 1 m in each energy bin.
    air_kerma_ugy_per_mas_at_1m : float
    hvl_mm_al : float
    """

    kvp: float
    filtration: str
    energies_kev: np.ndarray
    fluence_per_mm2_per_mas: np.ndarray
    air_kerma_ugy_per_mas_at_1m: float
    hvl_mm_al: float

    @classmethod
    def from_table(cls, kvp: float, filtration: str = "2.5Al+0.1Cu") -> "Spectrum":
        t = _table()
        kv = t["kvp"]
        kvp = float(kvp)
        if not (np.isfinite(kvp) and kv[0] <= kvp <= kv[-1]):
            raise ParameterError(f"tube voltage must be {kv[0]:.0f}..{kv[-1]:.0f} kVp, got {kvp}")
        names = [str(f) for f in t["filters"]]
        if filtration not in names:
            raise ParameterError(f"filtration must be one of {', '.join(names)}; got {filtration!r}")
        fi = names.index(filtration)
        # linear interpolation between tabulated kVp (1 kV steps)
        i = int(min(np.searchsorted(kv, kvp, side="right") - 1, len(kv) - 2))
        w = (kvp - kv[i]) / (kv[i + 1] - kv[i])
        flu = (1 - w) * t["fluence_per_cm2_per_mas_per_kev_at_1m"][fi, i] + w * t["fluence_per_cm2_per_mas_per_kev_at_1m"][fi, i + 1]
        flu = flu.astype(np.float64) / 100.0  # per cm^2 -> per mm^2 (1 keV bins)
        flu[t["energies_kev"] > kvp] = 0.0
        kerma = (1 - w) * t["air_kerma_ugy_per_mas_at_1m"][fi, i] + w * t["air_kerma_ugy_per_mas_at_1m"][fi, i + 1]
        hvl = (1 - w) * t["hvl_mm_al"][fi, i] + w * t["hvl_mm_al"][fi, i + 1]
        return cls(kvp, filtration, t["energies_kev"].astype(np.float64), flu, float(kerma), float(hvl))

    @property
    def mean_energy_kev(self) -> float:
        return float(np.sum(self.energies_kev * self.fluence_per_mm2_per_mas) / np.sum(self.fluence_per_mm2_per_mas))

    def binned(self, width_kev: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
        """Coarser energy bins: (fluence-weighted mean energy, summed fluence) of non-empty bins."""
        if not (width_kev >= 1.0):
            raise ParameterError(f"energy bin width must be >= 1 keV, got {width_kev}")
        e, f = self.energies_kev, self.fluence_per_mm2_per_mas
        edges = np.arange(0.0, e[-1] + width_kev + 1, width_kev)
        idx = np.digitize(e, edges) - 1
        fs = np.bincount(idx, weights=f, minlength=len(edges))
        es = np.bincount(idx, weights=f * e, minlength=len(edges))
        keep = fs > fs.sum() * 1e-6
        return es[keep] / fs[keep], fs[keep]
