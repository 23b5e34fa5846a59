"""The volumedr study file (HDF5): layout in docs/file-format.md.

Required items (a file written by another program with only these works with
every command that needs no more):

- root attributes ``format = "volumedr-study"``, ``format_version = 1``
- ``/projections`` float32 (n_views, rows, cols): line integrals -ln(I/I0)
- ``/geometry/source_positions_mm`` float64 (n_views, 3)
- ``/geometry`` attribute ``detector_pixel_pitch_mm`` = [pitch_row, pitch_col]

Optional: ``/geometry/detector_centres_mm`` (zeros when absent), ``/dr``,
``/ct_reference``, ``/reconstruction``, ``/case`` (metadata JSON, findings),
``/dose``.  Writing is atomic: a whole study goes to a temporary file that
is renamed over the target; a reconstruction added to an existing file is
written under a temporary group name and renamed when complete.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from ..errors import GeometryError, StudyFileError
from ..geometry import AcquisitionGeometry, Detector
from ..study import CTReference, Reconstruction, Study

FORMAT = "volumedr-study"
FORMAT_VERSION = 1
_TMP_RECON = "reconstruction.__partial__"


def check_writable(path: str | os.PathLike) -> Path:
    """The path, if a file can be created there; otherwise a StudyFileError naming why."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise StudyFileError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise StudyFileError(f"cannot write {path}: folder {parent} is not writable")
    if path.is_dir():
        raise StudyFileError(f"cannot write {path}: it is a folder")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_attr(obj, name, value):
    obj.attrs[name] = json.dumps(value)


def write_study(path: str | os.PathLike, study: Study) -> None:
    """Write a complete study file atomically."""
    with atomic_path(path) as tmp:
        try:
            with h5py.File(tmp, "w") as f:
                _write_contents(f, study)
        except OSError as exc:
            raise StudyFileError(f"{path}: cannot write: {exc}") from None


def _write_contents(f: h5py.File, study: Study) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    from .. import __version__

    f.attrs["created_by"] = f"volumedr {__version__}"
    g = study.geometry
    proj = np.asarray(study.projections, dtype=np.float32)
    chunks = (1,) + proj.shape[1:]
    ds = f.create_dataset("projections", data=proj, chunks=chunks)
    ds.attrs["quantity"] = "line integral -ln(I/I0)"
    geo = f.create_group("geometry")
    geo.create_dataset("source_positions_mm", data=g.source_positions_mm.astype(np.float64))
    geo.create_dataset("detector_centres_mm", data=g.detector_centres_mm.astype(np.float64))
    geo.create_dataset("angles_deg", data=g.angles_deg.astype(np.float64))
    geo.attrs["detector_pixel_pitch_mm"] = np.array([g.detector.pitch_row_mm, g.detector.pitch_col_mm])
    geo.attrs["convention"] = ("right-handed mm; detector plane z=0, columns along +x, rows along +y; "
                               "pixel (r,c) centre x=(c-(cols-1)/2)*pitch_col+dx, y=(r-(rows-1)/2)*pitch_row+dy")
    if study.dr is not None:
        d = f.create_dataset("dr", data=np.asarray(study.dr, dtype=np.float32))
        d.attrs["quantity"] = "line integral -ln(I/I0), single PA view at 0 deg"
    if study.ct_reference is not None:
        write_ct_reference(f, study.ct_reference)
    if study.metadata or study.findings:
        c = f.create_group("case")
        for k, v in study.metadata.items():
            if isinstance(v, str):
                c.attrs[k] = v
            else:
                _json_attr(c, k, v)
        _json_attr(c, "findings", list(study.findings))
    if study.reconstruction is not None:
        _write_reconstruction_group(f, "reconstruction", study.reconstruction)


def write_ct_reference(f: h5py.File, ct: CTReference) -> None:
    d = f.create_dataset("ct_reference", data=np.asarray(ct.hu, dtype=np.float32), chunks=True,
                         compression="gzip", compression_opts=1)
    d.attrs["units"] = "HU"
    d.attrs["axes"] = "z, y, x"
    d.attrs["spacing_mm"] = np.array(ct.spacing_mm, dtype=np.float64)
    d.attrs["origin_mm"] = np.array(ct.origin_mm, dtype=np.float64)
    d.attrs["origin_axes"] = "x, y, z of the centre of voxel (0, 0, 0)"


_RECON_ATTRS = ("heights_mm", "pixel_spacing_mm", "origin_mm", "thickness_mm", "method")


