"""``volumedr export-dicom``, ``import-dicom``, ``send``, ``find`` and ``echo``."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from .args import finite

KIND_CHOICES = ("film", "projections", "slices", "answer-key")


def _kinds(text: str | None):
    if not text:
        return KIND_CHOICES
    from ..errors import ParameterError

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KIND_CHOICES]
    if bad or not kinds:
        raise ParameterError(f"--series takes a comma-separated list of {', '.join(KIND_CHOICES)}; got {text!r}")
    return kinds


def cmd_export(args) -> int:
    from ..io.dicom_export import export_dicom
    from ..io.study_file import read_study
    from ..progress import TerminalBar, drive

    t0 = time.perf_counter()
    study = read_study(args.study)
    reading = None
    if args.reading:
        from ..errors import ParameterError
        from ..reading import read_marks

        if not args.reader or not args.reader.strip():
            raise ParameterError("--reading needs --reader NAME (who made the marks)")
        reading = (read_marks(args.reading), " ".join(args.reader.split()))
    elif args.reader:
        from ..errors import ParameterError

        raise ParameterError("--reader names the author of --reading MARKS.csv; give both")
    s = drive(export_dicom(study, args.outdir, as_=args.as_, kinds=_kinds(args.series),
                           overwrite=args.overwrite, reading=reading), on_progress=TerminalBar())
    parts = ", ".join(f"{n} {k}" for k, (_, n) in s.series.items())
    print(f"{args.study}: {len(s.files)} DICOM files ({parts}; slices as {args.as_.upper()}) in "
          f"{time.perf_counter() - t0:.1f} s -> {s.outdir}")
    return 0


def cmd_import(args) -> int:
    from ..io.dicom_import import import_dicom
    from ..io.study_file import check_writable, write_study

    out = check_writable(args.output)
    study = import_dicom(args.folder, sweep_direction=args.sweep_direction)
    write_study(out, study)
    g = study.geometry
    print(f"{args.folder}: {g.n_views} projections of {g.detector.rows} x {g.detector.cols}, sweep "
          f"{g.total_angle_deg:.1f} deg; plain film {'yes' if study.dr is not None else 'no'}; slices "
          f"{len(study.reconstruction.heights_mm) if study.reconstruction else 'none'} -> {out}")
    return 0


def _peer(args, address: str):
    """The PACS to talk to, with the TLS settings of --tls/--ca/--cert/--key."""
    from ..errors import ParameterError
    from ..io.pacs import TlsSettings, parse_peer

    if not args.tls and (args.ca or args.cert or args.key):
        raise ParameterError("--ca, --cert and --key are for DICOM over TLS: add --tls")
    tls = TlsSettings(ca_path=args.ca, cert_path=args.cert, key_path=args.key) if args.tls else None
    return parse_peer(address, tls)


def _add_tls(p) -> None:
    p.add_argument("--tls", action="store_true",
                   help="DICOM over TLS (PS3.15 Annex B); the PACS's certificate is verified")
    p.add_argument("--ca", metavar="PEM", help="CA certificate(s) to verify the PACS against (default: the system's)")
    p.add_argument("--cert", metavar="PEM", help="this workstation's certificate, for PACSs that require one")
    p.add_argument("--key", metavar="PEM", help="the private key of --cert")


def cmd_send(args) -> int:
    from ..io.pacs import send_files
    from ..progress import TerminalBar, drive

    peer = _peer(args, args.to)
    src = Path(args.source)
    t0 = time.perf_counter()
    if src.is_dir():
        files = sorted(p for p in src.rglob("*.dcm"))
        n = drive(send_files(files, peer, timeout_s=args.timeout), on_progress=TerminalBar())
    else:
        from ..io.dicom_export import export_dicom
        from ..io.study_file import read_study

        study = read_study(src)
        with tempfile.TemporaryDirectory(prefix="volumedr-send-") as tmp:
            s = drive(export_dicom(study, Path(tmp) / "export", as_=args.as_, kinds=_kinds(args.series)),
                      on_progress=TerminalBar())
            n = drive(send_files(s.files, peer, timeout_s=args.timeout), on_progress=TerminalBar())
    print(f"sent {n} images to {peer} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_find(args) -> int:
    from ..io.pacs import find_studies

    peer = _peer(args, args.on)
    rows = find_studies(peer, patient_id=args.patient_id or "", timeout_s=args.timeout)
    if not rows:
        print(f"no studies on {peer}")
        return 0
    for r in rows:
        print(f"{r['StudyDate'] or '--------'}  {r['PatientID']:<16} {r['PatientName']:<24} "
              f"{r['ModalitiesInStudy']:<8} {r['NumberOfStudyRelatedInstances'] or '?':>5} images  "
              f"{r['StudyDescription']}  {r['StudyInstanceUID']}")
    return 0


def cmd_echo(args) -> int:
    from ..io.pacs import echo

    peer = _peer(args, args.to)
    t0 = time.perf_counter()
    echo(peer, timeout_s=args.timeout)
    print(f"{peer} answered C-ECHO in {1000 * (time.perf_counter() - t0):.0f} ms", file=sys.stdout)
    return 0


def add_parsers(sub) -> None:
    e = sub.add_parser("export-dicom", help="write a study as DICOM series (slices, plain film, projections)")
    e.add_argument("study", help="study file (.h5)")
    e.add_argument("outdir", help="folder to create (must be new or empty)")
    e.add_argument("--as", dest="as_", choices=["ct", "dx"], default="ct",
                   help="slices as CT Image Storage (default: scrolls as a stack everywhere) or DX For Presentation")
    e.add_argument("--series", help="comma-separated subset of film,projections,slices,answer-key (default: all "
                                    "present; answer-key: the findings as a DICOM SR, with the slices)")
    e.add_argument("--reading", metavar="MARKS.csv", help="also write a reader's marks (volumedr reading score's CSV) "
                                                          "as a DICOM SR")
    e.add_argument("--reader", metavar="NAME", help="who made the --reading marks")
    e.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import-dicom", help="read a DICOM tomosynthesis projection series into a study file")
    i.add_argument("folder", help="folder with the DX For Processing projections (and optionally film, slices)")
    i.add_argument("-o", "--output", required=True, help="study file to write (.h5)")
    i.add_argument("--sweep-direction", choices=["x", "y"], default="y",
                   help="tube motion when the files carry only standard attributes (default y: along the columns)")
    i.set_defaults(func=cmd_import)

    s = sub.add_parser("send", help="send a study (or a folder of DICOM files) to a PACS (C-STORE)")
    s.add_argument("source", help="study file (.h5), exported on the fly, or a folder of .dcm files")
    s.add_argument("--to", required=True, metavar="AET@HOST:PORT", help="the PACS, e.g. ORTHANC@127.0.0.1:4242")
    s.add_argument("--as", dest="as_", choices=["ct", "dx"], default="ct", help="slices as CT (default) or DX")
    s.add_argument("--series", help="comma-separated subset of film,projections,slices (default: all present)")
    s.add_argument("--timeout", type=finite, default=30.0, help="seconds to wait for the PACS (default 30)")
    _add_tls(s)
    s.set_defaults(func=cmd_send)

    f = sub.add_parser("find", help="list the studies on a PACS (C-FIND)")
    f.add_argument("--on", required=True, metavar="AET@HOST:PORT", help="the PACS")
    f.add_argument("--patient-id", help="only this patient ID (wildcards * and ? allowed)")
    f.add_argument("--timeout", type=finite, default=15.0, help="seconds to wait for the PACS (default 15)")
    _add_tls(f)
    f.set_defaults(func=cmd_find)

    c = sub.add_parser("echo", help="check that a PACS answers (C-ECHO)")
    c.add_argument("--to", required=True, metavar="AET@HOST:PORT", help="the PACS")
    c.add_argument("--timeout", type=finite, default=10.0, help="seconds to wait (default 10)")
    _add_tls(c)
    c.set_defaults(func=cmd_echo)
