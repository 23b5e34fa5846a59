"""Trabecular texture for analytic bones: the marrow of a bone is not a uniform paste.

An analytic bone (``tools/make_cases.py`` ``bone``) is a cortical shell around ``cancellous_bone``, a
uniform mix of cortical bone and soft tissue at 1.18 g/cm^3 (17.6 % bone by volume).  On a film that
reads like plastic.  A case's ``[texture]`` table replaces the uniform mix, inside the objects it names,
by a network of bone plates in marrow with the same composition on average:

* **The network** is a two-level-cut Gaussian random field (Berk, Phys Rev Lett 1987;58:2718; the
  standard model of bicontinuous porous media): band-limited Gaussian noise ``g`` whose spectrum is a
  shell around ``1 / spacing_mm`` (an ellipsoid with ``elongation_xyz``: plates that follow a bone's axis); bone where ``|g|`` is small, i.e. sheets around the zero level set,
  two per wavelength, connected like cancellous bone.  The sheets are thinner than a voxel, so each
  voxel holds its partial volume: a tent ``max(0, 1 - |g| / s)`` about two voxels wide, scaled so that
  the bone fraction inside the objects is the material's own (``bone_fraction``).
* **Along the rays** the texture is a signed voxel volume of path lengths (``texture_fractions``): a
  voxel with more bone than the mix adds cortical bone and removes as much soft tissue (marrow), one
  with less does the opposite, and the sum over the objects is zero, so the texture changes the
  bones' pattern and not their mean attenuation.  It is projected by the voxel projector
  (:class:`volumedr.simulate.voxel.VoxelLengths`) and added to the analytic path lengths; it lives only
  where a named object owns the space (painter's order), so a fracture gap painted over a bone stays a
  gap.
* **The CT pane** gets the same texture averaged over its voxels.

The field is seeded (``seed``): a case looks the same every time it is opened.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CaseError
from ..sysinfo import check_fits

MARROW = "soft_tissue"  # what the texture trades for bone (cancellous_bone is cortical bone in soft tissue)
BONE = "cortical_bone"


@dataclass(frozen=True)
class TrabecularTexture:
    """A case's ``[texture]`` table.

    objects : labels of the analytic objects whose material is textured (e.g. ``"scaphoid (marrow)"``)
    spacing_mm : the network's wavelength (two plates per wavelength: plates about spacing_mm / 2 apart)
    voxel_mm : the texture's voxel size
    bone_fraction : the bone volume fraction of the textured material (cancellous_bone: 0.176)
    elongation_xyz : how much longer the plates run along x, y, z (the principal trabeculae of a long
        bone's end follow its axis: a wrist's run along y)
    seed : the random field's seed
    """

    objects: tuple[str, ...]
    spacing_mm: float = 1.6
    voxel_mm: float = 0.3
    bone_fraction: float = 0.176
    elongation_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0

    def __post_init__(self):
        if not self.objects:
            raise CaseError("[texture] objects must name at least one [[object]] label")
        for name, v, lo, hi in (("spacing_mm", self.spacing_mm, 0.4, 10.0), ("voxel_mm", self.voxel_mm, 0.05, 2.0),
                                ("bone_fraction", self.bone_fraction, 0.01, 0.9)):
            if not (np.isfinite(v) and lo <= v <= hi):
                raise CaseError(f"[texture] {name} must be in [{lo}, {hi}], got {v!r}")
        if len(self.elongation_xyz) != 3 or not all(np.isfinite(e) and 0.2 <= e <= 5.0 for e in self.elongation_xyz):
            raise CaseError(f"[texture] elongation_xyz must be 3 numbers in [0.2, 5], got {self.elongation_xyz!r}")
        if self.spacing_mm < 2.5 * self.voxel_mm:
            raise CaseError(f"[texture] spacing_mm ({self.spacing_mm}) must be at least 2.5 voxels "
                            f"(voxel_mm {self.voxel_mm}): finer plates would alias")


def parse_texture(table: dict, where: str, labels: set[str]) -> TrabecularTexture:
    extra = set(table) - {"objects", "spacing_mm", "voxel_mm", "bone_fraction", "elongation_xyz", "seed"}
    if extra:
        raise CaseError(f"{where}: [texture] does not take {', '.join(sorted(extra))}")
    try:
        objects = tuple(str(o) for o in table.get("objects", ()))
        t = TrabecularTexture(objects=objects, **{k: float(table[k]) for k in ("spacing_mm", "voxel_mm", "bone_fraction")
                                                  if k in table}, seed=int(table.get("seed", 0)),
                              elongation_xyz=tuple(float(e) for e in table.get("elongation_xyz", (1.0, 1.0, 1.0))))
    except CaseError as exc:
        raise CaseError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise CaseError(f"{where}: [texture] {exc}") from None
    missing = [o for o in t.objects if o not in labels]
    if missing:
        raise CaseError(f"{where}: [texture] objects {missing} name no [[object]] label")
    return t


@dataclass(frozen=True, eq=False)
class TextureVolume:
    """The texture on its voxel grid: ``delta`` (nz, ny, nx) float32, the bone fraction less the mix's
    (signed; zero outside the textured objects), ``spacing_mm`` (z, y, x), ``origin_mm`` (x, y, z) of voxel 0."""

    delta: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]

    def fractions(self) -> np.ndarray:
        """(2, nz, ny, nx) float32 volume fractions of (MARROW, BONE) to add: (-delta, +delta)."""
        return np.ascontiguousarray(np.stack([-self.delta, self.delta]))

    def axis_mm(self, ax: str) -> np.ndarray:
        i = "xyz".index(ax)
        n = self.delta.shape[2 - i]
        return self.origin_mm[i] + np.arange(n) * self.spacing_mm[2 - i]


def level_cut_field(shape, voxel_mm: float, spacing_mm: float, rng: np.random.Generator,
                    elongation_xyz=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Unit-variance Gaussian noise band-limited to a shell around 1 / spacing_mm (relative width 0.3),
    stretched by ``elongation_xyz`` (the shell becomes an ellipsoid: features longer along those axes)."""
    white = rng.standard_normal(shape).astype(np.float32)
    f = np.fft.rfftn(white)
    k = [np.fft.fftfreq(n, voxel_mm) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1], voxel_mm)]
    ex, ey, ez = elongation_xyz
    kk = np.sqrt((k[0][:, None, None] * ez) ** 2 + (k[1][None, :, None] * ey) ** 2 + (k[2][None, None, :] * ex) ** 2)
    k0 = 1.0 / spacing_mm
    f *= np.exp(-0.5 * ((kk - k0) / (0.3 * k0)) ** 2).astype(np.float32)
    g = np.fft.irfftn(f, s=shape, axes=(0, 1, 2)).astype(np.float32)
    g /= max(float(g.std()), 1e-12)
    return g


