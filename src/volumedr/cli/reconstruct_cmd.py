"""``volumedr reconstruct STUDY.h5 [...]``: slices into the study file."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .args import finite, positive_int


def add_parser(sub) -> None:
    r = sub.add_parser("reconstruct", help="reconstruct slices parallel to the detector into the study file")
    r.add_argument("study", help="study file (.h5)")
    r.add_argument("--method", choices=["fbp", "saa", "sart"], default=None,
                   help="filtered backprojection, shift-and-add or iterative SART (default: the case's method, else fbp)")
    r.add_argument("--spacing", type=finite, default=None, help="slice spacing in mm (default 1)")
    r.add_argument("--thickness", type=finite, default=None, help="slice thickness in mm (default: the spacing)")
    r.add_argument("--range", dest="zrange", default=None, metavar="ZMIN:ZMAX",
                   help="height range of slice centres in mm above the detector (default: cover the object)")
    r.add_argument("--apodisation", type=finite, default=None, metavar="CUTOFF",
                   help="the FBP kernel: where its Hann window reaches zero, as a fraction of Nyquist, 0.05-2 "
                        "(1 sharp, 0.6 soft, 0.4 softer; default: the case's kernel, else 1)")
    r.add_argument("-o", "--output", default=None, help="write a copy with the reconstruction here instead")
    mar = r.add_argument_group("metal artefact reduction")
    mar.add_argument("--mar", action=argparse.BooleanOptionalAction, default=None,
                     help="find metal in the projections, reconstruct the tissue without it and put the metal back "
                          "at its own height (default: the case's setting, else off)")
    mar.add_argument("--mar-threshold", type=finite, default=None, metavar="P",
                     help="how far above the tissue a line integral must stand to be metal (default 2.5)")
    it = r.add_argument_group("SART (--method sart)")
    it.add_argument("--iterations", type=positive_int, default=None, help="iterations, 1-200 (default 3)")
    it.add_argument("--subsets", type=positive_int, default=None,
                    help="ordered subsets per iteration, at most the number of views (default: two views a subset)")
    it.add_argument("--tv", type=finite, default=None, metavar="WEIGHT",
                    help="total-variation step between iterations, 0 = off (default 0.2)")
    it.add_argument("--init", choices=["fbp", "zero"], default=None, help="start from the FBP (default) or zero")
    r.set_defaults(func=cmd_reconstruct)


def cmd_reconstruct(args) -> int:
    from ..io.study_file import ReconstructionWriter, read_study
    from ..progress import TerminalBar, drive
    from ..reconstruct import Reconstructor, ReconSettings, parse_range
    from ..reconstruct.settings import KERNEL_KEYS
    from ..errors import ParameterError
    from .main import _check_output

    study = read_study(args.study, load_reconstruction=False)
    defaults = study.metadata.get("reconstruction_defaults") or {}
    if not isinstance(defaults, dict):
        defaults = {}
    zr = parse_range(args.zrange) if args.zrange else None
    if zr is None and "range_mm" in defaults and args.spacing is None:
        zr = tuple(defaults["range_mm"])
    case_grid = args.spacing is None and not args.zrange and "spacing_mm" in defaults  # the case's slices
    spacing = args.spacing if args.spacing is not None else (float(defaults["spacing_mm"]) if case_grid else 1.0)
    thickness = args.thickness if args.thickness is not None else (
        float(defaults.get("thickness_mm", spacing)) if case_grid else spacing)
    method = args.method or str(defaults.get("method", "fbp"))  # the case's method unless the user says
    sart = {k: v for k, v in (("iterations", args.iterations), ("subsets", args.subsets), ("tv_weight", args.tv),
                              ("init", args.init)) if v is not None}
    if sart and method != "sart":
        raise ParameterError(f"--iterations, --subsets, --tv and --init are for --method sart (this is {method})")
    for k in ("iterations", "subsets", "tv_weight", "init"):
        if method == "sart" and k not in sart and k in defaults:
            sart[k] = defaults[k]
    mar = args.mar if args.mar is not None else bool(defaults.get("mar", False))
    if args.mar_threshold is not None:
        if not mar:
            raise ParameterError("--mar-threshold is for metal artefact reduction (add --mar)")
        sart["mar_threshold"] = args.mar_threshold
    kernel = {k: float(defaults[k]) for k in KERNEL_KEYS if k in defaults}
    if args.apodisation is not None:
        kernel["apodisation_cutoff"] = args.apodisation
    settings = ReconSettings(method=method, spacing_mm=spacing, thickness_mm=thickness,
                             z_min_mm=zr[0] if zr else None, z_max_mm=zr[1] if zr else None, mar=mar, **sart,
                             **kernel)
    obj = study.metadata.get("object_height_range_mm")
    rec = Reconstructor(study.projections, study.geometry, settings, object_range_mm=obj)
    target = _check_output(args.output) if args.output else Path(args.study)
    n = len(rec.heights_mm)
    t0 = time.perf_counter()
    # the study is rewritten beside the target with the new slices and renamed over it at the end:
    # the source is only read, so Ctrl-C, an error or a kill leaves it (and its old slices) as they were
    writer = ReconstructionWriter(target, shape=(n,) + rec.grid.shape, heights_mm=rec.heights_mm,
                                  pixel_spacing_mm=rec.grid.pixel_spacing_mm, origin_mm=rec.grid.origin_mm,
                                  thickness_mm=settings.thickness_mm, method=settings.method,
                                  parameters=rec.parameters(), source=args.study,
                                  drop=study.dropped)
    try:
        done = drive(rec.run(emit=writer.write, emit_fraction=writer.write_fraction), on_progress=TerminalBar())
        writer.commit(parameters=done.parameters)
    except BaseException:
        writer.abort()
        raise
    dt = time.perf_counter() - t0
    extra = ""
    if settings.method == "sart":
        extra = (f"; {settings.iterations} iterations x {rec.subsets} subsets, TV {settings.tv_weight:g}, "
                 f"from {settings.init}")
    print(f"{settings.method.upper()}: {n} slices of {rec.grid.shape[0]} x {rec.grid.shape[1]} "
          f"({rec.grid.pixel_spacing_mm[1]:.3f} mm), {rec.heights_mm[0]:.1f}..{rec.heights_mm[-1]:.1f} mm every "
          f"{settings.spacing_mm:g} mm, thickness {settings.thickness_mm:g} mm{extra}; {dt:.1f} s -> {target}")
    if rec.mar_summary is not None:
        print(rec.mar_summary.line())
    return 0
