"""Bundled cases: human-readable TOML files under phantoms/, loaded by name.

A case file has ``[case]`` (name, title, region, history, teaching notes,
dose coefficient), ``[protocol]`` (default sweep and exposure),
``[reconstruction]`` (default slice settings), a list of ``[[object]]``
primitives in painter's order (later wins where they overlap) and a list of
``[[finding]]`` entries.  A case may instead hold a ``[volume]`` (a CT
volume of HU), with ``[[lesion]]`` spheres painted into its voxels and
``[[object]]`` primitives inside it (a hybrid phantom: each analytic object
replaces the voxel material it occupies and keeps its exact edges).  See
docs/cases.md.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CaseError, VolumedrError
from ..resources import phantoms_dir
from . import primitives as P
from .materials import bundled_materials


@dataclass(frozen=True)
class Finding:
    """A teaching finding: what, where (mm) and how big."""

    name: str
    centre_mm: tuple[float, float, float]
    size_mm: float
    occult_on_plain_film: bool = False
    description: str = ""
    code: str = ""
    contrast: str = "dense"  # "dense" (brighter than its surround: nodule, stone) or "lucent" (lytic lesion, gas)


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    region: str
    history: str
    teaching: str
    primitives: tuple[P.Primitive, ...]  # analytic objects (inside the volume, if the case has one)
    findings: tuple[Finding, ...]
    protocol: dict = field(default_factory=dict)
    reconstruction: dict = field(default_factory=dict)
    field_mm: tuple[float, float] = (350.0, 350.0)
    effective_dose_coeff_msv_per_gy_cm2: float = 0.26
    effective_dose_reference: str = ""
    source: str = ""
    patient_axes: str = "LFP"  # patient directions of +x, +y, +z (geometry/patient.py); LFP = PA
    body_part: str = ""  # DICOM Body Part Examined (e.g. CHEST)
    volume: object = None  # a VoxelVolume (phantoms/volume.py) for cases made from a real CT
    notes: str = ""  # sources and credits (e.g. the CT collection a voxel case comes from)
    anatomy_source: str = "analytic"  # where the anatomy comes from: "analytic", or the CT's collection and subject
    # published effective doses for this examination: {"film_msv": (lo, hi), "sweep_msv": (lo, hi), "reference": ...}
    published_dose: dict = field(default_factory=dict)
    texture: object = None  # a TrabecularTexture (phantoms/texture.py) of some analytic bones, or None

    def bounds_mm(self) -> np.ndarray:
        """Axis-aligned bounds of all primitives and the voxel volume's body, shape (2, 3)."""
        boxes = [p.bounding_box_mm() for p in self.primitives]
        if self.volume is not None:
            boxes.append(self.volume.body_bounds_mm())
        b = np.array(boxes)
        return np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)])


_OBJ_KEYS = {
    "ellipsoid": {"centre_mm", "semi_axes_mm", "rotation_deg"},
    "sphere": {"centre_mm", "radius_mm", "diameter_mm"},
    "box": {"centre_mm", "size_mm", "rotation_deg"},
    "cylinder": {"centre_mm", "axis", "radius_mm", "radius_b_mm", "length_mm", "p0_mm", "p1_mm", "roll_deg"},
    "tube": {"points_mm", "radius_mm"},
}


