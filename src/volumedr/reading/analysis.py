"""A trainee's results: sensitivity, false positives, the AFROC / wAFROC figure of merit with a bootstrap
confidence interval, and reading time, per session and over all sessions, film against volume DR.

The figures of merit are Chakraborty's (as RJafroc computes them), from the readings' FROC data:

* every finding of a case with findings is a lesion with a rating: the confidence of the mark that
  hit it (its lesion localisation), or -inf when no mark did;
* every normal case (the normal variant of a bundled case) has a false-positive rating: the highest
  confidence of its non-lesion localisations, or -inf when it has none;
* wAFROC FOM = 1/(K1 K2) sum over normal cases k1 and cases with findings k2 of sum over the lesions l
  of k2 of W_l psi(FP_k1, LL_k2l), with equal weights W_l = 1 / L_k2; AFROC FOM is the same with every
  lesion weighted alike, 1/(K1 N_L) sum_k1 sum_lesions psi; psi(x, y) is 1 when y > x, 0.5 when equal
  (two -inf count as equal, as in RJafroc), 0 otherwise.

The FOM needs at least one normal case and one case with findings; a session without both has none
(the pooled figure over all sessions usually has them).  The 95 % interval is a percentile bootstrap
over cases (normal and abnormal cases resampled apart, ``BOOTSTRAP`` times, seeded).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .scoring import MODALITIES

BOOTSTRAP = 1000
NEG = -math.inf

# Published sensitivities to set a trainee's against (chosen by the cases read).
REFERENCES = (
    {"cases": ("chest", "chest_phantom"), "finding": "lung nodules", "film": 0.22, "tomo": 0.70,
     "source": "Dobbins et al., Med Phys 2008 (175 CT-proven nodules): 70 % tomosynthesis vs 22 % PA film"},
    {"cases": ("wrist",), "finding": "scaphoid fractures", "film": 0.705, "tomo": 0.82,
     "source": "Ottenin et al., AJR 2012 (100 patients): 77-87 % tomosynthesis vs 61-80 % radiographs "
               "(mid-range shown)"},
)


@dataclass(frozen=True)
class CaseReading:
    """One submitted case as the analysis sees it."""

    session_id: int
    case: str
    variant: str
    n_lesions: int
    ll: dict  # modality -> list of lesion ratings (-inf for a missed lesion), one per finding
    nl: dict  # modality -> list of non-lesion localisation confidences
    seconds: dict  # modality -> reading time


def reading_from_score(session_id: int, case: str, variant: str, score: dict, seconds: dict | None = None
                       ) -> CaseReading:
    ll, nl, n = {}, {}, 0
    for m in MODALITIES:
        s = score.get(m) or {"n_findings": 0, "hits": [], "non_lesion_localisations": []}
        n = int(s["n_findings"])
        rated = [float(h["confidence"]) for h in s["hits"]]
        ll[m] = rated + [NEG] * (n - len(rated))
        nl[m] = [int(x["confidence"]) for x in s["non_lesion_localisations"]]
    return CaseReading(session_id, case, variant, n, ll, nl, dict(seconds or {}))


def store_readings(store, *, trainee: str | None = None, session_id: int | None = None) -> list[CaseReading]:
    """The submitted cases of a session, or of every session of a trainee, in reading order."""
    q = ("SELECT sh.session_id, sh.id, sh.case_name, sh.variant, sc.json FROM shown sh "
         "JOIN sessions s ON s.id = sh.session_id JOIN trainees t ON t.id = s.trainee_id "
         "JOIN scores sc ON sc.shown_id = sh.id WHERE sh.submitted_utc IS NOT NULL")
    args: list = []
    if trainee is not None:
        q += " AND t.name = ?"
        args.append(" ".join(str(trainee).split()))
    if session_id is not None:
        q += " AND sh.session_id = ?"
        args.append(int(session_id))
    rows = store.db.execute(q + " ORDER BY sh.session_id, sh.position", args).fetchall()
    return [reading_from_score(sid, case, variant, json.loads(js), store.reading_time(shown_id))
            for sid, shown_id, case, variant, js in rows]


def _psi(fp: float, ll: float) -> float:
    return 1.0 if ll > fp else (0.5 if ll == fp else 0.0)


def _fom_arrays(readings, modality: str):
    fps = [max(r.nl[modality], default=NEG) for r in readings if r.n_lesions == 0]
    les = [r.ll[modality] for r in readings if r.n_lesions > 0]
    return fps, les


def _fom(fps, les, weighted: bool) -> float | None:
    if not fps or not les:
        return None
    fp = np.asarray(fps, float)
    total, norm = 0.0, 0.0
    for lesions in les:
        w = 1.0 / len(lesions) if weighted else 1.0
        for rating in lesions:
            total += w * float(np.sum(np.where(rating > fp, 1.0, np.where(rating == fp, 0.5, 0.0))))
            norm += w * len(fp)
    return total / norm


def figure_of_merit(readings, modality: str, *, weighted: bool = True) -> float | None:
    """wAFROC (``weighted``) or AFROC FOM of ``readings`` for one modality; None without both a normal
    case and a case with findings."""
    return _fom(*_fom_arrays(readings, modality), weighted)


def bootstrap_ci(readings, modality: str, *, weighted: bool = True, n: int = BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the FOM, resampling normal and abnormal cases apart."""
    fps, les = _fom_arrays(readings, modality)
    if not fps or not les:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        f = [fps[i] for i in rng.integers(0, len(fps), len(fps))]
        ls = [les[i] for i in rng.integers(0, len(les), len(les))]
        vals.append(_fom(f, ls, weighted))
    a = (1 - level) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return float(lo), float(hi)


def summarise(readings, *, seed: int = 0) -> dict:
    """Per modality: sensitivity (hits over all findings), false positives per case, the wAFROC and AFROC
    FOM with the wAFROC's 95 % bootstrap interval, and the mean reading time per case."""
    out = {"cases": len(readings), "normal_cases": sum(r.n_lesions == 0 for r in readings),
           "findings": sum(r.n_lesions for r in readings)}
    for m in MODALITIES:
        hits = sum(sum(1 for v in r.ll[m] if v != NEG) for r in readings)
        nl = sum(len(r.nl[m]) for r in readings)
        secs = [r.seconds.get(m) for r in readings if r.seconds.get(m) is not None]
        out[m] = {"sensitivity": hits / out["findings"] if out["findings"] else None, "hits": hits,
                  "false_positives_per_case": nl / len(readings) if readings else None,
                  "wafroc": figure_of_merit(readings, m), "wafroc_ci95": bootstrap_ci(readings, m, seed=seed),
                  "afroc": figure_of_merit(readings, m, weighted=False),
                  "seconds_per_case": float(np.mean(secs)) if secs else None}
    return out


def history(store, trainee: str) -> dict:
    """A trainee's results per session (in order) and over all of them."""
    rs = store_readings(store, trainee=trainee)
    sessions = []
    for sid in sorted({r.session_id for r in rs}):
        mine = [r for r in rs if r.session_id == sid]
        sessions.append({"session": sid, **summarise(mine)})
    return {"trainee": " ".join(str(trainee).split()), "sessions": sessions, "all": summarise(rs)}


def references_for(cases) -> list[dict]:
    """The published reference values that apply to these cases (names)."""
    cases = {str(c) for c in cases}
    return [r for r in REFERENCES if cases & set(r["cases"])]
