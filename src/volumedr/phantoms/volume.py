"""Voxel phantoms: a CT volume (HU) placed in the volumedr frame.

A :class:`VoxelVolume` holds HU on planes parallel to the detector,
indexed (z, y, x) with z the height above the detector, like the CT
reference.  The simulator turns HU into attenuation with the water/bone
mixing model of Kinahan et al. 1998 / Bai et al. 2003 (docs/physics.md):

* HU <= 0: water at a scaled density, ``w = 1 + HU/1000`` (air 0, lung
  about 0.2, fat about 0.9), ``b = 0``;
* HU > 0: a mix of water and cortical bone that reproduces HU at the CT's
  effective energy: ``b = HU / HU_bone``, ``w = 1 - b`` (w >= 0), where
  ``HU_bone = 1000 (mu_bone / mu_water - 1)`` at that energy.

Path lengths of "water" and "cortical_bone" through ``w`` and ``b`` then go
through the same polyenergetic detector model as the analytic phantoms.
Iodinated contrast (enhanced vessels, 150-300 HU) would count as bone in this
model; :func:`unenhanced` takes it out (the bundled real-anatomy cases are
built from unenhanced HU: a radiograph's patient has no contrast).

:func:`volume_from_axial_ct` resamples an axial CT (any axis-aligned
orientation, any slice order or spacing) into this frame for a PA exposure:
the table and anything outside the body are removed, the anterior skin is
placed ``gap_mm`` above the detector.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import CaseError, GeometryError
from ..sysinfo import check_fits

AIR_HU = -1000.0
BODY_THRESHOLD_HU = -400.0


@dataclass(frozen=True, eq=False)
class VoxelVolume:
    """HU on planes parallel to the detector.

    hu : (nz, ny, nx) array, z = height above the detector
    spacing_mm : (z, y, x) voxel size
    origin_mm : (x, y, z) centre of voxel (0, 0, 0)
    effective_energy_kev : the CT beam's effective energy (for HU -> attenuation)
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    effective_energy_kev: float = 70.0
    description: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.hu.ndim != 3 or min(self.hu.shape) < 2:
            raise CaseError(f"a voxel volume must be 3-D with at least 2 voxels per axis, got {self.hu.shape}")
        if not all(np.isfinite(v) and v > 0 for v in self.spacing_mm):
            raise CaseError(f"voxel spacing must be positive, got {self.spacing_mm}")

    @property
    def shape(self):
        return self.hu.shape

    def axis_mm(self, axis: str) -> np.ndarray:
        """Voxel centres along 'x', 'y' or 'z'."""
        i = "xyz".index(axis)
        n = self.hu.shape[2 - i]
        return self.origin_mm[i] + np.arange(n) * self.spacing_mm[2 - i]

    def body_bounds_mm(self) -> np.ndarray:
        """(2, 3) bounds of the voxels above -900 HU (the body), voxel edges included."""
        if "bounds" not in self._cache:
            body = np.asarray(self.hu) > -900
            if not body.any():
                raise CaseError("the voxel volume holds no tissue (every voxel below -900 HU)")
            lo, hi = [], []
            for ax, name in ((2, "x"), (1, "y"), (0, "z")):
                other = tuple(a for a in range(3) if a != ax)
                idx = np.nonzero(body.any(axis=other))[0]
                c = self.axis_mm(name)
                half = self.spacing_mm[ax] / 2
                lo.append(c[idx[0]] - half)
                hi.append(c[idx[-1]] + half)
            self._cache["bounds"] = np.array([lo, hi])
        return self._cache["bounds"]


def hu_bone(energy_kev: float) -> float:
    from .materials import mu_table

    mu_w, mu_b = mu_table(["water", "cortical_bone"], [energy_kev])[:, 0]
    return float(1000.0 * (mu_b / mu_w - 1.0))


def material_fractions(hu: np.ndarray, energy_kev: float) -> tuple[np.ndarray, np.ndarray]:
    """(water, bone) volume fractions of each voxel (float32), by the bilinear model above."""
    hu = np.asarray(hu, np.float32)
    hb = hu_bone(energy_kev)
    bone = np.clip(hu / hb, 0.0, None).astype(np.float32)
    water = np.where(hu <= 0, np.clip(1.0 + hu / 1000.0, 0.0, None), np.clip(1.0 - bone, 0.0, None))
    return water.astype(np.float32), bone