def _header_lines(text: str, pattern: str) -> list[int]:
    """Line numbers (1-based) of the lines that match ``pattern`` (a table header)."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if re.match(pattern, line)]


_OBJECT_RX = r"\s*\[\[\s*object\s*\]\]"
_VOLUME_RX = r"\s*\[\s*volume\s*\]"
_LESION_RX = r"\s*\[\[\s*lesion\s*\]\]"
_DOSE_RX = r"\s*\[\s*dose\s*\]"
_TEXTURE_RX = r"\s*\[\s*texture\s*\]"
_FINDING_RX = r"\s*\[\[\s*finding\s*\]\]"


def _build(obj: dict, where: str) -> list[P.Primitive]:
    t = obj.get("type")
    if t not in _OBJ_KEYS:
        raise CaseError(f"{where}: unknown object type {t!r}; use one of {', '.join(_OBJ_KEYS)}")
    mat = obj.get("material")
    mats = bundled_materials()
    if mat not in mats:
        raise CaseError(f"{where}: unknown material {mat!r}; known: {', '.join(sorted(mats))}")
    extra = set(obj) - _OBJ_KEYS[t] - {"type", "material", "label", "finding"}
    if extra:
        raise CaseError(f"{where}: {t} does not take {', '.join(sorted(extra))}")
    label = str(obj.get("label", t))
    try:
        if t == "ellipsoid":
            return [P.ellipsoid(obj["centre_mm"], obj["semi_axes_mm"], mat, obj.get("rotation_deg", (0, 0, 0)), label)]
        if t == "sphere":
            r = obj["radius_mm"] if "radius_mm" in obj else obj["diameter_mm"] / 2.0
            return [P.sphere(obj["centre_mm"], r, mat, label)]
        if t == "box":
            return [P.box(obj["centre_mm"], obj["size_mm"], mat, obj.get("rotation_deg", (0, 0, 0)), label)]
        if t == "cylinder":
            if "p0_mm" in obj:
                return [P.cylinder_between(obj["p0_mm"], obj["p1_mm"], obj["radius_mm"], mat, label)]
            return [P.cylinder(obj["centre_mm"], obj.get("axis", (0, 0, 1)), obj["radius_mm"], obj["length_mm"],
                               mat, label, obj.get("radius_b_mm"), obj.get("roll_deg", 0.0))]
        return P.tube(obj["points_mm"], obj["radius_mm"], mat, label)
    except KeyError as exc:
        raise CaseError(f"{where}: {t} {label!r} is missing {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise CaseError(f"{where}: {t} {label!r}: {exc}") from None
    except CaseError as exc:
        raise CaseError(f"{where}: {exc}") from None


def load_case_file(path: Path | str, with_findings: bool = True) -> Case:
    """Load and validate one case file; errors name the file and line.

    An ``[[object]]`` or ``[[lesion]]`` may name the ``[[finding]]`` it makes up
    (``finding = "..."``); ``with_findings=False`` leaves those out, giving the
    same anatomy without the findings (used to measure a finding's own signal, and as the normal variant
    of a case: its ``findings`` are then empty, so a study made from it claims none).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(f"{path}: cannot read case file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{path}: not valid TOML: {exc}") from None
    meta = data.get("case", {})
    if "name" not in meta:
        raise CaseError(f"{path}: [case] needs a name")
    findings = []
    for i, f in enumerate(data.get("finding", [])):
        fw = f"{path}:{_line_of(text, _FINDING_RX, i)} (finding {i + 1})"
        try:
            c = tuple(float(v) for v in f["centre_mm"])
            if len(c) != 3:
                raise ValueError("centre_mm needs 3 numbers")
            contrast = str(f.get("contrast", "dense"))
            if contrast not in ("dense", "lucent"):
                raise ValueError(f"contrast must be 'dense' or 'lucent', got {contrast!r}")
            findings.append(Finding(str(f["name"]), c, float(f["size_mm"]), bool(f.get("occult_on_plain_film", False)),
                                    str(f.get("description", "")), str(f.get("code", "")), contrast))
            if findings[-1].name in {g.name for g in findings[:-1]}:
                raise ValueError(f"a second finding named {findings[-1].name!r}")
        except KeyError as exc:
            raise CaseError(f"{fw}: missing {exc.args[0]}") from None
        except (ValueError, TypeError) as exc:
            raise CaseError(f"{fw}: {exc}") from None
    names = {f.name for f in findings}
    lines = _header_lines(text, _OBJECT_RX)
    prims: list[P.Primitive] = []
    objs = data.get("object", [])
    volume = _load_volume(data, path, text, names, with_findings) if "volume" in data else None
    if not objs and volume is None:
        raise CaseError(f"{path}: a case needs at least one [[object]] (or a [volume])")
    for i, obj in enumerate(objs):
        where = f"{path}:{lines[i] if i < len(lines) else '?'} (object {i + 1})"
        if not _keep(obj, names, with_findings, where):
            continue
        built = _build(obj, where)
        if "finding" in obj:
            _check_on_finding(built, findings, obj["finding"], where)
        prims.extend(built)
    texture = None
    if "texture" in data:
        from .texture import parse_texture

        texture = parse_texture(data["texture"], f"{path}:{_line_of(text, _TEXTURE_RX)}", {p.label for p in prims})
    fm = meta.get("field_mm", (350.0, 350.0))
    published = _published_dose(data.get("dose", {}), f"{path}:{_line_of(text, _DOSE_RX)}")
    return Case(
        name=str(meta["name"]), title=str(meta.get("title", meta["name"])), region=str(meta.get("region", "")),
        history=str(meta.get("history", "")).strip(), teaching=str(meta.get("teaching", "")).strip(),
        primitives=tuple(prims), findings=tuple(findings) if with_findings else (),  # a normal variant has none
        protocol=dict(data.get("protocol", {})),
        reconstruction=dict(data.get("reconstruction", {})), field_mm=(float(fm[0]), float(fm[1])),
        effective_dose_coeff_msv_per_gy_cm2=float(meta.get("effective_dose_coeff_msv_per_gy_cm2", 0.26)),
        effective_dose_reference=str(meta.get("effective_dose_reference", "")), source=str(path),
        patient_axes=_patient_axes(meta.get("patient_axes", "LFP"), path), body_part=str(meta.get("body_part", "")).upper(),
        volume=volume, texture=texture, notes=str(meta.get("notes", "")).strip(), published_dose=published,
        anatomy_source=str(meta.get("anatomy_source") or ("CT (see the notes)" if volume is not None else "analytic")))


