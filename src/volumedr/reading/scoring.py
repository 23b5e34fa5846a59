"""Scoring a reading: marks against a study's findings, per modality (the plain film and the slices).

A mark is where a reader pointed, with a confidence 1-5:

* on the **slices** (``tomo``): x, y in the slices' coordinates (mm, the object frame) at the height z
  of the slice it was placed on;
* on the **film**: x, y in mm on the detector plane, where the reader saw it; it is compared with the
  finding's shadow from the plain film's focal spot (x = y = 0 at the sweep's source-to-image distance
  D unless the study says otherwise): a finding at (x, y, z) casts it at (x, y) * D / (D - z), and its
  radius is magnified alike.

A mark **hits** a finding when its in-plane distance from the finding's centre (its shadow, on the film)
is at most the finding's radius plus ``TOLERANCE_MM`` and, on the slices, its height is within half the
finding's size plus one slice spacing of the centre.  ``TOLERANCE_MM`` = 5 mm: Haygood et al. (BJR 2013)
found 70 % of readers' marks on chest films within 10, 20 and 30 pixels (about 2, 4 and 6 mm at their
0.2 mm) of the centre of small, medium and large nodules and advise basing the radius on the larger
lesions.  Marks are taken in order of confidence (highest first, then the order given); each takes the
nearest finding it hits that no mark has taken yet, as a lesion localisation (LL); every other mark is
a non-lesion localisation (NL), so one finding counts once, at its highest confidence.
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field

from ..errors import ParameterError

TOLERANCE_MM = 5.0
MODALITIES = ("film", "tomo")


@dataclass(frozen=True)
class Mark:
    modality: str
    x_mm: float
    y_mm: float
    z_mm: float | None
    confidence: int

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ParameterError(f"a mark's modality must be film or tomo, got {self.modality!r}")
        for name in ("x_mm", "y_mm") + (("z_mm",) if self.modality == "tomo" else ()):
            v = getattr(self, name)
            if v is None or not math.isfinite(float(v)):
                raise ParameterError(f"a {self.modality} mark needs a finite {name}, got {v!r}")
        if not (isinstance(self.confidence, int) and 1 <= self.confidence <= 5):
            raise ParameterError(f"a mark's confidence must be 1 to 5, got {self.confidence!r}")


@dataclass(frozen=True)
class Target:
    """A finding as the scoring sees it."""

    name: str
    centre_mm: tuple[float, float, float]
    size_mm: float


@dataclass
class ModalityScore:
    modality: str
    n_findings: int
    hits: list = field(default_factory=list)  # (finding name, confidence, distance mm, the mark as a dict)
    misses: list = field(default_factory=list)  # finding names
    non_lesion_localisations: list = field(default_factory=list)  # marks (as dicts)

    @property
    def sensitivity(self) -> float | None:
        return len(self.hits) / self.n_findings if self.n_findings else None

    @property
    def false_positives(self) -> int:
        return len(self.non_lesion_localisations)

    def as_dict(self) -> dict:
        return {"modality": self.modality, "n_findings": self.n_findings, "sensitivity": self.sensitivity,
                "false_positives": self.false_positives,
                "hits": [{"finding": n, "confidence": c, "distance_mm": round(d, 2), "mark": m}
                         for n, c, d, m in self.hits],
                "misses": list(self.misses),
                "lesion_localisations": [{"finding": n, "confidence": c} for n, c, _, _ in self.hits],
                "non_lesion_localisations": list(self.non_lesion_localisations)}


def _hit_distance(mark: Mark, t: Target, sid_mm: float, spacing_mm: float) -> float | None:
    x, y, z = t.centre_mm
    r = t.size_mm / 2
    if mark.modality == "film":
        m = sid_mm / (sid_mm - z)
        d = math.hypot(mark.x_mm - x * m, mark.y_mm - y * m)
        return d if d <= r * m + TOLERANCE_MM else None
    d = math.hypot(mark.x_mm - x, mark.y_mm - y)
    if d > r + TOLERANCE_MM or abs(mark.z_mm - z) > r + spacing_mm:
        return None
    return d


def score(marks, targets, *, sid_mm: float, spacing_mm: float) -> dict[str, ModalityScore]:
    """Score ``marks`` (Marks) against ``targets`` (Targets) for each modality."""
    if not (math.isfinite(sid_mm) and sid_mm > 0):
        raise ParameterError(f"the film's source-to-image distance must be positive, got {sid_mm}")
    out = {}
    for modality in MODALITIES:
        ms = [m for m in marks if m.modality == modality]
        order = sorted(range(len(ms)), key=lambda i: (-ms[i].confidence, i))
        taken: dict[str, tuple[int, float]] = {}
        res = ModalityScore(modality, len(targets))
        for i in order:
            m = ms[i]
            best = None
            for t in targets:
                if t.name in taken:
                    continue
                d = _hit_distance(m, t, sid_mm, spacing_mm)
                if d is not None and (best is None or d < best[1]):
                    best = (t, d)
            if best is None:
                res.non_lesion_localisations.append(asdict(m))
            else:
                taken[best[0].name] = (m.confidence, best[1])
                res.hits.append((best[0].name, m.confidence, best[1], asdict(m)))
        res.misses = [t.name for t in targets if t.name not in taken]
        out[modality] = res
    return out


def read_marks(path) -> list[Mark]:
    """Marks from a CSV with the columns modality, x_mm, y_mm, z_mm (empty for film), confidence."""
    need = ("modality", "x_mm", "y_mm", "z_mm", "confidence")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise ParameterError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(need)})")
            marks = []
            for line, row in enumerate(reader, start=2):
                try:
                    mod = (row["modality"] or "").strip().lower()
                    z = (row["z_mm"] or "").strip()
                    conf_text = (row["confidence"] or "").strip()
                    if not conf_text.lstrip("-").isdigit():
                        raise ParameterError(f"the confidence must be a whole number 1 to 5, got {conf_text!r}")
                    marks.append(Mark(mod, float(row["x_mm"]), float(row["y_mm"]),
                                      float(z) if z else None, int(conf_text)))
                except (ValueError, TypeError, ParameterError) as exc:
                    raise ParameterError(f"{path}, line {line}: {exc}") from None
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such marks file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"{path}: cannot read the marks ({exc})") from None
    return marks


def study_targets(study) -> tuple[list[Target], float, float]:
    """(targets, film SID mm, slice spacing mm) of a study: its findings, the sweep's source-to-image
    distance, and the spacing of its slices (1 mm without any)."""
    targets = [Target(str(f["name"]), tuple(float(v) for v in f["centre_mm"]), float(f["size_mm"]))
               for f in study.findings]
    sweep = study.metadata.get("sweep") or {}
    sid = float(sweep.get("source_to_image_mm") or float(study.geometry.source_positions_mm[:, 2].mean()))
    rec = study.reconstruction
    spacing = float(rec.heights_mm[1] - rec.heights_mm[0]) if rec is not None and len(rec.heights_mm) > 1 else 1.0
    return targets, sid, spacing
