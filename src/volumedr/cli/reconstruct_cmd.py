"""``volumedr reconstruct STUDY.h5 [...]``: slices into the study file."""
from __future__ import annotations

import time
from pathlib import Path

from .args import finite


def add_parser(sub) -> None:
    r = sub.add_parser("reconstruct", help="reconstruct slices parallel to the detector into the study file")
    r.add_argument("study", help="study file (.h5)")
    r.add_argument("--method", choices=["fbp", "saa"], default=None, help="filtered backprojection (default) or shift-and-add")
    r.add_argument("--spacing", type=finite, default=None, help="slice spacing in mm (default 1)")
    r.add_argument("--thickness", type=finite, default=None, help="slice thickness in mm (default: the spacing)")
    r.add_argument("--range", dest="zrange", default=None, metavar="ZMIN:ZMAX",
                   help="height range of slice centres in mm above the detector (default: cover the object)")
    r.add_argument("-o", "--output", default=None, help="write a copy with the reconstruction here instead")
    r.set_defaults(func=cmd_reconstruct)


def cmd_reconstruct(args) -> int:
    from ..io.study_file import ReconstructionWriter, read_study
    from ..progress import TerminalBar, drive
    from ..reconstruct import Reconstructor, ReconSettings, parse_range
    from .main import _check_output

    study = read_study(args.study, load_reconstruction=False)
    defaults = study.metadata.get("reconstruction_defaults") or {}
    if not isinstance(defaults, dict):
        defaults = {}
    zr = parse_range(args.zrange) if args.zrange else None
    if zr is None and "range_mm" in defaults and args.spacing is None:
        zr = tuple(defaults["range_mm"])
    spacing = args.spacing if args.spacing is not None else (1.0 if args.zrange or "spacing_mm" not in defaults else float(defaults["spacing_mm"]))
    thickness = args.thickness if args.thickness is not None else spacing
    settings = ReconSettings(method=args.method or "fbp", spacing_mm=spacing, thickness_mm=thickness,
                             z_min_mm=zr[0] if zr else None, z_max_mm=zr[1] if zr else None)
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
        drive(rec.run(emit=writer.write), on_progress=TerminalBar())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    dt = time.perf_counter() - t0
    print(f"{settings.method.upper()}: {n} slices of {rec.grid.shape[0]} x {rec.grid.shape[1]} "
          f"({rec.grid.pixel_spacing_mm[1]:.3f} mm), {rec.heights_mm[0]:.1f}..{rec.heights_mm[-1]:.1f} mm every "
          f"{settings.spacing_mm:g} mm, thickness {settings.thickness_mm:g} mm; {dt:.1f} s -> {target}")
    return 0