def _create_reconstruction(f: h5py.File, name: str, shape, meta: dict) -> h5py.Dataset:
    """Create group ``name`` with an empty ``slices`` dataset and the documented attributes."""
    g = f.create_group(name)
    ds = g.create_dataset("slices", shape=tuple(shape), dtype=np.float32, chunks=(1,) + tuple(shape[1:]))
    g.attrs["heights_mm"] = np.asarray(meta["heights_mm"], dtype=np.float64)
    g.attrs["pixel_spacing_mm"] = np.asarray(meta["pixel_spacing_mm"], dtype=np.float64)
    g.attrs["origin_mm"] = np.asarray(meta["origin_mm"], dtype=np.float64)
    g.attrs["thickness_mm"] = float(meta["thickness_mm"])
    g.attrs["method"] = str(meta["method"])
    _json_attr(g, "parameters", meta.get("parameters") or {})
    for key in _RECON_ATTRS:
        ds.attrs[key] = g.attrs[key]
    ds.attrs["quantity"] = "reconstructed attenuation (relative units)"
    return ds


def _write_reconstruction_group(f: h5py.File, name: str, rec: Reconstruction) -> None:
    s = np.asarray(rec.slices, dtype=np.float32)
    _create_reconstruction(f, name, s.shape, rec.__dict__)[...] = s


class ReconstructionWriter:
    """Stream a reconstruction into a study file slice by slice.

    Slices go into a temporary group; :meth:`commit` replaces any previous
    ``/reconstruction`` with it, :meth:`abort` deletes it, so a cancelled or
    failed reconstruction leaves the file as it was.
    """

    def __init__(self, path, *, shape, heights_mm, pixel_spacing_mm, origin_mm, thickness_mm, method, parameters):
        import shutil

        self.path = Path(path)
        need = int(np.prod(shape)) * 4
        free = shutil.disk_usage(self.path.resolve().parent).free
        if need > 0.95 * free:
            raise StudyFileError(f"{path}: the reconstruction needs {need / 2**30:.1f} GiB but the disk has only "
                                 f"{free / 2**30:.1f} GiB free")
        try:
            self.f = h5py.File(self.path, "r+")
        except OSError as exc:
            raise StudyFileError(f"{path}: cannot open for writing: {exc}") from None
        if _TMP_RECON in self.f:
            del self.f[_TMP_RECON]
        meta = dict(heights_mm=heights_mm, pixel_spacing_mm=pixel_spacing_mm, origin_mm=origin_mm,
                    thickness_mm=thickness_mm, method=method, parameters=parameters)
        self.ds = _create_reconstruction(self.f, _TMP_RECON, shape, meta)

    def write(self, start: int, slices: np.ndarray) -> None:
        self.ds[start:start + len(slices)] = slices

    def commit(self) -> None:
        if "reconstruction" in self.f:
            del self.f["reconstruction"]
        self.f.move(_TMP_RECON, "reconstruction")
        self.f.close()

    def abort(self) -> None:
        try:
            if _TMP_RECON in self.f:
                del self.f[_TMP_RECON]
        finally:
            self.f.close()


def write_reconstruction(path, rec: Reconstruction) -> None:
    """Add (or replace) ``/reconstruction`` in an existing study file."""
    w = ReconstructionWriter(path, shape=rec.slices.shape, heights_mm=rec.heights_mm,
                             pixel_spacing_mm=rec.pixel_spacing_mm, origin_mm=rec.origin_mm,
                             thickness_mm=rec.thickness_mm, method=rec.method, parameters=rec.parameters)
    try:
        w.write(0, np.asarray(rec.slices, np.float32))
        w.commit()
    except BaseException:
        w.abort()
        raise


def _require(f, name, path):
    if name not in f:
        raise StudyFileError(f"{path}: missing required item /{name}")
    return f[name]


