"""Readings out of the database in the formats the analysis tools read.

* ``rjafroc``: RJafroc's FROC data layout (Chakraborty), its three workbook sheets as CSV files beside
  each other: ``STEM.Truth.csv`` (CaseID, LesionID, Weight; a normal case has LesionID 0, Weight 0),
  ``STEM.NL.csv`` (ReaderID, ModalityID, CaseID, NL_Rating) and ``STEM.LL.csv`` (ReaderID, ModalityID,
  CaseID, LesionID, LL_Rating), and ``STEM.cases.csv`` naming each CaseID (case and variant).
  ModalityID is ``film`` or ``tomo``; ratings are the readers' confidences 1-5.
* ``imrmc``: iMRMC's input file: a header, then after ``BEGIN DATA:`` one truth row per case
  (``-1,CaseID,0,truth``) and one row per reader, case and modality with a ROC score: the highest
  confidence of the reader's marks on that case and modality, 0 when there are none (the "highest
  rating" inferred ROC score of the FROC literature).
* ``csv``: every mark, one row each, with the reader, session, case, variant, modality, position,
  confidence and what it was scored as (the finding it hit, or empty for a non-lesion localisation).

A case is the same case for every reader when it has the same name and variant.  A reader who read a
case twice is counted once, with the later reading.  Only submitted cases are exported.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import ParameterError

FORMATS = ("rjafroc", "imrmc", "csv")


def _readings(store, trainee: str | None):
    """(reader, session id, case key, case name, variant, shown id, score dict, marks) of every submitted
    case, the latest reading of each reader and case."""
    q = ("SELECT t.name, s.id, sh.case_name, sh.variant, sh.id, sc.json FROM shown sh "
         "JOIN sessions s ON s.id = sh.session_id JOIN trainees t ON t.id = s.trainee_id "
         "JOIN scores sc ON sc.shown_id = sh.id WHERE sh.submitted_utc IS NOT NULL")
    args = ()
    if trainee is not None:
        q += " AND t.name = ?"
        args = (" ".join(trainee.split()),)
    latest = {}
    for reader, sid, case, variant, shown_id, js in store.db.execute(q + " ORDER BY sh.submitted_utc, sh.id", args):
        latest[(reader, case, variant)] = (reader, sid, f"{case}/{variant}", case, variant, shown_id, json.loads(js),
                                           store.marks(shown_id))
    return list(latest.values())


def _lesions(case: str, variant: str) -> list[str]:
    if variant == "normal":
        return []
    from ..phantoms.case import load_case

    return [f.name for f in load_case(case).findings]


def export(store, fmt: str, output, trainee: str | None = None) -> list[Path]:
    """Write the readings in ``fmt``; returns the files written."""
    if fmt not in FORMATS:
        raise ParameterError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = _readings(store, trainee)
    if not rows:
        raise ParameterError("no submitted readings" + (f" by {trainee}" if trainee else "") + " to export")
    out = Path(output)
    if not out.parent.exists():
        raise ParameterError(f"{out.parent}: no such folder")
    cases = sorted({(r[3], r[4]) for r in rows})
    case_id = {c: i + 1 for i, c in enumerate(cases)}
    readers = sorted({r[0] for r in rows})
    reader_id = {name: i + 1 for i, name in enumerate(readers)}
    if fmt == "csv":
        with open(out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["reader", "session", "case", "variant", "modality", "x_mm", "y_mm", "z_mm", "confidence",
                        "finding_hit"])
            for reader, sid, _, case, variant, _, sc, marks in rows:
                for _, mk in marks:
                    d = {"modality": mk.modality, "x_mm": mk.x_mm, "y_mm": mk.y_mm, "z_mm": mk.z_mm,
                         "confidence": mk.confidence}
                    hit = next((h["finding"] for h in sc[mk.modality]["hits"] if h["mark"] == d), "")
                    w.writerow([reader, sid, case, variant, mk.modality, mk.x_mm, mk.y_mm,
                                "" if mk.z_mm is None else mk.z_mm, mk.confidence, hit])
        return [out]
    if fmt == "rjafroc":
        stem = out.with_suffix("") if out.suffix.lower() == ".csv" else out
        files = {k: stem.with_name(stem.name + f".{k}.csv") for k in ("Truth", "NL", "LL", "cases")}
        with open(files["Truth"], "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["CaseID", "LesionID", "Weight"])
            for c in cases:
                les = _lesions(*c)
                if not les:
                    w.writerow([case_id[c], 0, 0])
                for i, _ in enumerate(les):
                    w.writerow([case_id[c], i + 1, round(1.0 / len(les), 6)])
        with open(files["NL"], "w", newline="", encoding="utf-8") as nl_fh, \
                open(files["LL"], "w", newline="", encoding="utf-8") as ll_fh:
            nl, ll = csv.writer(nl_fh), csv.writer(ll_fh)
            nl.writerow(["ReaderID", "ModalityID", "CaseID", "NL_Rating"])
            ll.writerow(["ReaderID", "ModalityID", "CaseID", "LesionID", "LL_Rating"])
            for reader, _, _, case, variant, _, sc, _ in rows:
                les = _lesions(case, variant)
                for m in ("film", "tomo"):
                    for n in sc[m]["non_lesion_localisations"]:
                        nl.writerow([reader_id[reader], m, case_id[(case, variant)], n["confidence"]])
                    for h in sc[m]["hits"]:
                        ll.writerow([reader_id[reader], m, case_id[(case, variant)], les.index(h["finding"]) + 1,
                                     h["confidence"]])
        with open(files["cases"], "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["CaseID", "case", "variant"])
            w.writerows([case_id[c], c[0], c[1]] for c in cases)
        return list(files.values())
    # imrmc
    normal = [c for c in cases if not _lesions(*c)]
    lines = ["volumedr reading export (iMRMC input)", f"NR: {len(readers)}", f"N0: {len(normal)}",
             f"N1: {len(cases) - len(normal)}", "NM: 2", "BEGIN DATA:"]
    lines += [f"-1,{case_id[c]},0,{0 if c in normal else 1}" for c in cases]
    for reader, _, _, case, variant, _, sc, marks in rows:
        for mi, m in enumerate(("film", "tomo"), start=1):
            conf = [mk.confidence for _, mk in marks if mk.modality == m]
            lines.append(f"{reader_id[reader]},{case_id[(case, variant)]},{mi},{max(conf) if conf else 0}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [out]
