"""Path lengths through a voxel phantom (a CT volume) for the simulator.

The volume's planes are parallel to the detector, so a plane maps onto the
detector by a scale and a shift (as in the reconstruction engine).  Rays are
traced on a coarse copy of the detector whose pitch matches the voxels
(finer sampling would only interpolate), with bilinear interpolation in each
plane, then the path lengths are interpolated up to the full detector.
Each plane crossing adds ``dz * |S - P| / S_z``: the plane spacing times the
ray's obliquity.

A hybrid case (a voxel volume with analytic ``[[object]]`` primitives inside
it: implants, stones, cysts, fracture lines) is projected by
:class:`HybridLengths`: the voxels are projected as they are, then the voxel
material each ray crosses inside the objects (the union of their chords, sampled
as the voxel projector samples the volume: plane by plane, each plane's slab
counted for the part of the chord inside it; kernel ``voxels_inside_objects``)
is taken out, and the objects' exact chords are added.  An object therefore
replaces the voxel material along its own chord and keeps its exact edges; an
object of the voxels' own material changes nothing.  (The first hybrid model
scaled each voxel by the part no object occupies; the bilinear interpolation
then spread the hole over a voxel around the object's exact chord, an outline
of up to 2.4 mm of water around a 10 mm ball in water.)  The CT pane
(:func:`hybrid_hu`) still paints the objects in by their occupancy of each voxel
(3 x 3 x 3 sub-samples, :func:`analytic_occupancy`).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..geometry import AcquisitionGeometry, Detector
from ..phantoms.materials import mu_table
from ..phantoms.primitives import PackedPrimitives, pack
from ..phantoms.volume import VoxelVolume, material_fractions
from ..sysinfo import check_fits
from ..reconstruct.engine import SliceGrid, plane_coefficients
from . import _kernels as K

MATERIALS = ("water", "cortical_bone")


SUPERSAMPLE = 3  # sub-samples per voxel edge for the part of a voxel an analytic object occupies

_FRACTIONS: dict = {}  # (id(volume), id(objects)) -> (volume, objects, fractions): the last few projected


def _object_blocks(volume: VoxelVolume, packed: PackedPrimitives) -> list:
    """The voxel boxes (z, y, x slices) around each analytic object that overlaps the volume."""
    blocks = []
    for lo, hi in packed.bounds_mm:
        sl = []
        for i, ax in enumerate("xyz"):
            a = volume.axis_mm(ax)
            half = volume.spacing_mm[2 - i] / 2
            k = np.nonzero((a + half >= lo[i]) & (a - half <= hi[i]))[0]
            if k.size == 0:
                break
            sl.append(slice(int(k[0]), int(k[-1]) + 1))
        else:
            blocks.append((sl[2], sl[1], sl[0]))
    return blocks


def analytic_occupancy(volume: VoxelVolume, packed: PackedPrimitives, *, supersample: int = SUPERSAMPLE):
    """The part of each voxel that analytic objects occupy, and the HU they bring.

    Returns a list of ``(block, occupancy, hu_objects)``, one per object that overlaps the volume:
    ``block`` is a tuple of slices (z, y, x) of the volume (the voxels around that object),
    ``occupancy`` (float32, over the block) the fraction of each voxel's sub-samples inside any object,
    ``hu_objects`` the mean over the voxel's sub-samples of the HU of the object that owns each (0 where
    none does; painter's order among all the objects), at the volume's effective energy.  Where blocks
    overlap they agree (each is computed with every object), so a caller may assign them in any order.
    Objects far apart (nodules across both lungs) cost only their own boxes.
    """
    if len(packed.kinds) == 0:
        return []
    names = list(packed.material_names) + ["water"]
    mu = mu_table(names, [volume.effective_energy_kev])[:, 0]
    hu_of_material = 1000.0 * (mu[:-1] - mu[-1]) / mu[-1]
    hu_by_label = np.append(hu_of_material[packed.material_index], 0.0).astype(np.float32)  # label -1 -> 0
    sp = np.array([volume.spacing_mm[2], volume.spacing_mm[1], volume.spacing_mm[0]])  # (x, y, z)
    sub = sp / supersample
    n3 = supersample ** 3
    out = []
    for block in _object_blocks(volume, packed):
        nz, ny, nx = (s.stop - s.start for s in block)
        check_fits(nz * ny * nx * 8, f"the analytic objects' part of {nz} x {ny} x {nx} voxels")
        corner = np.array([volume.axis_mm(ax)[s.start] for ax, s in zip("xyz", block[::-1])]) - sp / 2 + sub / 2
        occ = np.empty((nz, ny, nx), np.float32)
        hu = np.empty((nz, ny, nx), np.float32)
        chunk = max(1, min(nz, (1 << 23) // max(1, ny * nx * n3)))  # at most 32 MB of labels at a time
        for z0 in range(0, nz, chunk):
            z1 = min(nz, z0 + chunk)
            shape = np.array([(z1 - z0) * supersample, ny * supersample, nx * supersample], np.int64)
            labels = np.full(tuple(shape), -1, np.int32)
            org = corner.copy()
            org[2] += z0 * sp[2]
            K.label_volume(packed.kinds, packed.world_to_unit, packed.centres_mm, packed.bounds_mm, org, sub, shape,
                           labels)
            r = labels.reshape(z1 - z0, supersample, ny, supersample, nx, supersample)
            occ[z0:z1] = (r >= 0).sum(axis=(1, 3, 5), dtype=np.int32) / np.float32(n3)
            hu[z0:z1] = hu_by_label[r].sum(axis=(1, 3, 5), dtype=np.float32) / np.float32(n3)
        out.append((block, occ, hu))
    return out


def hybrid_hu(volume: VoxelVolume, primitives) -> np.ndarray:
    """The volume's HU with the analytic objects painted in, with partial volume at their edges (the CT
    pane of a hybrid case)."""
    base = np.asarray(volume.hu, np.float32)
    hu = np.array(base)
    for block, occ, hu_obj in analytic_occupancy(volume, pack(list(primitives))):
        hu[block] = base[block] * (1.0 - occ) + hu_obj
    return hu


def _fractions(volume: VoxelVolume, primitives=()) -> np.ndarray:
    """Water and bone fractions of a volume, (2, nz, ny, nx) float32, less the part analytic objects
    occupy; computed once per volume and object list (a workstation simulates the same case again and
    again; this is the costly part of starting)."""
    key = (id(volume), id(primitives))
    hit = _FRACTIONS.get(key)
    if hit is not None and hit[0] is volume and hit[1] is primitives:
        return hit[2]
    w, b = material_fractions(volume.hu, volume.effective_energy_kev)
    fr = np.ascontiguousarray(np.stack([w, b]))
    if len(primitives):
        base = fr.copy() if len(primitives) > 1 else fr  # overlapping blocks: each scales the voxels once
        for block, occ, _ in analytic_occupancy(volume, pack(list(primitives))):
            fr[(slice(None),) + block] = base[(slice(None),) + block] * (1.0 - occ)[None]
    while len(_FRACTIONS) >= 3:
        _FRACTIONS.pop(next(iter(_FRACTIONS)))
    _FRACTIONS[key] = (volume, primitives, fr)
    return fr


class VoxelLengths:
    """Callable (geometry, view, out) -> per-material path lengths (M, R, C) in mm."""

    material_names = MATERIALS

    def __init__(self, volume: VoxelVolume, exclude=(), *, fractions: np.ndarray | None = None):
        """``exclude``: the analytic primitives (a tuple) whose space the voxels give up (a hybrid case).
        ``fractions``: (2, nz, ny, nx) volume fractions to project instead of the volume's own (``volume``
        then only places them: any object with ``spacing_mm``, ``origin_mm`` and ``axis_mm``)."""
        self.volume = volume
        self.fractions = _fractions(volume, exclude) if fractions is None else fractions  # (2, nz, ny, nx)
        self.spans = np.empty(self.fractions.shape[:3] + (2,), np.int32)  # each plane row's non-zero columns
        K.nonzero_spans(self.fractions, self.spans)
        dz, dy, dx = volume.spacing_mm
        self.grid = SliceGrid(self.fractions.shape[2:4], (dy, dx), volume.origin_mm[:2])
        self.heights = volume.axis_mm("z")
        self.dz = dz
        self.min_voxel_mm = min(dy, dx)
        self._up = None  # (detector, coarse detector, factor, coordinates) of the last detector seen

    def coarse_detector(self, det: Detector) -> tuple[Detector, int]:
        f = max(1, int(np.floor(self.min_voxel_mm / min(det.pitch_row_mm, det.pitch_col_mm))))
        rows, cols = -(-det.rows // f), -(-det.cols // f)
        return Detector(rows=rows, cols=cols, pitch_row_mm=det.pitch_row_mm * f, pitch_col_mm=det.pitch_col_mm * f), f

    def coarse(self, geometry: AcquisitionGeometry, view: int, detector: Detector) -> np.ndarray:
        """Path lengths (M, rows, cols) on ``detector`` (placed at this view's detector centre)."""
        g = AcquisitionGeometry(detector, geometry.source_positions_mm[view:view + 1],
                                geometry.detector_centres_mm[view:view + 1])
        a_col, b_col, a_row, b_row = plane_coefficients(g, self.grid, self.heights[:, None])
        out = np.empty((len(MATERIALS),) + detector.shape, np.float32)
        K.project_planes(self.fractions, a_col[:, 0, 0].copy(), b_col[:, 0, 0].copy(), a_row[:, 0, 0].copy(),
                         b_row[:, 0, 0].copy(), out, self.spans)
        # obliquity: each plane crossing is dz * |S - P| / S_z long
        s = geometry.source_positions_mm[view]
        d = geometry.detector_centres_mm[view]
        y = (np.arange(detector.rows) - (detector.rows - 1) / 2) * detector.pitch_row_mm + d[1]
        x = (np.arange(detector.cols) - (detector.cols - 1) / 2) * detector.pitch_col_mm + d[0]
        ray = np.sqrt((x[None, :] - s[0]) ** 2 + (y[:, None] - s[1]) ** 2 + s[2] ** 2) / s[2]
        out *= (self.dz * ray).astype(np.float32)[None]
        return out

    def _upsampling(self, det: Detector):
        """(coarse detector, factor, fine-pixel coordinates on the coarse grid), computed once per detector."""
        up = self._up  # one read and one write: two simulations may share this object (threads)
        if up is None or up[0] != det:
            small, f = self.coarse_detector(det)
            coords = None
            if f > 1:
                # fine pixel centre r sits at coarse index (r - (R-1)/2) / f + (Rc-1)/2
                rf = (np.arange(det.rows) - (det.rows - 1) / 2) / f + (small.rows - 1) / 2
                cf = (np.arange(det.cols) - (det.cols - 1) / 2) / f + (small.cols - 1) / 2
                coords = np.meshgrid(rf, cf, indexing="ij")
            up = (det, small, f, coords)
            self._up = up
        return up[1:]

    def __call__(self, geometry: AcquisitionGeometry, view: int, out=None) -> np.ndarray:
        det = geometry.detector
        small, f, coords = self._upsampling(det)
        L = self.coarse(geometry, view, small)
        if out is None:
            out = np.empty((len(MATERIALS),) + det.shape, np.float32)
        if f == 1:
            out[...] = L
            return out
        for m in range(L.shape[0]):
            out[m] = ndimage.map_coordinates(L[m], coords, order=1, mode="nearest")
        return out


class HybridLengths:
    """A voxel volume with analytic objects inside it: (geometry, view, out) -> (M, R, C) path lengths in
    mm; materials ``water`` and ``cortical_bone`` (the voxels), then the objects' own."""

    def __init__(self, volume: VoxelVolume, primitives: tuple):
        from .acquire import PrimitiveLengths

        packed = pack(list(primitives))
        self.packed = packed
        self.voxels = VoxelLengths(volume)
        self.analytic = PrimitiveLengths(packed)
        names = list(MATERIALS) + [n for n in packed.material_names if n not in MATERIALS]
        self.material_names = tuple(names)
        self._slot = [names.index(n) for n in packed.material_names]

    def inside_objects(self, geometry: AcquisitionGeometry, view: int) -> np.ndarray:
        """(2, R, C) the voxel material (water, bone; mm) each ray crosses inside the analytic objects."""
        from ..errors import VolumedrError
        from .project import shadow_spans

        det = geometry.detector
        v = self.voxels
        out = np.empty((len(MATERIALS),) + det.shape, np.float32)
        xs, ys = geometry.pixel_centres_mm(view)
        overflow = np.zeros(det.rows, np.int8)
        dy, dx = v.grid.pixel_spacing_mm
        K.voxels_inside_objects(v.fractions, float(v.heights[0]), float(v.dz), float(v.grid.origin_mm[0]),
                                float(v.grid.origin_mm[1]), float(dy), float(dx),
                                geometry.source_positions_mm[view].astype(np.float64), xs.astype(np.float64),
                                ys.astype(np.float64), self.packed.kinds, self.packed.world_to_unit,
                                self.packed.centres_mm, shadow_spans(self.packed, geometry, view), out, overflow)
        if overflow.any():
            raise VolumedrError(f"more than {K.MAX_HITS} overlapping objects along one ray; simplify the case")
        return out

    def __call__(self, geometry: AcquisitionGeometry, view: int, out=None) -> np.ndarray:
        det = geometry.detector
        if out is None:
            out = np.empty((len(self.material_names),) + det.shape, np.float32)
        vox = out[: len(MATERIALS)]
        self.voxels(geometry, view, out=vox)
        # the objects replace the voxels along their own chords: the voxel material each ray crosses
        # inside them, sampled as the voxel projector samples it, is taken out (no fringe at their edges)
        vox -= self.inside_objects(geometry, view)
        np.maximum(vox, 0.0, out=vox)  # float rounding: never a negative length
        out[len(MATERIALS):] = 0.0
        own = self.analytic(geometry, view)
        for m, slot in enumerate(self._slot):
            out[slot] += own[m]
        return out


class TexturedLengths:
    """A case's path lengths with its bone texture added (phantoms/texture.py): the texture's signed
    marrow and bone fractions, projected by the voxel projector, go into the ``soft_tissue`` and
    ``cortical_bone`` slots (added to the material list if the case has none)."""

    def __init__(self, base, texture):
        from ..phantoms.texture import BONE, MARROW

        self.base = base
        self.texture = VoxelLengths(texture, fractions=texture.fractions())
        names = list(base.material_names)
        for n in (MARROW, BONE):
            if n not in names:
                names.append(n)
        self.material_names = tuple(names)
        self._slots = (names.index(MARROW), names.index(BONE))
        self._nb = len(base.material_names)

    def __call__(self, geometry: AcquisitionGeometry, view: int, out=None) -> np.ndarray:
        det = geometry.detector
        if out is None:
            out = np.empty((len(self.material_names),) + det.shape, np.float32)
        self.base(geometry, view, out=out[: self._nb])
        out[self._nb:] = 0.0
        t = self.texture(geometry, view)
        for m, slot in enumerate(self._slots):
            out[slot] += t[m]
        return out
