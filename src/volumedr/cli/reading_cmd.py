"""``volumedr reading score STUDY.h5 MARKS.csv [--json]``: a reading scored without the window."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    r = sub.add_parser("reading", help="score a reader's marks against a study's findings (film and slices)")
    rs = r.add_subparsers(dest="reading_command", required=True)
    s = rs.add_parser("score", help="score MARKS.csv (modality, x_mm, y_mm, z_mm, confidence) against STUDY.h5",
                      description="Score a reading: every mark a hit (lesion localisation) or a non-lesion "
                                  "localisation, per modality; see src/volumedr/reading/scoring.py for the rule.")
    s.add_argument("study", help="the study file read (.h5) whose findings are the truth")
    s.add_argument("marks", help="CSV with the columns modality (film or tomo), x_mm, y_mm, z_mm (empty for film), "
                                 "confidence (1-5)")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    s.set_defaults(func=cmd_score)
    e = rs.add_parser("export", help="the readings in the database as RJafroc, iMRMC or plain CSV files")
    e.add_argument("--format", required=True, choices=["rjafroc", "imrmc", "csv"],
                   help="rjafroc: Truth/NL/LL sheets as CSV files; imrmc: iMRMC's input file; csv: every mark")
    e.add_argument("--trainee", default=None, help="only this trainee's readings (default: everyone's)")
    e.add_argument("--db", default=None, help="the reading database (default: the platform's user-data folder)")
    e.add_argument("-o", "--output", required=True, help="file to write (rjafroc: the stem of its sheets)")
    e.set_defaults(func=cmd_export)
    h = rs.add_parser("results", help="a trainee's results per session and over all (sensitivity, FP/case, "
                                      "wAFROC with a bootstrap CI, reading time), film against volume DR")
    h.add_argument("--trainee", required=True)
    h.add_argument("--db", default=None, help="the reading database (default: the platform's user-data folder)")
    h.add_argument("--json", action="store_true", help="print one JSON object")
    h.set_defaults(func=cmd_results)


def cmd_score(args) -> int:
    from ..io.study_file import read_study
    from ..reading import read_marks, score, study_targets

    study = read_study(args.study, load_reconstruction=True)
    marks = read_marks(args.marks)
    targets, sid, spacing = study_targets(study)
    res = score(marks, targets, sid_mm=sid, spacing_mm=spacing)
    if args.json:
        print(json.dumps({"study": str(args.study), "findings": [t.name for t in targets],
                          **{m: r.as_dict() for m, r in res.items()}}, indent=1))
        return 0
    for m, r in res.items():
        sens = "n/a (no findings: a normal study)" if r.sensitivity is None else f"{r.sensitivity:.0%}"
        print(f"{m}: sensitivity {sens}, {len(r.hits)} of {r.n_findings} found, {r.false_positives} false positive(s)")
        for name, conf, d, _ in r.hits:
            print(f"  hit   {name} (confidence {conf}, {d:.1f} mm from its centre)")
        for name in r.misses:
            print(f"  miss  {name}")
        for nl in r.non_lesion_localisations:
            z = "" if nl["z_mm"] is None else f", z {nl['z_mm']:g}"
            print(f"  false positive at x {nl['x_mm']:g}, y {nl['y_mm']:g}{z} mm (confidence {nl['confidence']})")
    return 0


def cmd_export(args) -> int:
    from ..reading.export import export
    from ..reading.store import Store

    store = Store(args.db)
    try:
        files = export(store, args.format, args.output, trainee=args.trainee)
    finally:
        store.close()
    print(f"reading export ({args.format}): " + ", ".join(str(f) for f in files))
    return 0


def cmd_results(args) -> int:
    from ..reading.analysis import history
    from ..reading.store import Store

    store = Store(args.db)
    try:
        h = history(store, args.trainee)
    finally:
        store.close()
    if not h["sessions"]:
        from ..errors import ParameterError

        raise ParameterError(f"no submitted readings by {h['trainee']}")
    if args.json:
        print(json.dumps(h, indent=1, default=str))
        return 0

    def pct(v):
        return "  -" if v is None else f"{v:4.0%}"

    def fom(s):
        return "-" if s["wafroc"] is None else f"{s['wafroc']:.2f} [{s['wafroc_ci95'][0]:.2f}, {s['wafroc_ci95'][1]:.2f}]"

    print(f"{h['trainee']}: sensitivity, false positives per case and wAFROC [95 % CI], film | volume DR")
    for label, s in [(f"session {x['session']}", x) for x in h["sessions"]] + [("all sessions", h["all"])]:
        print(f"  {label:>13} ({s['cases']} cases, {s['normal_cases']} normal): "
              f"{pct(s['film']['sensitivity'])} | {pct(s['tomo']['sensitivity'])}, "
              f"FP {s['film']['false_positives_per_case']:.2f} | {s['tomo']['false_positives_per_case']:.2f}, "
              f"wAFROC {fom(s['film'])} | {fom(s['tomo'])}")
    return 0
