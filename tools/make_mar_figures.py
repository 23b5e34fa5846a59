"""Figures for docs/reconstruction.md: plain FBP | FBP + MAR | the CT reference, for the hip and knee cases.

    .venv/bin/python tools/make_mar_figures.py      (needs matplotlib)

Each case is simulated at the evidence panel (seed 1, as tests/test_cases.py measures it); the row shows the
finding's slice and a slice 30 mm away from the implant's height, cropped around the implant, with the
finding's CNR on its slice in the titles.  Writes docs/images/mar_<case>.png.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from volumedr.evidence import evidence_detector
from volumedr.phantoms.case import load_case
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.simulate import simulate_study
from volumedr.workflow import contrast_to_noise

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
OFFSET_MM = {"hip": -30.0, "knee": 30.0}  # the second row: this far from the finding's height


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in ("hip", "knee"):
        case = load_case(name)
        study = simulate_study(case, detector=evidence_detector(case), rng=1)
        s = ReconSettings.from_case(case.reconstruction)
        f = case.findings[0]
        x, y, z = f.centre_mm
        recs = {mar: reconstruct(study.projections, study.geometry, replace(s, mar=mar),
                                 object_range_mm=study.metadata["object_height_range_mm"]) for mar in (False, True)}
        ct = study.ct_reference
        fig, axes = plt.subplots(2, 3, figsize=(10.5, 8.4))
        for row, dz in enumerate((0.0, OFFSET_MM[name])):
            h = z + dz
            panels = []
            for mar in (False, True):
                r = recs[mar]
                k = int(np.argmin(np.abs(r.heights_mm - h)))
                rr, cc = r.pixel_of(x, y)
                cnr = -contrast_to_noise(r.slices[k], rr, cc, f.size_mm / 2 / r.pixel_spacing_mm[0])
                panels.append((r.slices[k], r, f"{'FBP + MAR' if mar else 'plain FBP'}, z = {r.heights_mm[k]:.0f} mm"
                               + (f"\nfinding CNR {cnr:.2f}" if dz == 0 else "")))
            r1 = panels[1][1]
            rr, cc = r1.pixel_of(x, y)
            w = int(30 / r1.pixel_spacing_mm[0])
            lo, hi = np.percentile(panels[1][0][max(0, int(rr) - w):int(rr) + w, max(0, int(cc) - w):int(cc) + w], [2, 75])
            lo, hi = lo - 0.1 * (hi - lo), hi + 0.3 * (hi - lo)
            for ax, (img, r, title) in zip(axes[row, :2], panels):
                ext = [r.origin_mm[0], r.origin_mm[0] + img.shape[1] * r.pixel_spacing_mm[1],
                       r.origin_mm[1] + img.shape[0] * r.pixel_spacing_mm[0], r.origin_mm[1]]
                ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=ext)
                ax.set_title(title, fontsize=9)
            kz = int(np.argmin(np.abs(ct.heights_mm() - h)))
            sz, sy, sx = ct.spacing_mm
            ext = [ct.origin_mm[0], ct.origin_mm[0] + ct.hu.shape[2] * sx, ct.origin_mm[1] + ct.hu.shape[1] * sy,
                   ct.origin_mm[1]]
            axes[row, 2].imshow(ct.hu[kz], cmap="gray", vmin=-200, vmax=1200, extent=ext)
            axes[row, 2].set_title(f"CT reference, z = {ct.heights_mm()[kz]:.0f} mm", fontsize=9)
            for ax in axes[row]:
                ax.set_xlim(x - 70, x + 90)
                ax.set_ylim(y + 80, y - 90)
                if row == 0:
                    ax.add_patch(plt.Circle((x, y), f.size_mm, fill=False, ec="tab:orange", lw=1))
                ax.set_facecolor("black")
                ax.tick_params(labelsize=7)
        fig.suptitle(f"{case.title}\n(mm in the detector plane; the circle, twice the finding's size, is centred on it)", fontsize=10)
        fig.tight_layout()
        OUT.mkdir(parents=True, exist_ok=True)
        fig.savefig(OUT / f"mar_{name}.png", dpi=90)
        plt.close(fig)
        print(f"wrote docs/images/mar_{name}.png")


if __name__ == "__main__":
    main()