def texture_volume(primitives, texture: TrabecularTexture) -> TextureVolume | None:
    """The texture of ``texture.objects`` among ``primitives`` (painter's order decides who owns a point)."""
    from ..simulate import _kernels as K
    from .primitives import pack

    prims = list(primitives)
    idx = [i for i, p in enumerate(prims) if p.label in set(texture.objects)]
    if not idx:
        return None
    packed = pack(prims)
    lo = packed.bounds_mm[idx, 0].min(axis=0)
    hi = packed.bounds_mm[idx, 1].max(axis=0)
    h = texture.voxel_mm
    shape_xyz = np.ceil((hi - lo) / h).astype(np.int64) + 3
    shape = (int(shape_xyz[2]), int(shape_xyz[1]), int(shape_xyz[0]))
    n = int(np.prod(shape))  # the labels on the 2x grid (8 int32 a voxel) and about six float32 fields
    check_fits(n * (4 * 8 + 4 * 6), f"the bone texture ({shape[0]} x {shape[1]} x {shape[2]} voxels of {h} mm)")
    origin = lo - h  # (x, y, z) of voxel 0
    # who owns each point, on a 2x finer grid (partial volume at the objects' edges)
    ss = 2
    labels = np.full((shape[0] * ss, shape[1] * ss, shape[2] * ss), -1, np.int32)
    sub = np.full(3, h / ss)
    K.label_volume(packed.kinds, packed.world_to_unit, packed.centres_mm, packed.bounds_mm,
                   origin - h / 2 + sub / 2, sub, np.array(labels.shape, np.int64), labels)
    mine = np.zeros(len(prims) + 1, np.float32)
    mine[idx] = 1.0  # label -1 (nothing) indexes the last entry: 0
    occ = mine[labels].reshape(shape[0], ss, shape[1], ss, shape[2], ss).mean(axis=(1, 3, 5))
    del labels
    g = level_cut_field(shape, h, texture.spacing_mm, np.random.default_rng(texture.seed), texture.elongation_xyz)
    # the plates' partial volume: a tent about two voxels wide around the zero level set
    grad = np.sqrt(sum(np.square(np.gradient(g, h, axis=a)) for a in range(3)))
    s = 1.0 * h * float(np.sqrt(np.mean(grad ** 2)))
    del grad
    tent = np.maximum(0.0, 1.0 - np.abs(g) / s)
    inside = occ > 0
    w = occ[inside]
    mean_tent = float((tent[inside] * w).sum() / max(w.sum(), 1e-12))
    c = texture.bone_fraction / max(mean_tent, 1e-12)
    bone = np.minimum(1.0, c * tent)
    for _ in range(10):  # clipping at 1 lowers the mean: raise the scale until the mean is the fraction
        m = float((bone[inside] * w).sum() / w.sum())
        if abs(m - texture.bone_fraction) < 1e-4:
            break
        c *= texture.bone_fraction / max(m, 1e-12)
        bone = np.minimum(1.0, c * tent)
    m = float((bone[inside] * w).sum() / w.sum())
    delta = ((bone - m) * occ).astype(np.float32)  # zero-sum over the objects: their mean attenuation is kept
    return TextureVolume(delta, (h, h, h), tuple(float(v) for v in origin))


_CACHE: dict = {}


def case_texture(case) -> TextureVolume | None:
    """The texture of a case (cached per case object: it takes a second or two to make)."""
    tex = getattr(case, "texture", None)
    if tex is None:
        return None
    key = (id(case.primitives), tex)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is case.primitives:
        return hit[1]
    out = texture_volume(case.primitives, tex)
    while len(_CACHE) >= 2:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (case.primitives, out)
    return out