def _open(path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise StudyFileError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise StudyFileError(f"{path}: not an HDF5 file (or unreadable)") from None
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT:
        f.close()
        raise StudyFileError(f"{path}: not a volumedr study (root attribute format is {fmt!r}, expected {FORMAT!r})")
    ver = f.attrs.get("format_version")
    try:
        ver = int(np.asarray(ver).reshape(()))
    except (TypeError, ValueError):
        f.close()
        raise StudyFileError(f"{path}: root attribute format_version is missing or not an integer") from None
    if ver > FORMAT_VERSION or ver < 1:
        f.close()
        raise StudyFileError(f"{path}: format_version {ver} is not supported (this volumedr reads 1..{FORMAT_VERSION})")
    return f


def read_geometry(f: h5py.File, path, n_views: int, rows: int, cols: int) -> AcquisitionGeometry:
    geo = _require(f, "geometry", path)
    src = _require(geo, "source_positions_mm", path)[()]
    if src.ndim != 2 or src.shape[1] != 3:
        raise StudyFileError(f"{path}: /geometry/source_positions_mm must be (n_views, 3), got {src.shape}")
    if len(src) != n_views:
        raise StudyFileError(f"{path}: /projections has {n_views} views but /geometry/source_positions_mm has {len(src)}")
    det = geo["detector_centres_mm"][()] if "detector_centres_mm" in geo else np.zeros_like(src)
    if det.shape != src.shape:
        raise StudyFileError(f"{path}: /geometry/detector_centres_mm must be {src.shape}, got {det.shape}")
    if "detector_pixel_pitch_mm" not in geo.attrs:
        raise StudyFileError(f"{path}: /geometry needs the attribute detector_pixel_pitch_mm = [row, col]")
    pitch = np.asarray(geo.attrs["detector_pixel_pitch_mm"], dtype=np.float64).reshape(-1)
    if pitch.size == 1:
        pitch = np.repeat(pitch, 2)
    if pitch.size != 2:
        raise StudyFileError(f"{path}: detector_pixel_pitch_mm must be [pitch_row, pitch_col]")
    angles = geo["angles_deg"][()] if "angles_deg" in geo else None
    try:
        detector = Detector(rows=int(rows), cols=int(cols), pitch_row_mm=float(pitch[0]), pitch_col_mm=float(pitch[1]))
        return AcquisitionGeometry(detector, src, det, angles)
    except GeometryError as exc:
        raise StudyFileError(f"{path}: invalid geometry: {exc}") from None


def _attr_json(obj, name, default=None):
    if name not in obj.attrs:
        return default
    v = obj.attrs[name]
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v.tolist() if isinstance(v, np.ndarray) else v


def read_study(path: str | os.PathLike, *, load_projections: bool = True, load_reconstruction: bool = True) -> Study:
    """Read and validate a study file; errors name the file and the problem."""
    with _open(path) as f:
        proj_ds = _require(f, "projections", path)
        if proj_ds.ndim != 3:
            raise StudyFileError(f"{path}: /projections must be 3-D (n_views, rows, cols), got shape {proj_ds.shape}")
        if proj_ds.dtype.kind not in "fiu":
            raise StudyFileError(f"{path}: /projections must be numeric, got {proj_ds.dtype}")
        n, rows, cols = proj_ds.shape
        geometry = read_geometry(f, path, n, rows, cols)
        projections = proj_ds[()].astype(np.float32, copy=False) if load_projections else None
        dr = f["dr"][()].astype(np.float32) if "dr" in f else None
        ct = None
        if "ct_reference" in f:
            d = f["ct_reference"]
            ct = CTReference(d[()].astype(np.float32), tuple(np.asarray(d.attrs["spacing_mm"], float)),
                             tuple(np.asarray(d.attrs["origin_mm"], float)))
        rec = read_reconstruction_group(f, path, load_slices=load_reconstruction) if "reconstruction" in f else None
        meta, findings = {}, []
        if "case" in f:
            for k in f["case"].attrs:
                if k != "findings":
                    meta[k] = _attr_json(f["case"], k)
            findings = _attr_json(f["case"], "findings", []) or []
    return Study(projections=projections, geometry=geometry, dr=dr, ct_reference=ct, reconstruction=rec,
                 metadata=meta, findings=findings)


def read_reconstruction_group(f, path, *, load_slices=True) -> Reconstruction:
    g = f["reconstruction"]
    s = _require(g, "slices", path)
    try:
        heights = np.asarray(g.attrs["heights_mm"], float).reshape(-1)
        spacing = tuple(np.asarray(g.attrs["pixel_spacing_mm"], float).reshape(2))
        origin = tuple(np.asarray(g.attrs["origin_mm"], float).reshape(2))
    except (KeyError, ValueError) as exc:
        raise StudyFileError(f"{path}: /reconstruction attributes are incomplete: {exc}") from None
    if len(heights) != s.shape[0]:
        raise StudyFileError(f"{path}: /reconstruction has {s.shape[0]} slices but {len(heights)} heights")
    method = g.attrs.get("method", "unknown")
    method = method.decode() if isinstance(method, bytes) else str(method)
    return Reconstruction(slices=s[()] if load_slices else None, heights_mm=heights, pixel_spacing_mm=spacing,
                          origin_mm=origin, thickness_mm=float(g.attrs.get("thickness_mm", np.nan)), method=method,
                          parameters=_attr_json(g, "parameters", {}) or {})


def copy_study(src, dst) -> None:
    """Copy a study file atomically (for ``reconstruct -o``)."""
    import shutil

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
