"""Generate resources/spectra.npz from spekpy (run once; the output is committed).

spekpy (MIT) is a large dependency that pulls in matplotlib, so volumedr ships
its tables instead of requiring it at run time.  Re-run with:

    python -m venv /tmp/spek && /tmp/spek/bin/pip install spekpy numpy
    /tmp/spek/bin/python tools/make_spectra.py resources/spectra.npz

Table: for tube voltages 40..150 kVp (1 kV steps), a tungsten anode at 12 deg,
and each filtration option, the photon fluence per keV at 1 m per mAs
(photons / cm^2 / mAs / keV) on 1-keV bins, and the air kerma at 1 m per mAs
(uGy / mAs).
"""
import sys

import numpy as np
import spekpy as sp

KVPS = np.arange(40, 151, 1)
FILTERS = {
    "2.5Al": [("Al", 2.5)],
    "2.5Al+0.1Cu": [("Al", 2.5), ("Cu", 0.1)],
    "2.5Al+0.2Cu": [("Al", 2.5), ("Cu", 0.2)],
}
ANODE_ANGLE_DEG = 12.0
ENERGIES = np.arange(1.0, 151.0, 1.0)  # bin centres, keV


def main(out):
    fluence = np.zeros((len(FILTERS), len(KVPS), len(ENERGIES)), np.float64)
    kerma = np.zeros((len(FILTERS), len(KVPS)), np.float64)
    hvl = np.zeros((len(FILTERS), len(KVPS)), np.float64)
    for fi, filt in enumerate(FILTERS.values()):
        for ki, kvp in enumerate(KVPS):
            s = sp.Spek(kvp=float(kvp), th=ANODE_ANGLE_DEG, dk=1.0, z=100.0)
            for mat, mm in filt:
                s.filter(mat, mm)
            k, phi = s.get_spectrum()
            idx = np.round(k - 1.0).astype(int)
            ok = (idx >= 0) & (idx < len(ENERGIES))
            fluence[fi, ki, idx[ok]] = phi[ok]
            kerma[fi, ki] = s.get_kerma()
            hvl[fi, ki] = s.get_hvl1()
    np.savez_compressed(
        out,
        kvp=KVPS.astype(np.float64),
        energies_kev=ENERGIES,
        filters=np.array(list(FILTERS)),
        fluence_per_cm2_per_mas_per_kev_at_1m=fluence.astype(np.float32),
        air_kerma_ugy_per_mas_at_1m=kerma,
        hvl_mm_al=hvl,
        anode_angle_deg=ANODE_ANGLE_DEG,
        spekpy_version=sp.__version__ if hasattr(sp, "__version__") else "2.x",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/spectra.npz")