def insert_sphere(vol: VoxelVolume, centre_mm, diameter_mm: float, hu: float, *, supersample: int = 3) -> None:
    """Paint a sphere of ``hu`` into the volume (in place), with partial-volume edges."""
    r = diameter_mm / 2.0
    c = np.asarray(centre_mm, float)
    sl, sub = [], []
    for i, ax in enumerate("xyz"):
        a = vol.axis_mm(ax)
        k = np.nonzero(np.abs(a - c[i]) <= r + vol.spacing_mm[2 - i])[0]
        if k.size == 0:
            raise CaseError(f"lesion at {tuple(c)} mm lies outside the voxel volume")
        sl.append(slice(k[0], k[-1] + 1))
        off = (np.arange(supersample) + 0.5) / supersample - 0.5
        sub.append((a[k][:, None] + off[None, :] * vol.spacing_mm[2 - i]).ravel())
    zz, yy, xx = np.meshgrid(sub[2], sub[1], sub[0], indexing="ij")
    inside = ((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2) <= r * r
    nz, ny, nx = (s.stop - s.start for s in (sl[2], sl[1], sl[0]))
    frac = inside.reshape(nz, supersample, ny, supersample, nx, supersample).mean(axis=(1, 3, 5))
    region = vol.hu[sl[2], sl[1], sl[0]]
    region[...] = (region * (1 - frac) + hu * frac).astype(vol.hu.dtype)
    vol._cache.clear()


def unenhanced(hu: np.ndarray, *, ceiling_hu: float = 60.0, bone_hu: float = 350.0) -> np.ndarray:
    """The HU of a contrast-enhanced CT as the patient would be without the contrast (a radiograph's patient
    has none).

    Bone is what lies above ``bone_hu`` (cortex, calcifications), closed and filled in each axial plane
    so that the marrow inside the cortex counts as bone, dilated by one voxel for its partial-volume rim;
    everywhere else, enhanced tissue (vessels at 150-300 HU, the enhanced liver, kidneys and myocardium
    at 80-200 HU) is brought down to ``ceiling_hu`` (60 HU: unenhanced blood 40, liver 55, muscle 50)
    plus a tenth of its excess, so that a trace of its texture stays in the CT pane.  The
    bilinear water/bone model of :func:`material_fractions` would otherwise count the iodine as bone,
    and at a radiograph's 60-120 kVp iodine is no bone (its K-edge at 33 keV).
    """
    hu = np.asarray(hu, np.float32)
    bone = ndimage.binary_closing(np.pad(hu > bone_hu, 2), iterations=2)[2:-2, 2:-2, 2:-2]  # padded: no edge loss
    for k in range(bone.shape[1]):  # axial planes of the volumedr frame are (z, x) at one y
        bone[:, k] = ndimage.binary_fill_holes(bone[:, k])
    bone = ndimage.binary_dilation(bone, iterations=1)
    return np.where(bone | (hu <= ceiling_hu), hu, ceiling_hu + 0.1 * (hu - ceiling_hu)).astype(np.float32)


# --------------------------------------------------------------------------------------- from an axial CT
def body_mask(hu_axial: np.ndarray) -> np.ndarray:
    """The patient's body in an axial CT: tissue above -400 HU, opened to cut the table off, largest
    connected part, holes (lungs, bowel gas) filled slice by slice."""
    tissue = hu_axial > BODY_THRESHOLD_HU
    tissue = ndimage.binary_opening(tissue, structure=np.ones((1, 5, 5), bool))
    labels, n = ndimage.label(tissue)
    if n == 0:
        raise CaseError("the CT holds no tissue above -400 HU")
    sizes = ndimage.sum_labels(tissue, labels, index=np.arange(1, n + 1))
    body = labels == (int(np.argmax(sizes)) + 1)
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    return body


def volume_from_axial_ct(hu_axial: np.ndarray, positions_mm: np.ndarray, orientation, pixel_spacing_mm, *,
                         voxel_mm: tuple[float, float, float] = (2.0, 2.0, 2.0), gap_mm: float = 15.0,
                         effective_energy_kev: float = 70.0, description: str = "", view: str = "PA") -> VoxelVolume:
    """Resample an axial CT into the volumedr frame for a PA exposure (patient axes LFP), or with
    ``view="AP"`` for a supine AP one (patient axes RFA: the back ``gap_mm`` above the detector).

    hu_axial : (n_slices, rows, cols) HU, slices in any order
    positions_mm : (n_slices, 3) Image Position (Patient) of each slice
    orientation : Image Orientation (Patient), 6 numbers, the same for every slice
    pixel_spacing_mm : (row, col)
    voxel_mm : output voxel size (z = height, y = cranio-caudal, x = left-right)
    """
    iop = np.asarray(orientation, float).reshape(2, 3)
    row_dir, col_dir = iop[0], iop[1]
    normal = np.cross(row_dir, col_dir)
    if abs(abs(normal[2]) - 1.0) > 1e-3:
        raise GeometryError("the CT slices are not axial (Image Orientation (Patient) "
                            f"{list(np.round(iop.ravel(), 4))}); volumedr needs an axial series")
    pos = np.asarray(positions_mm, float)
    d = pos @ normal
    order = np.argsort(d)
    d = d[order]
    if np.any(np.diff(d) < 1e-3):
        raise GeometryError("two CT slices share the same position; the series has duplicates")
    inplane = pos[order] - d[:, None] * normal
    if np.max(np.linalg.norm(inplane - inplane[0], axis=1)) > 0.5 * min(pixel_spacing_mm):
        raise GeometryError("the CT slices' positions drift sideways from slice to slice (gantry tilt or a "
                            "sheared series); volumedr needs an untilted axial series")
    hu = np.asarray(hu_axial, np.float32)[order]
    check_fits(hu.nbytes * 4, f"a CT of {hu.shape}")
    body = body_mask(hu)
    hu = np.where(body, hu, AIR_HU).astype(np.float32)
    pr, pc = (float(v) for v in pixel_spacing_mm)
    rows, cols = hu.shape[1:]
    r_idx, c_idx = np.nonzero(body.any(axis=0))
    # LPS of every voxel centre: P = IPP0 + c * pc * row_dir + r * pr * col_dir + d_k * normal
    corners = [inplane[0] + c * pc * row_dir + r * pr * col_dir for r in (r_idx.min(), r_idx.max())
               for c in (c_idx.min(), c_idx.max())]
    corners = np.array(corners)
    X0, X1 = corners[:, 0].min(), corners[:, 0].max()
    Y0, Y1 = corners[:, 1].min(), corners[:, 1].max()  # Y0 = anterior skin
    Zlps = d * normal[2] + inplane[0, 2]
    Z0, Z1 = Zlps.min(), Zlps.max()
    vz, vy, vx = voxel_mm
    nx = int(np.ceil((X1 - X0) / vx)) + 1
    ny = int(np.ceil((Z1 - Z0) / vy)) + 1
    nz = int(np.ceil((Y1 - Y0) / vz)) + 1
    check_fits(nx * ny * nz * 4 * 6, f"a voxel volume of {nx} x {ny} x {nz}")
    cx, cz = (X0 + X1) / 2, (Z0 + Z1) / 2
    x = (np.arange(nx) - (nx - 1) / 2) * vx          # volumedr x = LPS X - cx
    y = (np.arange(ny) - (ny - 1) / 2) * vy          # volumedr y = -(LPS Z - cz)  (towards the feet)
    z = gap_mm + np.arange(nz) * vz                  # volumedr z = LPS Y - Y0 + gap (towards the back)
    X = x + cx
    Zp = cz - y
    Y = z - gap_mm + Y0
    # fractional CT indices
    kf = np.interp(Zp * normal[2], d, np.arange(len(d)), left=-1.0, right=len(d))  # slice index (uneven spacing ok)
    out = np.full((nz, ny, nx), AIR_HU, np.float32)
    for iz in range(nz):
        P = np.stack(np.broadcast_arrays(X[None, :], Y[iz], np.zeros((ny, 1))), axis=-1)  # (ny, nx, 3), Z unused
        rel = P - inplane[0]
        cf = (rel @ row_dir) / pc
        rf = (rel @ col_dir) / pr
        coords = np.stack([np.broadcast_to(kf[:, None], (ny, nx)), rf, cf])
        out[iz] = ndimage.map_coordinates(hu, coords, order=1, mode="constant", cval=AIR_HU)
    if view == "AP":  # +x to the patient's right, +z anterior: the PA grid mirrored in x and z
        out = np.ascontiguousarray(out[::-1, :, ::-1])
    elif view != "PA":
        raise GeometryError(f"view must be 'PA' or 'AP', got {view!r}")
    return VoxelVolume(hu=out, spacing_mm=(float(vz), float(vy), float(vx)),
                       origin_mm=(float(x[0]), float(y[0]), float(z[0])),
                       effective_energy_kev=float(effective_energy_kev), description=description)
