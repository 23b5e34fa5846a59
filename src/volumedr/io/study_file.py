"""The volumedr study file (HDF5): layout in docs/file-format.md.

Required items (a file written by another program with only these works with
every command that needs no more):

- root attributes ``format = "volumedr-study"``, ``format_version = 1``
- ``/projections`` float32 (n_views, rows, cols): line integrals -ln(I/I0)
- ``/geometry/source_positions_mm`` float64 (n_views, 3)
- ``/geometry`` attribute ``detector_pixel_pitch_mm`` = [pitch_row, pitch_col]

Optional: ``/geometry/detector_centres_mm`` (zeros when absent), ``/dr``,
``/ct_reference``, ``/reconstruction``, ``/case`` (metadata JSON, findings),
``/dose``.

Reading never lets a library error through: a damaged (truncated,
bit-flipped) or malformed *required* item refuses the file with one line
naming the file and the item; a damaged or malformed *optional* item is
reported as a :class:`~volumedr.errors.VolumedrWarning` and left out (listed
in ``Study.dropped``), so the rest of the study still opens and nothing broken
is passed on.

Writing is atomic: a whole study goes to a temporary file that is renamed over
the target.  Files are written with HDF5 metadata checksums (library version
1.10 object headers) and Fletcher-32 checksums on every dataset, so damage is
found when it is read instead of showing as wrong numbers.  A reconstruction
added to an existing study rewrites the study into a temporary file with the
new ``/reconstruction`` and renames it over the original: the original is
never opened for writing (a kill or a Cancel leaves it exactly as it was), and
the file does not grow with the number of reconstructions.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from ..errors import GeometryError, StudyFileError, VolumedrWarning
from ..geometry import AcquisitionGeometry, Detector
from ..study import RECONSTRUCTION_METHODS, CTReference, Reconstruction, Study
from ..sysinfo import check_fits
from .tempfiles import new_temp_file
from .values import BadValue, number_array

FORMAT = "volumedr-study"
FORMAT_VERSION = 1
_TMP_RECON = "reconstruction.__partial__"  # left by volumedr <= 0.1 in place; removed on rewrite
LIBVER = ("v110", "latest")
CHECKSUM = {"fletcher32": True}

# what h5py raises from deep inside the library for a damaged file
H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError, OverflowError, SystemError)


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
    tmp = new_temp_file(path)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _new_h5(path) -> h5py.File:
    return h5py.File(path, "w", libver=LIBVER)


def _json_attr(obj, name, value):
    obj.attrs[name] = json.dumps(value)


def write_study(path: str | os.PathLike, study: Study) -> None:
    """Write a complete study file atomically."""
    with atomic_path(path) as tmp:
        try:
            with _new_h5(tmp) as f:
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
    ds = f.create_dataset("projections", data=proj, chunks=chunks, **CHECKSUM)
    ds.attrs["quantity"] = "line integral -ln(I/I0)"
    geo = f.create_group("geometry")
    geo.create_dataset("source_positions_mm", data=g.source_positions_mm.astype(np.float64), **CHECKSUM)
    geo.create_dataset("detector_centres_mm", data=g.detector_centres_mm.astype(np.float64), **CHECKSUM)
    geo.create_dataset("angles_deg", data=g.angles_deg.astype(np.float64), **CHECKSUM)
    geo.attrs["detector_pixel_pitch_mm"] = np.array([g.detector.pitch_row_mm, g.detector.pitch_col_mm])
    geo.attrs["convention"] = ("right-handed mm; detector plane z=0, columns along +x, rows along +y; "
                               "pixel (r,c) centre x=(c-(cols-1)/2)*pitch_col+dx, y=(r-(rows-1)/2)*pitch_row+dy")
    if study.dr is not None:
        d = f.create_dataset("dr", data=np.asarray(study.dr, dtype=np.float32), **CHECKSUM)
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
                         compression="gzip", compression_opts=1, **CHECKSUM)
    d.attrs["units"] = "HU"
    d.attrs["axes"] = "z, y, x"
    d.attrs["spacing_mm"] = np.array(ct.spacing_mm, dtype=np.float64)
    d.attrs["origin_mm"] = np.array(ct.origin_mm, dtype=np.float64)
    d.attrs["origin_axes"] = "x, y, z of the centre of voxel (0, 0, 0)"


_RECON_ATTRS = ("heights_mm", "pixel_spacing_mm", "origin_mm", "thickness_mm", "method")


def _create_reconstruction(f: h5py.File, name: str, shape, meta: dict) -> h5py.Dataset:
    """Create group ``name`` with an empty ``slices`` dataset and the documented attributes."""
    g = f.create_group(name)
    ds = g.create_dataset("slices", shape=tuple(shape), dtype=np.float32, chunks=(1,) + tuple(shape[1:]),
                          **CHECKSUM)
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


def _create_view_fraction(g: h5py.Group, shape) -> h5py.Dataset:
    d = g.create_dataset("view_fraction", shape=tuple(shape), dtype=np.uint8, chunks=(1,) + tuple(shape[1:]),
                         compression="gzip", compression_opts=1, **CHECKSUM)
    d.attrs["quantity"] = "share of the views that see each pixel, weighted as the backprojection weights them"
    d.attrs["scale"] = "255 = every view; pixels under 128 are seen by fewer than half"
    return d


def _write_reconstruction_group(f: h5py.File, name: str, rec: Reconstruction) -> None:
    s = np.asarray(rec.slices, dtype=np.float32)
    _create_reconstruction(f, name, s.shape, rec.__dict__)[...] = s
    if rec.view_fraction is not None and rec.view_fraction.shape == s.shape:
        _create_view_fraction(f[name], s.shape)[...] = np.asarray(rec.view_fraction, np.uint8)


def _copy_items(src: h5py.File, dst: h5py.File, *, drop=()) -> None:
    """Copy the root attributes and every root item of ``src`` into ``dst``, but ``/reconstruction`` and
    the items named in ``drop`` (``Study.dropped``: ``/dr``, ``/geometry/angles_deg``,
    ``/case attribute findings``, ...)."""
    drop = set(drop)
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    for name in src:
        if name in ("reconstruction", _TMP_RECON) or f"/{name}" in drop:
            continue
        src.copy(src[name], dst, name=name)
    for item in drop:
        where, _, attr = item.partition(" attribute ")
        where = where.lstrip("/")
        if where in dst and attr:
            if attr in dst[where].attrs:
                del dst[where].attrs[attr]
        elif where in dst:
            del dst[where]


class ReconstructionWriter:
    """Stream a reconstruction into a study file slice by slice.

    The study (every item but ``/reconstruction``, and but the broken optional
    items that reading left out) is copied into a temporary file beside the
    target, the slices are written there, and :meth:`commit` renames it over
    the target; :meth:`abort` deletes it.  The source is only read, so a
    cancelled, failed or killed reconstruction leaves it as it was, and the
    study is never larger than one copy of itself with one reconstruction.

    ``source`` is the study to start from (default: ``path`` itself, an
    in-place reconstruction); ``drop`` names items not to copy (``Study.dropped``).
    """

    def __init__(self, path, *, shape, heights_mm, pixel_spacing_mm, origin_mm, thickness_mm, method, parameters,
                 source=None, drop=()):
        self.path = check_writable(path)
        source = Path(source) if source is not None else self.path
        need = int(np.prod(shape)) * 4
        base = source.stat().st_size  # at most what the copy holds (the old slices are not copied)
        free = shutil.disk_usage(self.path.resolve().parent).free
        if need + base > 0.95 * free:
            raise StudyFileError(f"{path}: writing the study with its reconstruction needs "
                                 f"{(need + base) / 2**30:.1f} GiB but the disk has only {free / 2**30:.1f} GiB free")
        self.tmp = new_temp_file(self.path)
        try:
            self.f = _new_h5(self.tmp)
            try:
                with h5py.File(source, "r") as src:
                    _copy_items(src, self.f, drop=drop)
            except H5_ERRORS as exc:
                raise StudyFileError(f"{source}: the file is damaged: cannot copy it ({_reason(exc)})") from None
            meta = dict(heights_mm=heights_mm, pixel_spacing_mm=pixel_spacing_mm, origin_mm=origin_mm,
                        thickness_mm=thickness_mm, method=method, parameters=parameters)
            self.ds = _create_reconstruction(self.f, "reconstruction", shape, meta)
            self.fraction = None
        except BaseException:
            self._discard()
            raise

    def write(self, start: int, slices: np.ndarray) -> None:
        self.ds[start:start + len(slices)] = slices

    def write_fraction(self, start: int, fraction: np.ndarray) -> None:
        """The uint8 view fractions of the slices from ``start`` (``/reconstruction/view_fraction``)."""
        if self.fraction is None:
            self.fraction = _create_view_fraction(self.f["reconstruction"], self.ds.shape)
        self.fraction[start:start + len(fraction)] = fraction

    def commit(self, parameters: dict | None = None) -> None:
        """Finish: ``parameters`` (known only at the end, e.g. SART's residuals) replace those given at
        the start; then the file is renamed over the target."""
        if parameters is not None:
            g = self.f["reconstruction"]
            _json_attr(g, "parameters", parameters)
        self.f.close()
        os.replace(self.tmp, self.path)

    def _discard(self) -> None:
        f = getattr(self, "f", None)
        if f is not None and f.id.valid:
            f.close()
        Path(self.tmp).unlink(missing_ok=True)

    def abort(self) -> None:
        self._discard()


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


# ---------------------------------------------------------------------------------------------- reading
def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, KeyError):
        text = text.strip("'\"")
    return text[:160]


class _Invalid(Exception):
    """An item that reads but makes no sense (wrong type, shape, value); the message says how."""


class _Reader:
    """Reads items from an open study file, turning every library error into one line."""

    def __init__(self, f: h5py.File, path):
        self.f, self.path = f, path
        self.dropped: list[str] = []

    def damaged(self, item: str, exc: BaseException) -> StudyFileError:
        return StudyFileError(f"{self.path}: the file is damaged: {item} could not be read ({_reason(exc)})")

    def invalid(self, item: str, why: str) -> StudyFileError:
        return StudyFileError(f"{self.path}: {item} {why}")

    def has(self, group, name: str, item: str) -> bool:
        try:
            return name in group
        except H5_ERRORS as exc:
            raise self.damaged(item, exc) from None

    def node(self, group, name: str, item: str, *, required=True):
        if not self.has(group, name, item):
            if required:
                raise StudyFileError(f"{self.path}: missing required item {item}")
            return None
        try:
            return group[name]
        except H5_ERRORS as exc:
            raise self.damaged(item, exc) from None

    def required(self, item: str, fn):
        """Run ``fn`` (which reads ``item``); damage or nonsense refuses the file."""
        try:
            return fn()
        except _Invalid as exc:
            raise self.invalid(item, str(exc)) from None
        except H5_ERRORS as exc:
            raise self.damaged(item, exc) from None

    def optional(self, item: str, fn, default=None):
        """Run ``fn``; damage or nonsense is a warning and the item is left out."""
        try:
            return fn()
        except (_Invalid, StudyFileError) as exc:
            why = str(exc)
        except H5_ERRORS as exc:
            why = f"is damaged ({_reason(exc)})"
        warnings.warn(f"{self.path}: {item} {why}; it is left out", VolumedrWarning, stacklevel=3)
        self.dropped.append(item)
        return default


def _numeric(ds, item: str, ndim: int | None = None, shape=None) -> np.ndarray:
    if not isinstance(ds, h5py.Dataset):
        raise _Invalid("is not a dataset")
    if ds.dtype.kind not in "fiu":
        raise _Invalid(f"must be numeric, got {ds.dtype}")
    if ndim is not None and ds.ndim != ndim:
        raise _Invalid(f"must be {ndim}-D, got shape {ds.shape}")
    if shape is not None and tuple(ds.shape) != tuple(shape):
        raise _Invalid(f"must have shape {tuple(shape)}, got {ds.shape}")
    check_fits(ds.size * 8, f"reading {item}")
    a = ds[()]
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise _Invalid(f"contains {int(np.sum(~np.isfinite(a)))} NaN or infinite values")
    return a


def _attr_array(obj, name: str, size: int | None = None) -> np.ndarray:
    if name not in obj.attrs:
        raise _Invalid(f"lacks the attribute {name}")
    try:
        return number_array(obj.attrs[name], name, size)
    except BadValue as exc:
        raise _Invalid(str(exc)) from None


def _open(path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise StudyFileError(f"{path}: no such file")
    if path.is_dir():
        raise StudyFileError(f"{path}: is a folder, not a study file")
    try:
        f = h5py.File(path, "r")
    except H5_ERRORS as exc:
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head == b"\x89HDF\r\n\x1a\n" or "truncated" in str(exc) or "checksum" in str(exc):
            raise StudyFileError(f"{path}: the file is damaged (truncated or corrupted): {_reason(exc)}") from None
        raise StudyFileError(f"{path}: not an HDF5 file (or unreadable)") from None
    try:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode(errors="replace")
        if fmt != FORMAT:
            raise StudyFileError(f"{path}: not a volumedr study (root attribute format is {fmt!r}, "
                                 f"expected {FORMAT!r})")
        ver = f.attrs.get("format_version")
        try:
            ver = int(np.asarray(ver).reshape(()))
        except (TypeError, ValueError):
            raise StudyFileError(f"{path}: root attribute format_version is missing or not an integer") from None
        if ver > FORMAT_VERSION or ver < 1:
            raise StudyFileError(f"{path}: format_version {ver} is not supported (this volumedr reads "
                                 f"1..{FORMAT_VERSION})")
    except StudyFileError:
        f.close()
        raise
    except H5_ERRORS as exc:
        f.close()
        raise StudyFileError(f"{path}: the file is damaged: its root attributes could not be read "
                             f"({_reason(exc)})") from None
    return f


def read_geometry(f: h5py.File, path, n_views: int, rows: int, cols: int, reader: _Reader | None = None
                  ) -> AcquisitionGeometry:
    r = reader or _Reader(f, path)
    geo = r.node(f, "geometry", "/geometry")
    if not isinstance(geo, h5py.Group):
        raise StudyFileError(f"{path}: /geometry must be a group")
    item = "/geometry/source_positions_mm"
    src = r.required(item, lambda: _numeric(r.node(geo, "source_positions_mm", item), item, ndim=2))
    if src.shape[1] != 3:
        raise StudyFileError(f"{path}: /geometry/source_positions_mm must be (n_views, 3), got {src.shape}")
    if len(src) != n_views:
        raise StudyFileError(f"{path}: /projections has {n_views} views but /geometry/source_positions_mm has {len(src)}")
    item = "/geometry/detector_centres_mm"
    det_ds = r.node(geo, "detector_centres_mm", item, required=False)
    # the detector centres are part of the geometry: a broken one refuses the file (zeros would
    # silently turn an opposed sweep into a stationary-detector one)
    det = r.required(item, lambda: _numeric(det_ds, item, ndim=2)) if det_ds is not None else np.zeros_like(src)
    if det.shape != src.shape:
        raise StudyFileError(f"{path}: /geometry/detector_centres_mm must be {src.shape}, got {det.shape}")
    pitch = r.required("/geometry attribute detector_pixel_pitch_mm",
                       lambda: _attr_array(geo, "detector_pixel_pitch_mm"))
    if pitch.size == 1:
        pitch = np.repeat(pitch, 2)
    if pitch.size != 2:
        raise StudyFileError(f"{path}: detector_pixel_pitch_mm must be [pitch_row, pitch_col]")
    item = "/geometry/angles_deg"
    angles = r.optional(item, lambda: (_numeric(geo["angles_deg"], item, shape=(n_views,))
                                       if r.has(geo, "angles_deg", item) else None))
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
        v = v.decode(errors="replace")
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v.tolist() if isinstance(v, np.ndarray) else v


def _finite_numbers(v, n=None) -> bool:
    try:
        number_array(v, "", n)
    except BadValue:
        return False
    return True


def _check_finding(fd) -> None:
    if not isinstance(fd, dict):
        raise _Invalid("must be a list of objects")
    if not isinstance(fd.get("name"), str) or not fd["name"]:
        raise _Invalid("has a finding without a name")
    if not _finite_numbers(fd.get("centre_mm"), 3):
        raise _Invalid(f"finding {fd['name']!r} needs centre_mm = [x, y, z] (finite numbers)")
    size = fd.get("size_mm")
    if not _finite_numbers(size, 1) or float(np.asarray(size, float).reshape(-1)[0]) <= 0:
        raise _Invalid(f"finding {fd['name']!r} needs a positive size_mm")


# /case attributes that volumedr reads, with what each must be; others pass through as stored
_DICT_KEYS = ("sweep", "acquisition", "dose_sweep", "dose_plain_film", "dose_published", "reconstruction_defaults")


def _case_value(key: str, raw, value):
    if key in _DICT_KEYS:
        if not isinstance(value, dict):
            raise _Invalid(f"must be a JSON object, got {str(raw)[:40]!r}")
        if key == "sweep" and "source_to_image_mm" in value and not (
                _finite_numbers(value["source_to_image_mm"], 1) and float(value["source_to_image_mm"]) > 0):
            raise _Invalid("has a source_to_image_mm that is not a positive number")
        if key in ("dose_sweep", "dose_plain_film") and "effective_dose_msv" in value and not _finite_numbers(
                value["effective_dose_msv"], 1):
            raise _Invalid("has an effective_dose_msv that is not a number")
        if key == "reconstruction_defaults":
            rng = value.get("range_mm")
            if rng is not None and not (_finite_numbers(rng, 2) and 0 < float(rng[0]) < float(rng[1])):
                raise _Invalid(f"range_mm must be [low, high] heights above the detector, got {rng!r}")
            for k in ("spacing_mm", "thickness_mm"):
                if k in value and not (_finite_numbers(value[k], 1) and float(value[k]) > 0):
                    raise _Invalid(f"{k} must be a positive number, got {value[k]!r}")
    elif key == "object_height_range_mm":
        if not (_finite_numbers(value, 2) and float(value[0]) < float(value[1])):
            raise _Invalid(f"must be [low, high] in mm, got {str(raw)[:40]!r}")
    elif key == "findings":
        if not isinstance(value, list):
            raise _Invalid(f"must be a JSON list, got {str(raw)[:40]!r}")
        for fd in value:
            _check_finding(fd)
    elif key == "patient_axes":
        from ..geometry.patient import PatientFrame

        try:
            PatientFrame(str(value))
        except Exception:
            raise _Invalid(f"must be three patient-axis letters such as LFP, got {str(raw)[:40]!r}") from None
    return value


def _read_case(r: _Reader) -> tuple[dict, list]:
    meta, findings = {}, []
    g = r.node(r.f, "case", "/case", required=False)
    if g is None:
        return meta, findings
    names = r.optional("/case", lambda: list(g.attrs.keys()), default=[])
    for k in names:
        item = f"/case attribute {k}"

        def one(k=k):
            raw = g.attrs[k]
            return _case_value(k, raw, _attr_json(g, k))

        v = r.optional(item, one, default=None)
        if item in r.dropped:
            continue
        if k == "findings":
            findings = v or []
        else:
            meta[k] = v
    return meta, findings


def _read_ct(r: _Reader):
    d = r.f["ct_reference"]
    hu = _numeric(d, "/ct_reference", ndim=3).astype(np.float32)
    spacing = _attr_array(d, "spacing_mm", 3)
    if np.any(spacing <= 0):
        raise _Invalid(f"attribute spacing_mm must be positive, got {spacing.tolist()}")
    origin = _attr_array(d, "origin_mm", 3)
    return CTReference(hu, tuple(spacing), tuple(origin))


def _read_dr(r: _Reader, detector_shape):
    d = r.f["dr"]
    return _numeric(d, "/dr", ndim=2, shape=detector_shape).astype(np.float32)


def read_study(path: str | os.PathLike, *, load_projections: bool = True, load_reconstruction: bool = True) -> Study:
    """Read and validate a study file; errors name the file and the problem."""
    with _open(path) as f:
        r = _Reader(f, path)
        proj_ds = r.node(f, "projections", "/projections")
        if not isinstance(proj_ds, h5py.Dataset):
            raise StudyFileError(f"{path}: /projections must be a dataset")
        if proj_ds.ndim != 3:
            raise StudyFileError(f"{path}: /projections must be 3-D (n_views, rows, cols), got shape {proj_ds.shape}")
        if proj_ds.dtype.kind not in "fiu":
            raise StudyFileError(f"{path}: /projections must be numeric, got {proj_ds.dtype}")
        n, rows, cols = proj_ds.shape
        if min(n, rows, cols) < 1:
            raise StudyFileError(f"{path}: /projections is empty (shape {proj_ds.shape})")
        geometry = read_geometry(f, path, n, rows, cols, reader=r)
        projections = None
        if load_projections:
            check_fits(proj_ds.size * 4 * 1.2, f"reading {path} (/projections {proj_ds.shape})")
            projections = r.required("/projections", lambda: proj_ds[()].astype(np.float32, copy=False))
        dr = (r.optional("/dr", lambda: _read_dr(r, (rows, cols)))
              if r.has(f, "dr", "/dr") else None)
        ct = r.optional("/ct_reference", lambda: _read_ct(r)) if r.has(f, "ct_reference", "/ct_reference") else None
        rec = (r.optional("/reconstruction", lambda: read_reconstruction_group(f, path, load_slices=load_reconstruction))
               if r.has(f, "reconstruction", "/reconstruction") else None)
        meta, findings = _read_case(r)
    return Study(projections=projections, geometry=geometry, dr=dr, ct_reference=ct, reconstruction=rec,
                 metadata=meta, findings=findings, dropped=r.dropped)


def read_reconstruction_group(f, path, *, load_slices=True) -> Reconstruction:
    """``/reconstruction`` of an open file; raises _Invalid or an h5py error when it is broken."""
    g = f["reconstruction"]
    if not isinstance(g, h5py.Group) or "slices" not in g:
        raise _Invalid("has no slices dataset")
    s = g["slices"]
    if not isinstance(s, h5py.Dataset) or s.ndim != 3 or s.dtype.kind not in "fiu" or min(s.shape) < 1:
        raise _Invalid(f"slices must be a numeric (n_slices, rows, cols) dataset, got {getattr(s, 'shape', None)}")
    heights = _attr_array(g, "heights_mm")
    spacing = _attr_array(g, "pixel_spacing_mm", 2)
    origin = _attr_array(g, "origin_mm", 2)
    if np.any(spacing <= 0):
        raise _Invalid(f"pixel_spacing_mm must be positive, got {spacing.tolist()}")
    if len(heights) != s.shape[0]:
        raise _Invalid(f"has {s.shape[0]} slices but {len(heights)} heights")
    if np.any(np.diff(heights) <= 0):
        raise _Invalid("heights_mm must increase from slice to slice")
    method = g.attrs.get("method", "")
    method = method.decode(errors="replace") if isinstance(method, bytes) else str(method)
    params = _attr_json(g, "parameters", {}) or {}
    if not isinstance(params, dict):
        raise _Invalid("attribute parameters must be a JSON object")
    if method not in RECONSTRUCTION_METHODS and params.get("imported_from") != "DICOM":
        raise _Invalid(f"has an unknown method {method!r} (volumedr writes {', '.join(RECONSTRUCTION_METHODS)}; "
                       "slices imported from DICOM say so in their parameters)")
    thickness = g.attrs.get("thickness_mm", np.nan)
    try:
        thickness = float(np.asarray(thickness, float).reshape(()))
    except (TypeError, ValueError):
        raise _Invalid(f"thickness_mm must be a number, got {str(thickness)[:40]!r}") from None
    if not (math.isnan(thickness) or thickness > 0):
        raise _Invalid(f"thickness_mm must be positive, got {thickness:g}")
    slices = fraction = None
    if load_slices:
        slices = _numeric(s, "/reconstruction/slices").astype(np.float32, copy=False)
        if "view_fraction" in g:
            vf = g["view_fraction"]
            if not isinstance(vf, h5py.Dataset) or vf.dtype != np.uint8 or vf.shape != s.shape:
                raise _Invalid(f"view_fraction must be uint8 of the slices' shape {s.shape}")
            fraction = vf[()]
    return Reconstruction(slices=slices, heights_mm=heights, pixel_spacing_mm=tuple(spacing),
                          origin_mm=tuple(origin), thickness_mm=thickness, method=method, parameters=params,
                          view_fraction=fraction)