def _published_dose(table: dict, where: str) -> dict:
    """The [dose] table: published effective-dose ranges (mSv) for the film and the sweep, with the source."""
    out = {}
    for key in ("film_msv", "sweep_msv"):
        if key in table:
            v = table[key]
            try:
                lo, hi = (float(v[0]), float(v[1])) if isinstance(v, list) else (float(v), float(v))
            except (TypeError, ValueError, IndexError):
                raise CaseError(f"{where}: [dose] {key} must be a number or [low, high] in mSv, got {v!r}") from None
            if not (0 < lo <= hi):
                raise CaseError(f"{where}: [dose] {key} must satisfy 0 < low <= high, got {v!r}")
            out[key] = (lo, hi)
    extra = set(table) - {"film_msv", "sweep_msv", "reference"}
    if extra:
        raise CaseError(f"{where}: [dose] does not take {', '.join(sorted(extra))}")
    if out:
        out["reference"] = str(table.get("reference", ""))
    return out


def _keep(entry: dict, finding_names: set, with_findings: bool, where: str) -> bool:
    """Whether to build an object or lesion; checks that its ``finding`` names a [[finding]]."""
    if "finding" not in entry:
        return True
    name = entry["finding"]
    if name not in finding_names:
        known = ", ".join(repr(n) for n in sorted(finding_names)) or "none"
        raise CaseError(f"{where}: finding = {name!r} names no [[finding]] (findings: {known})")
    return with_findings


def _check_on_finding(prims: list[P.Primitive], findings: list[Finding], name: str, where: str) -> None:
    """An object that makes up a finding must reach to within the finding's size of its centre."""
    f = next(g for g in findings if g.name == name)
    c = np.asarray(f.centre_mm)
    for p in prims:
        lo, hi = p.bounding_box_mm()
        if np.all(c >= lo - f.size_mm) and np.all(c <= hi + f.size_mm):
            return
    raise CaseError(f"{where}: this object is part of finding {name!r} but lies away from its centre "
                    f"{tuple(f.centre_mm)} mm")


def _line_of(text: str, pattern: str, index: int = 0):
    hits = _header_lines(text, pattern)
    return hits[index] if index < len(hits) else "?"


def _load_volume(data: dict, path: Path, text: str, finding_names: set = frozenset(), with_findings: bool = True):
    """A [volume] (a CT volume file beside the case) with its [[lesion]] spheres painted in."""
    from .volume import VoxelVolume, insert_sphere

    spec = data["volume"]
    where = f"{path}:{_line_of(text, _VOLUME_RX)}"
    if "file" not in spec:
        raise CaseError(f"{where}: [volume] needs file = \"....npz\" (relative to the case file)")
    vpath = (path.parent / str(spec["file"])).resolve()
    try:
        with np.load(vpath) as z:
            hu = z["hu"].astype(np.float32)
            spacing = tuple(float(v) for v in z["spacing_mm"])
            origin = tuple(float(v) for v in z["origin_mm"])
    except FileNotFoundError:
        raise CaseError(f"{where}: volume file {vpath} not found") from None
    except (OSError, KeyError, ValueError) as exc:
        raise CaseError(f"{where}: volume file {vpath} is not a volumedr volume (.npz with hu, spacing_mm, "
                        f"origin_mm): {exc}") from None
    vol = VoxelVolume(hu=hu, spacing_mm=spacing, origin_mm=origin,
                      effective_energy_kev=float(spec.get("effective_energy_kev", 70.0)),
                      description=str(spec.get("description", "")))
    for i, les in enumerate(data.get("lesion", [])):
        lw = f"{path}:{_line_of(text, _LESION_RX, i)} (lesion {i + 1})"
        if not _keep(les, finding_names, with_findings, lw):
            continue
        try:
            c = [float(v) for v in les["centre_mm"]]
            if len(c) != 3:
                raise ValueError("centre_mm needs 3 numbers")
            d = float(les["diameter_mm"])
            if not d > 0:
                raise ValueError(f"diameter_mm must be positive, got {d}")
            insert_sphere(vol, c, d, float(les["hu"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise CaseError(f"{lw}: {exc}") from None
        except CaseError as exc:
            raise CaseError(f"{lw}: {exc}") from None
    return vol


def _patient_axes(value, path) -> str:
    from ..geometry.patient import PatientFrame

    try:
        return PatientFrame(str(value)).axes
    except VolumedrError as exc:
        raise CaseError(f"{path}: [case] patient_axes: {exc}") from None


def case_names() -> list[str]:
    return sorted(p.stem for p in phantoms_dir().glob("*.toml"))


def load_case(name: str, with_findings: bool = True) -> Case:
    """Load a bundled case by name (or a path to a case file)."""
    p = Path(name)
    if p.suffix == ".toml" and p.exists():
        return load_case_file(p, with_findings)
    path = phantoms_dir() / f"{name}.toml"
    if not path.exists():
        known = ", ".join(case_names()) or "none"
        raise CaseError(f"unknown case {name!r}; bundled cases: {known}")
    return load_case_file(path, with_findings)


def case_summary(name: str) -> str:
    try:
        c = load_case(name)
    except VolumedrError as exc:
        return f"{name:14s} (cannot load: {exc})"
    return f"{c.name:14s} {c.region:10s} {c.title}  [anatomy: {c.anatomy_source}]"
