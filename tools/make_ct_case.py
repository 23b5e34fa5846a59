"""Build the default chest case on real anatomy (phantoms/chest.toml + phantoms/chest.npz).

Reads the public CPTAC-PDA chest CT in ../shared/data/chest-ct-cptac-pda (CC BY 3.0),
removes the table and the contrast enhancement, resamples it to 2 mm voxels in volumedr's frame (PA, anterior skin 15 mm
above the detector), stores HU as int16, and writes a case file with synthetic nodules (analytic spheres: a hybrid
phantom) placed in aerated lung near the intended sites, by the rule each site names.  Run from the repository root:

    .venv/bin/python tools/make_ct_case.py [CT_SERIES_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from volumedr.io.ct_series import CHEST_PROTOCOL, case_from_ct  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from make_chest_case import CHEST_DOSE, dose_table, table  # noqa: E402

DEFAULT_CT = ROOT.parent / "shared" / "data" / "chest-ct-cptac-pda" / "series"

CITATION = ("National Cancer Institute Clinical Proteomic Tumor Analysis Consortium (CPTAC). The Clinical "
            "Proteomic Tumor Analysis Consortium Pancreatic Ductal Adenocarcinoma Collection (CPTAC-PDA). "
            "The Cancer Imaging Archive, 2018. Subject C3N-00249, licence CC BY 3.0. "
            "Clark K, et al. The Cancer Imaging Archive (TCIA): maintaining and operating a public information "
            "repository. J Digit Imaging 2013;26(6):1045-1057.")

# (name, intended centre (x, y, z) mm, diameter mm, material, occult on the plain film, site rule, description)
# Nodules are analytic spheres inside the CT voxels (a hybrid phantom): exact edges, the lung they replace
# taken out along their chords.  Site rules: "lung" (most aerated lung nearby), "rib" (aerated lung whose
# PA ray crosses the most rib), "pleura" (aerated lung, then moved back until it touches the posterior
# chest wall).
NODULES = [
    ("retrocardiac nodule, left lower lobe", (62, 8, 240), 10.0, "soft_tissue", True, "lung",
     "solid 10 mm nodule in the left lower lobe behind the heart: hidden by the cardiac shadow on the PA film"),
    ("nodule projected over a rib", (-80, -70, 150), 7.0, "soft_tissue", True, "rib",
     "7 mm nodule in the right upper zone whose shadow falls on a rib on the PA film"),
    ("right mid-zone nodule", (-90, -60, 120), 12.0, "soft_tissue", False, "lung",
     "12 mm solid nodule in the right mid zone, visible on the film"),
    ("left upper-zone nodule", (60, -100, 140), 7.0, "soft_tissue", True, "lung",
     "7 mm nodule in the left upper zone, over the anterior ribs"),
    ("calcified granuloma", (-60, -30, 100), 5.0, "cortical_bone", False, "lung",
     "5 mm calcified granuloma (benign)"),
    ("subpleural nodule, posterior right lower lobe", (-65, 10, 220), 8.0, "soft_tissue", False, "pleura",
     "8 mm subpleural nodule in the posterior costophrenic recess, behind the dome: faint through the "
     "liver on the film, clear on its slice"),
]


PLEURA_GAP_MM = 5.0  # lung between a subpleural nodule and the wall behind it


def _box(vol, c, r):
    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    return np.ix_(np.abs(Z - c[2]) <= r, np.abs(Y - c[1]) <= r, np.abs(X - c[0]) <= r)


def rib_path_mm(vol, x, y, spine_mm=45.0):
    """mm of bone (HU > 300) along the PA ray at (x, y), 0 over the spine and sternum."""
    if abs(x) < spine_mm:
        return 0.0
    X, Y = vol.axis_mm("x"), vol.axis_mm("y")
    col = vol.hu[:, int(np.argmin(np.abs(Y - y))), int(np.argmin(np.abs(X - x)))]
    return float((col > 300).sum() * vol.spacing_mm[0])


def best_site(vol, centre, radius_mm, rule="lung", search_mm=24.0, step=4.0):
    """The point near ``centre`` that suits ``rule`` best (deterministic); returns (site, lung fraction)."""
    r = radius_mm + 4.0
    best, best_key = None, None
    offs = np.arange(-search_mm, search_mm + 1e-9, step)
    for dx in offs:
        for dy in offs:
            for dz in offs:
                c = (centre[0] + dx, centre[1] + dy, centre[2] + dz)
                f = float((vol.hu[_box(vol, c, r)] < -700).mean())
                dist = float(np.hypot(np.hypot(dx, dy), dz))
                if rule == "rib":
                    key = (f >= 0.9, rib_path_mm(vol, c[0], c[1]) if f >= 0.9 else f, -dist)
                else:
                    key = (round(f, 9), -dist)
                if best_key is None or key > best_key:
                    best, best_key = (c, f), key
    site, f = best
    if rule == "pleura":  # move back (towards +z, posterior) until the wall is PLEURA_GAP_MM from its surface
        X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
        ix, iy = int(np.argmin(np.abs(X - site[0]))), int(np.argmin(np.abs(Y - site[1])))
        z = site[2]
        while z < Z[-1] - radius_mm and vol.hu[int(np.argmin(np.abs(Z - (z + radius_mm + PLEURA_GAP_MM)))), iy, ix] < -300:
            z += 1.0
        site = (site[0], site[1], z)
        f = float((vol.hu[_box(vol, site, radius_mm)] < -700).mean())
    return site, f


def lung_width_mm(vol) -> float:
    """Width (x) of the aerated lungs: air inside the body, not connected to the air around it."""
    from scipy import ndimage
    lab, _ = ndimage.label(vol.hu < -400)
    edge = np.unique(np.concatenate([lab[[0, -1]].ravel(), lab[:, [0, -1]].ravel(), lab[:, :, [0, -1]].ravel()]))
    xs = np.nonzero((lab > 0) & ~np.isin(lab, edge))[2]
    X = vol.axis_mm("x")
    return float(X[xs.max()] - X[xs.min()])


def main(ct_dir=DEFAULT_CT):
    case = case_from_ct(ct_dir, voxel_mm=2.0, gap_mm=15.0, protocol="chest")  # PA; contrast taken out
    vol = case.volume
    hu = np.clip(np.round(vol.hu), -1024, 3071).astype(np.int16)
    np.savez_compressed(ROOT / "phantoms" / "chest.npz", hu=hu, spacing_mm=np.array(vol.spacing_mm),
                        origin_mm=np.array(vol.origin_mm))
    top = float(vol.body_bounds_mm()[1, 2])
    objects, findings = [], []
    for name, c, d, mat, occult, rule, desc in NODULES:
        site, frac = best_site(vol, c, d / 2, rule)
        if frac < (0.6 if rule == "pleura" else 0.9):
            raise SystemExit(f"{name}: no aerated lung near {c} (best {frac:.2f} at {site})")
        site = tuple(round(float(v), 1) for v in site)
        print(f"{name}: {site} (lung {frac:.2f}" + (f", rib {rib_path_mm(vol, site[0], site[1]):.0f} mm"
                                                   if rule == "rib" else "") + ")")
        objects.append(f'[[object]]\ntype = "sphere"\nlabel = "{name}"\nmaterial = "{mat}"\n'
                       f"centre_mm = [{site[0]}, {site[1]}, {site[2]}]\ndiameter_mm = {d}\nfinding = \"{name}\"\n")
        findings.append(f'[[finding]]\nname = "{name}"\ncentre_mm = [{site[0]}, {site[1]}, {site[2]}]\n'
                        f"size_mm = {d}\noccult_on_plain_film = {str(occult).lower()}\n"
                        f'description = "{desc}"\ncode = "SCT:786838002"\n')
    text = f'''# Bundled case: the default PA chest, simulated from a real chest CT with synthetic nodules (volumedr default case).
# Generated by tools/make_ct_case.py; edit that script, not this file.
# Coordinates in mm: x = patient's left, y = caudal, z = height above the detector (PA).
# A hybrid phantom: the CT's voxels, with the nodules as exact analytic spheres inside them.

[case]
name = "chest"
title = "PA chest (real anatomy): pulmonary nodules, one hidden behind the heart"
region = "chest"
body_part = "CHEST"
patient_axes = "LFP"
position = "erect, PA, at the wall stand; one breath-hold"
field_mm = [{min(lung_width_mm(vol) + 40, vol.body_bounds_mm()[1, 0] - vol.body_bounds_mm()[0, 0]):.0f}.0, {vol.body_bounds_mm()[1, 1] - vol.body_bounds_mm()[0, 1]:.0f}.0]
effective_dose_coeff_msv_per_gy_cm2 = 0.26
effective_dose_reference = "Bath M, Svalkvist A, von Wrangel A, et al. Effective dose to patients from chest examinations with tomosynthesis. Radiat Prot Dosimetry 2010;139:153-158"
notes = "Anatomy from a real CT: {CITATION} The CT reaches from the thoracic inlet (trachea, lung apices) to the upper abdomen; it was contrast-enhanced, and the enhancement outside bone is taken out (a radiograph's patient has no contrast). The nodules and the granuloma are synthetic."
anatomy_source = "CT: TCIA CPTAC-PDA, subject C3N-00249"
history = """
62-year-old ex-smoker (40 pack-years), persistent cough for six weeks. Chest film reported as
'no focal lesion'. Volume DR requested before deciding on CT.
"""
teaching = """
Findings: a 10 mm solid nodule in the left lower lobe behind the heart (retrocardiac), hidden by the
cardiac shadow on the PA film; a 7 mm nodule in the right upper zone whose shadow falls on a rib; a
7 mm nodule in the left upper zone; an 8 mm subpleural nodule in the posterior costophrenic recess of
the right lower lobe, behind the dome, that the film shows only faintly through the liver; a 12 mm
nodule in the right mid zone and a calcified 5 mm granuloma, both visible on the film.
Why volume DR helps: real vessels, ribs and the heart overlap every nodule on the PA film; the sweep
separates them by depth, so on the slice at the nodule's height the vessels and ribs above and below
blur away. Scroll to each nodule: it is sharpest at its own height.
Pitfalls: vessels seen end-on look like nodules on one slice; follow them over a few slices (a vessel
becomes a branching tube, a nodule stays round and fades). The anatomy is real, so there are real
vessels and calcifications that are not marked findings. The subpleural nodule lies below the dome's
top on the film: lung behind the diaphragm is a classic hidden area; look for it on the posterior slices.
Compared with CT: the CT pane shows the same real CT with the nodules painted in; tomosynthesis
resolves depth only to a few mm and blurs structures above and below along the sweep direction.
"""

''' + table("protocol", CHEST_PROTOCOL) + "\n" + table("reconstruction", {
        "method": "fbp", "range_mm": [20.0, float(10 * np.floor((top - 10) / 10))], "spacing_mm": 2.0,
        "thickness_mm": 2.0}) + "\n" + dose_table(CHEST_DOSE) + f'''
[volume]
file = "chest.npz"
effective_energy_kev = {vol.effective_energy_kev:.1f}
description = "CPTAC-PDA C3N-00249 chest CT, 102 slices of 3 mm, table removed, contrast taken out, 2 mm voxels"

''' + "\n".join(objects) + "\n" + "\n".join(findings)
    (ROOT / "phantoms" / "chest.toml").write_text(text, encoding="utf-8")
    print(f"wrote phantoms/chest.toml and chest.npz ({hu.shape}, "
          f"{(ROOT / 'phantoms' / 'chest.npz').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CT)
