"""``volumedr trial``: a virtual clinical trial on Dask; ``volumedr trial report``: its plots and table."""
from __future__ import annotations

from .args import positive_int

LIST_OPTIONS = (("cases", "bundled cases (or case .toml files), e.g. chest,kub"),
                ("sweep", "tube motion: linear, arc, opposed (default: the case's)"),
                ("angle", "total sweep angles in degrees, e.g. 15,30,45 (default: the case's)"),
                ("projections", "numbers of views, e.g. 25,60 (default: the case's)"),
                ("kvp", "tube voltages (default: the case's)"),
                ("mas", "total sweep mAs, e.g. 2,10,20 (default: the case's; the film follows in the case's ratio)"),
                ("bin", "detector binning of the 0.21 mm panel (default 8: 1.7 mm pixels)"),
                ("method", "reconstruction methods: fbp, saa, sart (default fbp)"),
                ("mar", "metal artefact reduction: off, on or off,on (default off)"),
                ("spacing", "slice spacings in mm (default: the case's)"),
                ("thickness", "slice thicknesses in mm (default: the spacing)"))


def _split(text: str) -> list[str]:
    return [t for t in (s.strip() for s in str(text).split(",")) if t != ""] if text.strip() else []


def add_parser(sub) -> None:
    t = sub.add_parser("trial", help="a virtual clinical trial: simulate, reconstruct and measure over "
                                     "cases x protocols x seeds (Dask); 'trial report' plots the results",
                       description="Run a virtual clinical trial. The product of the lists is the set of runs; "
                                   "each simulates, reconstructs and measures (CNR, focus, model-observer d', "
                                   "dose) and gives one row per finding. See docs/trials.md. "
                                   "'volumedr trial report RESULTS -o DIR' makes the report.")
    t.add_argument("spec", nargs="?", help="a trial file (.toml, docs/trials.md); options below override its lists")
    for name, text in LIST_OPTIONS:
        t.add_argument(f"--{name}", default=None, metavar="LIST", help=text)
    t.add_argument("--seeds", default=None, metavar="N", help="noise seeds: a count N (0..N-1) or a list a,b,c")
    t.add_argument("-o", "--output", required=True, help="results file: .parquet or .csv (rerun to resume)")
    t.add_argument("--scheduler", default="local",
                   help="local (a LocalCluster on this machine, default), none (serial, in this process) "
                        "or the address of a Dask scheduler (tcp://HOST:PORT)")
    t.add_argument("--workers", type=positive_int, default=None, help="local workers (default: one per core)")
    t.add_argument("--max-runs", type=positive_int, default=10_000, help="refuse a trial of more runs (default 10000)")
    t.set_defaults(func=cmd_trial)

    r = sub.add_parser("trial-report", help="plots and a table of a trial's results (same as 'trial report')")
    r.add_argument("results", help="a results file of 'volumedr trial' (.parquet or .csv)")
    r.add_argument("-o", "--output", required=True, help="folder for the report (index.md, index.html, plots)")
    r.set_defaults(func=cmd_report)


def cmd_trial(args) -> int:
    from ..errors import ParameterError
    from ..progress import TerminalBar
    from ..trials.engine import output_format, run_trial
    from ..trials.spec import make_spec, read_toml

    values = read_toml(args.spec) if args.spec else {}
    for name, _ in LIST_OPTIONS:
        v = getattr(args, name)
        if v is not None:
            items = _split(v)
            if not items:
                raise ParameterError(f"--{name}: the list is empty")
            values[name] = items
    if args.seeds is not None:
        items = _split(args.seeds)
        if not items:
            raise ParameterError("--seeds: the list is empty")
        values["seeds"] = items[0] if len(items) == 1 else items
    spec = make_spec(values)
    output_format(args.output)
    bar = TerminalBar()
    res = run_trial(spec, args.output, scheduler=args.scheduler, n_workers=args.workers, max_runs=args.max_runs,
                    on_progress=bar)
    bar.close()
    print(f"trial: {res['runs']} runs ({res['skipped']} already done, {res['ran']} run, {res['failed']} failed); "
          f"{res['rows']} rows in {res['seconds']:.1f} s -> {res['output']}")
    return 0


def cmd_report(args) -> int:
    from ..trials.report import make_report

    out = make_report(args.results, args.output)
    print(f"trial report: {out['plots']} plots, {out['groups']} rows in the table -> {out['index']}")
    return 0
