"""Figures for docs/reconstruction.md: SART's data residual over iterations, and FBP | SART slices.

    .venv/bin/python tools/make_sart_figures.py      (needs matplotlib, for the plot only)

Writes docs/images/sart_residuals.png and docs/images/fbp_vs_sart.png from a simulated chest study
(25 views of 256 x 256, seed 1; the retrocardiac nodule's slice).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from volumedr.geometry import Detector
from volumedr.io.png import to_uint8, write_png
from volumedr.phantoms.case import load_case
from volumedr.progress import drive
from volumedr.reconstruct import Reconstructor, ReconSettings
from volumedr.simulate import settings_from_case, simulate_study, sweep_from_case

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    case = load_case("chest")
    sweep = sweep_from_case(case, n_projections=25)
    study = simulate_study(case, sweep=sweep, detector=Detector().binned(8), rng=1, ct=False,
                           settings=settings_from_case(case))
    obj = study.metadata["object_height_range_mm"]
    runs = {}
    for label, tv in (("SART, no TV", 0.0), ("SART + TV 0.2 (default)", 0.2)):
        r = Reconstructor(study.projections, study.geometry,
                          ReconSettings(method="sart", iterations=10, tv_weight=tv, spacing_mm=2, z_min_mm=20,
                                        z_max_mm=240), object_range_mm=obj)
        runs[label] = drive(r.run())
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for label, rec in runs.items():
        res = rec.parameters["residuals"]
        ax.plot(np.arange(1, len(res) + 1), res, marker="o", label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("data residual ||p' - A x||")
    ax.set_title("SART on a 25-view chest study (256 x 256)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "sart_residuals.png")
    fbp = drive(Reconstructor(study.projections, study.geometry,
                              ReconSettings(method="fbp", spacing_mm=2, z_min_mm=20, z_max_mm=240),
                              object_range_mm=obj).run())
    sart = runs["SART + TV 0.2 (default)"]
    z = next(f["centre_mm"][2] for f in study.findings if "retrocardiac" in f["name"])
    tiles = []
    for rec in (fbp, sart):
        k = int(np.argmin(np.abs(rec.heights_mm - z)))
        tiles.append(to_uint8(rec.slices[k]))
    gap = np.full((tiles[0].shape[0], 6), 255, np.uint8)
    write_png(OUT / "fbp_vs_sart.png", np.concatenate([tiles[0], gap, tiles[1]], axis=1))
    print(f"wrote {OUT / 'sart_residuals.png'} and {OUT / 'fbp_vs_sart.png'} (slice at {z:g} mm)")


if __name__ == "__main__":
    main()
