"""Materials and their energy-dependent linear attenuation, from xraylib.

Compositions and densities live in ``resources/materials.toml``; attenuation
is computed by xraylib (total cross section incl. coherent scattering), never
typed in by hand.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CaseError
from ..resources import resource_path


@dataclass(frozen=True)
class Material:
    """A material: name, density and composition as element mass fractions."""

    name: str
    density_g_cm3: float
    elements: tuple[int, ...]
    mass_fractions: tuple[float, ...]
    description: str = ""

    def mass_attenuation_cm2_g(self, energies_kev) -> np.ndarray:
        """Total mass attenuation coefficient (cm^2/g) at each energy."""
        import xraylib

        e = np.atleast_1d(np.asarray(energies_kev, dtype=np.float64))
        out = np.zeros_like(e)
        for z, w in zip(self.elements, self.mass_fractions):
            out += w * np.array([xraylib.CS_Total(int(z), float(ei)) for ei in e])
        return out

    def mu_per_mm(self, energies_kev) -> np.ndarray:
        """Linear attenuation coefficient (1/mm) at each energy."""
        return self.mass_attenuation_cm2_g(energies_kev) * self.density_g_cm3 / 10.0


def _composition(name: str, spec: dict, where: str) -> tuple[tuple[int, ...], tuple[float, ...], float | None]:
    import xraylib

    kinds = [k for k in ("nist", "formula", "elements", "mix") if k in spec]
    if len(kinds) != 1:
        raise CaseError(f"{where}: material {name!r} needs exactly one of nist, formula, elements, mix")
    kind = kinds[0]
    fractions: dict[int, float] = {}
    default_density = None
    try:
        if kind == "nist":
            d = xraylib.GetCompoundDataNISTByName(spec["nist"])
            default_density = d["density"]
            for z, w in zip(d["Elements"], d["massFractions"]):
                fractions[z] = fractions.get(z, 0.0) + w
        elif kind == "formula":
            d = xraylib.CompoundParser(spec["formula"])
            for z, w in zip(d["Elements"], d["massFractions"]):
                fractions[z] = fractions.get(z, 0.0) + w
        elif kind == "elements":
            for sym, w in spec["elements"].items():
                z = xraylib.SymbolToAtomicNumber(sym)
                fractions[z] = fractions.get(z, 0.0) + float(w)
        else:
            for nist, wm in spec["mix"].items():
                d = xraylib.GetCompoundDataNISTByName(nist)
                for z, w in zip(d["Elements"], d["massFractions"]):
                    fractions[z] = fractions.get(z, 0.0) + float(wm) * w
    except (ValueError, KeyError) as exc:
        raise CaseError(f"{where}: material {name!r}: {exc}") from None
    total = sum(fractions.values())
    if not np.isclose(total, 1.0, atol=2e-3):
        raise CaseError(f"{where}: material {name!r} mass fractions sum to {total:.4f}, not 1")
    zs = tuple(sorted(fractions))
    return zs, tuple(fractions[z] / total for z in zs), default_density


def load_materials(path: Path | str | None = None) -> dict[str, Material]:
    """Read a materials file (default: the bundled ``resources/materials.toml``)."""
    path = Path(path) if path is not None else resource_path("materials.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CaseError(f"{path}: cannot read materials: {exc}") from None
    out = {}
    for name, spec in data.items():
        zs, ws, dens0 = _composition(name, spec, str(path))
        dens = float(spec.get("density_g_cm3", dens0 if dens0 is not None else np.nan))
        if not (np.isfinite(dens) and dens > 0):
            raise CaseError(f"{path}: material {name!r} needs a positive density_g_cm3")
        out[name] = Material(name, dens, zs, ws, spec.get("description", ""))
    return out


@functools.lru_cache(maxsize=1)
def bundled_materials() -> dict[str, Material]:
    return load_materials()


def get_material(name: str) -> Material:
    mats = bundled_materials()
    if name not in mats:
        raise CaseError(f"unknown material {name!r}; known: {', '.join(sorted(mats))}")
    return mats[name]


@functools.lru_cache(maxsize=64)
def _mu_table_cached(names: tuple[str, ...], energies: tuple[float, ...]) -> np.ndarray:
    e = np.array(energies)
    tab = np.stack([get_material(n).mu_per_mm(e) for n in names])
    tab.setflags(write=False)
    return tab


def mu_table(names, energies_kev) -> np.ndarray:
    """Linear attenuation (1/mm), shape (len(names), len(energies))."""
    return _mu_table_cached(tuple(names), tuple(float(e) for e in np.atleast_1d(energies_kev)))
