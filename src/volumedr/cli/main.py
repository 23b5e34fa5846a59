"""The ``volumedr`` command line.

Every error a user can cause prints one line ``volumedr: error: ...`` and
exits with status 2; Ctrl-C exits with 130 and leaves no partial file.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from ..errors import VolumedrError, VolumedrWarning
from .args import Parser, finite, positive_int, seed


def _check_output(path: str) -> Path:
    from ..io.study_file import check_writable

    return check_writable(path)


def cmd_cases(args) -> int:
    from ..phantoms.case import case_names, case_summary

    names = case_names()
    if not names:
        print("no bundled cases found", file=sys.stderr)
        return 1
    for n in names:
        print(case_summary(n))
    return 0


def cmd_simulate(args) -> int:
    import numpy as np

    from ..geometry import Detector
    from ..io.study_file import write_study
    from ..phantoms.case import load_case
    from ..progress import TerminalBar, drive
    from ..simulate import settings_from_case, simulate, sweep_from_case

    out = _check_output(args.output)
    if args.from_ct:
        from ..io.ct_series import case_from_ct

        if args.case:
            raise VolumedrError("give either a case or --from-ct, not both")
        case = case_from_ct(args.from_ct, protocol=args.protocol)
        print(f"from the CT: {case.title}", file=sys.stderr)
    elif args.protocol:
        raise VolumedrError("--protocol goes with --from-ct (a bundled case has its own protocol)")
    elif not args.case:
        raise VolumedrError("name a bundled case (see 'volumedr cases') or give --from-ct CT_SERIES_DIR")
    else:
        case = load_case(args.case)
    sweep = sweep_from_case(case, kind=args.sweep, total_angle_deg=args.angle, n_projections=args.projections,
                            direction=args.direction, source_to_image_mm=args.sid, pivot_height_mm=args.pivot)
    settings = settings_from_case(case, kvp=args.kvp, sweep_mas=args.mas, plain_film_mas=args.film_mas,
                                  scatter_fraction=args.scatter, ct_voxel_mm=args.ct_voxel)
    from ..simulate.acquire import readout_bin_from_case

    b = args.bin if args.bin is not None else readout_bin_from_case(case)  # the case's read-out unless --bin
    detector = Detector().binned(b) if b > 1 else Detector()
    t0 = time.perf_counter()
    bar = TerminalBar()
    study = drive(simulate(case, sweep=sweep, detector=detector, settings=settings, rng=np.random.default_rng(args.seed),
                           noise=not args.noise_free, ct=not args.no_ct), on_progress=bar)
    write_study(out, study)
    dt = time.perf_counter() - t0
    ds, df = study.metadata["dose_sweep"], study.metadata["dose_plain_film"]
    print(f"{case.name}: {sweep.n_projections} views of {detector.rows} x {detector.cols} ({detector.pitch_col_mm:.2f} mm), "
          f"{sweep.kind} sweep {sweep.total_angle_deg:g} deg along {sweep.direction}, {settings.kvp:g} kVp "
          f"{settings.sweep_mas:g} mAs; ESAK {ds['entrance_surface_air_kerma_total_ugy'] / 1000:.2f} mGy, "
          f"E {ds['effective_dose_msv']:.3f} mSv (plain film {df['effective_dose_msv']:.3f} mSv); "
          f"{dt:.1f} s -> {out}")
    return 0


def cmd_info(args) -> int:
    import json

    from ..io.study_file import read_study

    s = read_study(args.study, load_projections=False, load_reconstruction=False)
    g = s.geometry
    print(f"{args.study}: {g.n_views} views of {g.detector.rows} x {g.detector.cols} "
          f"({g.detector.pitch_row_mm:g} x {g.detector.pitch_col_mm:g} mm), sweep {g.total_angle_deg:.1f} deg")
    if s.metadata.get("case"):
        print(f"case: {s.metadata['case']} - {s.metadata.get('case_title', '')}")
        if s.metadata.get("anatomy_source"):
            print(f"anatomy: {s.metadata['anatomy_source']}")
    for key in ("dose_sweep", "dose_plain_film"):
        if key in s.metadata:
            print(f"{key}: {json.dumps(s.metadata[key])}")
    print(f"plain film: {'yes' if s.dr is not None else 'no'}; CT reference: "
          + (f"{s.ct_reference.hu.shape} at {s.ct_reference.spacing_mm[0]:g} mm" if s.ct_reference else "no"))
    r = s.reconstruction
    if r is not None:
        print(f"reconstruction: {len(r.heights_mm)} slices, {r.method}, {r.heights_mm[0]:.1f}..{r.heights_mm[-1]:.1f} mm, "
              f"thickness {r.thickness_mm:g} mm, pixel {r.pixel_spacing_mm[0]:.3f} mm")
        p = r.parameters
        if r.method == "sart":
            res = p.get("residuals") or []
            print(f"SART: {p.get('iterations')} iterations x {p.get('subsets')} subsets, TV {p.get('tv_weight')}, "
                  f"from {p.get('init')}; data residual " + " -> ".join(f"{v:.4g}" for v in res[:1] + res[-1:]))
        if isinstance(p.get("mar"), dict) and p["mar"]:
            from ..reconstruct.metal import mar_line

            print(mar_line(p["mar"]))

    for f in s.findings:
        print(f"finding: {f['name']} at {f['centre_mm']} ({f['size_mm']} mm)"
              + (" [occult on plain film]" if f.get("occult_on_plain_film") else ""))
    return 0


def cmd_gui(args) -> int:
    try:
        from ..gui.app import run
    except ImportError as exc:
        raise VolumedrError(f"the workstation needs PySide6 and pyqtgraph ({exc}); install with pip install -e .[gui]") from None
    if args.study and not Path(args.study).exists():
        raise VolumedrError(f"{args.study}: no such file")
    return run(study=args.study, case=args.case, screenshot=args.screenshot, detector=args.detector,
               verbose=args.verbose, reading_db=args.reading_db, read=args.read)


def build_parser() -> Parser:
    p = Parser(prog="volumedr", description="volumedr: digital tomosynthesis (volume DR) workstation")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"volumedr {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("cases", help="list the bundled cases")
    c.set_defaults(func=cmd_cases)

    s = sub.add_parser("simulate", help="simulate an acquisition of a bundled case into a study file")
    s.add_argument("case", nargs="?", help="bundled case name (see 'volumedr cases') or a case .toml file")
    s.add_argument("--from-ct", metavar="CT_SERIES_DIR",
                   help="simulate from a real axial CT series instead of a bundled case")
    s.add_argument("--protocol", metavar="CASE",
                   help="with --from-ct: the bundled case whose protocol and patient axes to use (default: guessed "
                        "from the series' body part, e.g. HEAD -> sinus, ABDOMEN -> kub, else chest)")
    s.add_argument("-o", "--output", required=True, help="study file to write (.h5)")
    s.add_argument("--sweep", choices=["linear", "arc", "opposed"], help="tube motion (default: the case protocol)")
    s.add_argument("--angle", type=finite, help="total sweep angle in degrees")
    s.add_argument("--projections", type=positive_int, help="number of projections (clinical 25-60)")
    s.add_argument("--direction", choices=["x", "y"], help="sweep direction")
    s.add_argument("--sid", type=finite, help="source-to-image distance in mm")
    s.add_argument("--pivot", type=finite, help="pivot (fulcrum) height above the detector in mm")
    s.add_argument("--kvp", type=finite, help="tube voltage")
    s.add_argument("--mas", type=finite, help="total mAs of the sweep (split over the views)")
    s.add_argument("--film-mas", type=finite, help="mAs of the plain film")
    s.add_argument("--bin", type=positive_int, default=None,
                   help="detector binning (1: the native 2048 x 2048 at 0.21 mm, 2: 1024 x 1024; default: the "
                        "case protocol's readout_bin, as tomosynthesis rooms read out the panel for a sweep)")
    s.add_argument("--seed", type=seed, default=None, help="random seed (reproducible noise)")
    s.add_argument("--scatter", type=finite, help="scatter-to-primary fraction before the grid (default 0: off)")
    s.add_argument("--ct-voxel", type=finite, help="CT reference voxel size in mm (default 2)")
    s.add_argument("--no-ct", action="store_true", help="skip the CT reference volume")
    s.add_argument("--noise-free", action="store_true", help="expected values without quantum or electronic noise")
    s.set_defaults(func=cmd_simulate)

    i = sub.add_parser("info", help="describe a study file")
    i.add_argument("study")
    i.set_defaults(func=cmd_info)

    gu = sub.add_parser("gui", help="open the review workstation")
    gu.add_argument("study", nargs="?", help="a study file to open (default: acquire the case)")
    gu.add_argument("--case", default="chest", help="bundled case to acquire on start (default: chest)")
    gu.add_argument("--detector", choices=["256 x 256 (quick look)", "512 x 512 (preview)", "1024 x 1024",
                                           "2048 x 2048 (full)"],
                    default=None, help="detector read-out for acquisitions")
    gu.add_argument("--screenshot", metavar="PNG", help="wait for the reconstruction, save a screenshot, exit")
    gu.add_argument("--read", action="store_true", help="open reading mode's sign-in on start (trainees)")
    gu.add_argument("--reading-db", metavar="PATH", default=None,
                    help="the reading database (default: the platform's user-data folder)")
    gu.add_argument("-v", "--verbose", action="store_true", help="report finished jobs on the terminal")
    gu.set_defaults(func=cmd_gui)

    from .reconstruct_cmd import add_parser as add_reconstruct

    add_reconstruct(sub)
    from .dicom_cmd import add_parsers as add_dicom

    add_dicom(sub)
    from .trial_cmd import add_parser as add_trial

    add_trial(sub)
    from .reading_cmd import add_parser as add_reading

    add_reading(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["trial", "report"]:  # 'volumedr trial report RESULTS': the report's own parser
        argv = ["trial-report"] + argv[2:]
    args = parser.parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VolumedrWarning):
            print(f"volumedr: warning: {message}", file=sys.stderr)
        else:  # another library's warning: one line too, saying where it came from
            text = " ".join(str(message).split())
            print(f"volumedr: warning: {category.__name__} from {Path(filename).name}:{lineno}: {text}",
                  file=sys.stderr)

    warnings.showwarning = show_warning
    try:
        return args.func(args)
    except VolumedrError as exc:
        print(f"volumedr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("volumedr: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("volumedr: error: out of memory; use --bin or a smaller range", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
