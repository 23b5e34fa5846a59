"""The CT reference volume: the phantom voxelised to HU, with CT-like noise."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..phantoms.case import Case
from ..phantoms.materials import mu_table
from ..phantoms.primitives import pack
from ..study import CTReference
from ..sysinfo import check_fits
from . import _kernels as K

SUPERSAMPLE = 2


def ct_reference(case: Case, *, voxel_mm: float = 2.0, noise_hu: float = 10.0, energy_kev: float = 60.0,
                 rng: np.random.Generator | None = None, margin_mm: float = 6.0) -> CTReference:
    """Voxelise ``case`` at ``voxel_mm`` and convert to Hounsfield units.

    HU = 1000 (mu - mu_water) / mu_water at ``energy_kev`` (the effective
    energy of a 120 kV CT beam); each voxel averages 2 x 2 x 2 sub-samples
    (partial volume); white Gaussian noise of ``noise_hu``, slightly
    correlated in-plane as in filtered-backprojection CT.
    """
    rng = rng if rng is not None else np.random.default_rng()
    packed = pack(list(case.primitives))
    b = case.bounds_mm()
    lo = b[0] - margin_mm
    hi = b[1] + margin_mm
    lo[2] = max(lo[2], 0.0)
    n = np.maximum(1, np.ceil((hi - lo) / voxel_mm).astype(int))  # (x, y, z)
    nx, ny, nz = (int(v) for v in n)
    check_fits(nx * ny * nz * 4 * 3, f"a CT reference of {nx} x {ny} x {nz} voxels at {voxel_mm} mm")
    names = list(packed.material_names) + ["water"]
    mu = mu_table(names, [energy_kev])[:, 0]
    mu_w = mu[-1]
    hu_of_material = 1000.0 * (mu[:-1] - mu_w) / mu_w
    hu_by_label = np.append(hu_of_material[packed.material_index], -1000.0).astype(np.float32)  # index -1 -> air
    sub = voxel_mm / SUPERSAMPLE
    origin_sub = lo + sub / 2.0
    hu = np.empty((nz, ny, nx), np.float32)
    chunk = 8
    for z0 in range(0, nz, chunk):
        z1 = min(nz, z0 + chunk)
        shape = np.array([(z1 - z0) * SUPERSAMPLE, ny * SUPERSAMPLE, nx * SUPERSAMPLE], np.int64)
        labels = np.full(tuple(shape), -1, np.int32)
        org = origin_sub.copy()
        org[2] += z0 * voxel_mm
        K.label_volume(packed.kinds, packed.world_to_unit, packed.centres_mm, packed.bounds_mm,
                       org, np.array([sub, sub, sub]), shape, labels)
        v = hu_by_label[labels]
        hu[z0:z1] = v.reshape(z1 - z0, SUPERSAMPLE, ny, SUPERSAMPLE, nx, SUPERSAMPLE).mean(axis=(1, 3, 5))
    if noise_hu > 0:
        noise = rng.standard_normal(hu.shape, dtype=np.float32)
        noise = ndimage.gaussian_filter(noise, sigma=(0, 0.6, 0.6))
        noise *= noise_hu / max(float(noise.std()), 1e-12)
        body = hu > -950
        hu += noise * body
    origin = lo + voxel_mm / 2.0
    return CTReference(hu=hu, spacing_mm=(float(voxel_mm),) * 3,
                       origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])))

