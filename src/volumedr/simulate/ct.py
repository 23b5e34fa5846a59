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
    _add_texture(case, hu, lo + voxel_mm / 2.0, voxel_mm, energy_kev)
    if noise_hu > 0:
        noise = rng.standard_normal(hu.shape, dtype=np.float32)
        noise = ndimage.gaussian_filter(noise, sigma=(0, 0.6, 0.6))
        noise *= noise_hu / max(float(noise.std()), 1e-12)
        body = hu > -950
        hu += noise * body
    origin = lo + voxel_mm / 2.0
    return CTReference(hu=hu, spacing_mm=(float(voxel_mm),) * 3,
                       origin_mm=(float(origin[0]), float(origin[1]), float(origin[2])))



def _add_texture(case: Case, hu: np.ndarray, origin_xyz: np.ndarray, voxel_mm: float, energy_kev: float) -> None:
    """Add a case's bone texture (phantoms/texture.py), averaged over each CT voxel, to ``hu`` in place."""
    from ..phantoms.texture import BONE, MARROW, case_texture

    tex = case_texture(case)
    if tex is None:
        return
    mu = mu_table([MARROW, BONE, "water"], [energy_kev])[:, 0]
    per_fraction = 1000.0 * (mu[1] - mu[0]) / mu[2]  # HU of a unit of bone fraction traded for marrow
    h = tex.spacing_mm[0]
    size = max(1, int(round(voxel_mm / h)))
    d = ndimage.uniform_filter(tex.delta, size=size, mode="constant") if size > 1 else tex.delta
    nz, ny, nx = hu.shape
    # CT voxel centres in the texture's voxel coordinates, only where the texture is
    axes = []
    for i, n in zip(range(3), (nx, ny, nz)):
        c = (origin_xyz[i] + np.arange(n) * voxel_mm - tex.origin_mm[i]) / h
        axes.append(c)
    ok = [np.nonzero((c >= 0) & (c <= tex.delta.shape[2 - i] - 1))[0] for i, c in enumerate(axes)]
    if any(len(k) == 0 for k in ok):
        return
    sl = tuple(slice(int(k[0]), int(k[-1]) + 1) for k in ok[::-1])  # (z, y, x)
    zz, yy, xx = np.meshgrid(axes[2][sl[0]], axes[1][sl[1]], axes[0][sl[2]], indexing="ij")
    hu[sl] += per_fraction * ndimage.map_coordinates(d, [zz, yy, xx], order=1, mode="constant")
