"""Build the default chest case on real anatomy (phantoms/chest.toml + phantoms/chest.npz).

Reads the public CPTAC-PDA chest CT in ../shared/data/chest-ct-cptac-pda (CC BY 3.0),
removes the table and the contrast enhancement, resamples it to 2 mm voxels in volumedr's frame (PA, anterior skin 15 mm
above the detector), stores HU as int16, and writes a case file with synthetic nodules (analytic spheres: a hybrid
phantom) placed in aerated lung near the intended sites, by the rule each site names.  Run from the repository root:

    .venv/bin/python tools/make_ct_case.py [chest] [cspine] [gallbladder] [kub] [hip] [sinus] [lumbar]

``cspine`` builds the cervical spine on the real neck CT in ../shared/data/neck-ct-tcga-thca (bundled);
``gallbladder`` and ``kub`` the gallstone and renal-stone cases on the abdomen-pelvis CT (bundled, both on
phantoms/abdomen.npz); ``hip`` the hip replacement on that CT's pelvis (bundled, phantoms/pelvis.npz);
``sinus`` and ``lumbar`` are drafts on the head and abdomen CTs, not bundled: see build_sinus and build_lumbar.
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

def save_volume(vol, path: Path) -> np.ndarray:
    """Store a case's CT volume as int16 HU (with its spacing and origin) in ``path``; returns the HU stored."""
    hu = np.clip(np.round(vol.hu), -1024, 3071).astype(np.int16)
    np.savez_compressed(path, hu=hu, spacing_mm=np.array(vol.spacing_mm), origin_mm=np.array(vol.origin_mm))
    return hu


def volume_toml(path: Path, vol, description: str) -> str:
    """The ``[volume]`` table of a case whose CT volume is in ``path`` (next to the case file)."""
    return f'''[volume]
file = "{path.name}"
effective_energy_kev = {vol.effective_energy_kev:.1f}
description = "{description}"
'''


def wrote(toml: Path, npz: Path, hu: np.ndarray) -> None:
    print(f"wrote {toml} and {npz.name} ({hu.shape}, {npz.stat().st_size / 1e6:.1f} MB)")


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


def best_site(vol, centre, radius_mm, rule="lung", search_mm=24.0, step=4.0, gap_mm=PLEURA_GAP_MM):
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
    if rule == "pleura":  # move back (towards +z, posterior) until the wall is gap_mm from its surface
        X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
        ix, iy = int(np.argmin(np.abs(X - site[0]))), int(np.argmin(np.abs(Y - site[1])))
        z = site[2]
        while z < Z[-1] - radius_mm and vol.hu[int(np.argmin(np.abs(Z - (z + radius_mm + gap_mm)))), iy, ix] < -300:
            z += 1.0
        site = (site[0], site[1], z)
        f = float((vol.hu[_box(vol, site, radius_mm)] < -700).mean())
    return site, f


def in_body_gas(vol):
    """Gas inside the body (HU < -400 not connected to the air around it): bowel gas and the lung bases."""
    from scipy import ndimage
    lab, _ = ndimage.label(vol.hu < -400)
    edge = np.unique(np.concatenate([lab[[0, -1]].ravel(), lab[:, [0, -1]].ravel(), lab[:, :, [0, -1]].ravel()]))
    return (lab > 0) & ~np.isin(lab, edge)


def lung_width_mm(vol) -> float:
    """Width (x) of the aerated lungs: air inside the body, not connected to the air around it."""
    xs = np.nonzero(in_body_gas(vol))[2]
    X = vol.axis_mm("x")
    return float(X[xs.max()] - X[xs.min()])


def build_chest(ct_dir=DEFAULT_CT):
    case = case_from_ct(ct_dir, voxel_mm=2.0, gap_mm=15.0, protocol="chest")  # PA; contrast taken out
    vol = case.volume
    npz = ROOT / "phantoms" / "chest.npz"
    hu = save_volume(vol, npz)
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
        "thickness_mm": 2.0}) + "\n" + dose_table(CHEST_DOSE) + "\n" + volume_toml(
        npz, vol, "CPTAC-PDA C3N-00249 chest CT, 102 slices of 3 mm, table removed, contrast taken out, 2 mm voxels"
    ) + "\n" + "\n".join(objects) + "\n" + "\n".join(findings)
    toml = ROOT / "phantoms" / "chest.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)


HEAD_CT = ROOT.parent / "shared" / "data" / "head-ct-cptac-lscc" / "series"
HEAD_CITATION = ("National Cancer Institute Clinical Proteomic Tumor Analysis Consortium (CPTAC). The Clinical "
                 "Proteomic Tumor Analysis Consortium Lung Squamous Cell Carcinoma Collection (CPTAC-LSCC). The "
                 "Cancer Imaging Archive, 2018. https://doi.org/10.7937/K9/TCIA.2018.6EMUB5L2. Subject C3N-04457, "
                 "licence CC BY 3.0. Clark K, et al. J Digit Imaging 2013;26(6):1045-1057.")
SINUS_VOXEL_MM = 1.5  # the head is small: 1.5 mm keeps the thin sinus walls and the septa (3.2 MB)


def antrum_site(vol, centre_mm, radius_mm):
    """A cyst's site on the floor of the maxillary antrum nearest ``centre_mm``: the antrum is the air cell
    (HU < -700 inside the head) that holds the voxel nearest the centre; in its plane of widest cross-
    section the cyst sits at the cross-section's middle (x) on its floor (the lowest air, +y), touching it.
    Returns (site, air fraction of the surroundings out to 2.5 radii in that plane)."""
    from scipy import ndimage

    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    body = vol.hu > -500
    for j in range(body.shape[1]):  # the head's outline in each axial plane, its air cells inside
        body[:, j] = ndimage.binary_fill_holes(body[:, j])
    cells = (vol.hu < -700) & ndimage.binary_erosion(body, iterations=2)
    lab, _ = ndimage.label(cells)
    zz, yy, xx = np.nonzero(cells)
    near = np.argmin((Z[zz] - centre_mm[2]) ** 2 + (Y[yy] - centre_mm[1]) ** 2 + (X[xx] - centre_mm[0]) ** 2)
    antrum = lab == lab[zz[near], yy[near], xx[near]]
    iz = int(np.argmax(antrum.sum(axis=(1, 2))))
    ys, xs = np.nonzero(antrum[iz])
    x = float(np.median(X[xs]))
    ix = int(np.argmin(np.abs(X - x)))
    floor = float(Y[np.nonzero(antrum[iz, :, ix])[0].max()] + vol.spacing_mm[1] / 2)
    site = (x, floor - radius_mm - 0.5, float(Z[iz]))
    dist = np.hypot(*np.meshgrid(Y - site[1], X - site[0], indexing="ij"))
    ring = (dist >= 1.2 * radius_mm) & (dist <= 2.5 * radius_mm)
    return site, float((vol.hu[iz][ring] < -700).mean())


def sphere_finding_toml(label, material, site, d, name, description, code) -> str:
    """The TOML of an analytic sphere and the occult finding it makes (the drafts' single finding)."""
    return f'''
[[object]]
type = "sphere"
label = "{label}"
material = "{material}"
centre_mm = [{site[0]}, {site[1]}, {site[2]}]
diameter_mm = {d}
finding = "{name}"

[[finding]]
name = "{name}"
centre_mm = [{site[0]}, {site[1]}, {site[2]}]
size_mm = {d}
occult_on_plain_film = true
contrast = "dense"
description = "{description}"
code = "{code}"
'''


def build_sinus(ct_dir=HEAD_CT):
    """A draft, not bundled: phantoms/sinus_ct.toml + head.npz, the real head CT, PA, with a retention cyst on
    the floor of the left antrum.  It does not pass the evidence yet (volumedr.evidence, 2026-12-02): CNR
    -0.65 on the film and -0.80 on the slice at its height; the cyst shows on its slice, but the blur of
    the real skull base and petrous bone across the 2 mm slice is as bright as the cyst, so the sinus air
    around it does not read as air (the analytic sinus, with a smooth skull, passes).  Earlier sites on the
    posterior wall measured 0.42 and -0.40.  Write it with ``make_ct_case.py sinus`` to look at it; delete
    both files afterwards."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KOYAMA, METTLER, header, protocol

    case = case_from_ct(ct_dir, voxel_mm=SINUS_VOXEL_MM, gap_mm=5.0, protocol="sinus")  # PA: nose 5 mm from the cover
    vol = case.volume
    npz = ROOT / "phantoms" / "head.npz"
    hu = save_volume(vol, npz)
    d = 10.0
    site, frac = antrum_site(vol, (50.0, 29.0, 57.0), d / 2)
    if frac < 0.3:
        raise SystemExit(f"cyst: no sinus air near the intended site (best {frac:.2f} at {site})")
    site = tuple(round(float(v), 1) for v in site)
    name = "mucous retention cyst, left maxillary sinus"
    print(f"{name}: {site} (air {frac:.2f})")
    b = vol.body_bounds_mm()
    text = header(
        "sinus_ct", "Paranasal sinuses PA (real anatomy): mucous retention cyst of the left maxillary sinus", "head",
        "SINUS", "LFP", "seated, erect, PA (forehead and nose on the detector), orbitomeatal line perpendicular",
        (200.0, 220.0), 0.03, "approximate E/KAP for PA skull/sinus projections",
        """
63-year-old with recurrent left cheek pressure and nasal blockage. Sinus film: 'left maxillary
antrum obscured by the petrous ridge; cannot exclude mucosal disease'. Volume DR requested in place
of a sinus CT.
""",
        """
Findings: a 10 mm dome-shaped mucous retention cyst on the floor of the left maxillary sinus.
Why volume DR helps: on a PA film at 0 degrees the dense petrous ridges and the skull base project
over the lower maxillary antra, hiding their floors. The ridges lie far behind the sinus, so on the
slice at the sinus' depth they blur away and the rounded soft-tissue cyst stands out against the
sinus air (published: sinus tomosynthesis 48 uSv vs 29 uSv for radiographs and 980 uSv for CT;
field notes).
Pitfalls: a retention cyst is usually incidental; an air-fluid level (flat, gravity-dependent, erect
only) means acute sinusitis instead. The zygoma, the turbinates and the real mucosa cross the antrum
on some slices; the anatomy is real, so there is real mucosal thickening that is not a marked finding.
Compared with CT: CT shows the ostiomeatal units, which volume DR cannot; for a cyst or fluid level the
slices suffice.
""").replace('effective_dose_reference = "approximate E/KAP for PA skull/sinus projections"\n',
             'effective_dose_reference = "approximate E/KAP for PA skull/sinus projections"\n'
             f'notes = "Anatomy from a real CT: {HEAD_CITATION} The head CT was contrast-enhanced; the enhancement '
             'outside bone is taken out. The cyst is synthetic (an analytic sphere in the real sinus air)."\n'
             'anatomy_source = "CT: TCIA CPTAC-LSCC, subject C3N-04457"\n')
    text = text.replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text += protocol(angle=30.0, n=60, sid=1000.0, pivot=60.0, kvp=75.0, filt="2.5Al", sweep_mas=48.0, film_mas=30.0,
                     rng=(10.0, float(10 * np.floor((b[1, 2] - 5) / 10))), spacing=2.0,
                     dose=((0.029, 0.1), (0.048, 0.07),
                           f"film: ../shared/FIELD-NOTES.md (sinus radiographs 29 uSv); {METTLER} (skull 0.1); "
                           f"sweep: FIELD-NOTES (sinus tomosynthesis 48 uSv); {KOYAMA} (head 0.07 mSv)"))
    text += volume_toml(npz, vol, f"CPTAC-LSCC C3N-04457 head CT, 85 slices of 3 mm, contrast taken out, "
                                  f"{SINUS_VOXEL_MM} mm voxels") + sphere_finding_toml("retention cyst", "soft_tissue", site, d, name,
                             "10 mm dome-shaped soft-tissue cyst on the floor of the left maxillary antrum", "")
    toml = ROOT / "phantoms" / "sinus_ct.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)


ABDOMEN_CT = ROOT.parent / "shared" / "data" / "abdomen-pelvis-ct-tcga-ov" / "series"
ABDOMEN_CITATION = ("Holback C, Jarosz R, Prior F, et al. The Cancer Genome Atlas Ovarian Cancer Collection "
                    "(TCGA-OV). The Cancer Imaging Archive, 2016. https://doi.org/10.7937/K9/TCIA.2016.NDO1MDFQ. "
                    "Subject TCGA-09-2043, licence CC BY 3.0. Clark K, et al. The Cancer Imaging Archive (TCIA): "
                    "maintaining and operating a public information repository. J Digit Imaging 2013;26(6):1045-1057.")
#: The renal pelvis of the left kidney, read off the AP volume's axial planes (x = the patient's right, so the left
#: kidney is at x < 0): its hilum opens medially at y -58..-46 mm, 125-135 mm above the detector; the bowel in
#: front of it (jejunal loops and the splenic flexure) holds 10-14 mm of gas on the AP rays through it.
KUB_STONE_CENTRE = (-45.0, -52.0, 128.0)


def pelvis_site(vol, centre, radius_mm, search_mm=8.0, step=2.0):
    """A stone's site in the renal pelvis near ``centre``: of the points within ``search_mm`` whose
    surroundings (a box 1.5 radii across) read as the renal sinus (unenhanced fat and urine, mean below
    40 HU), the one with the most bowel gas in front of it (along +z, within 3 mm of its AP ray), nearest
    the centre on ties.  Returns (site, mm of gas in front, mean HU around it)."""
    gas = in_body_gas(vol)
    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    offs = np.arange(-search_mm, search_mm + 1e-9, step)
    best, best_key = None, None
    for dx in offs:
        for dy in offs:
            for dz in offs:
                c = (centre[0] + dx, centre[1] + dy, centre[2] + dz)
                around = float(vol.hu[_box(vol, c, 1.5 * radius_mm)].mean())
                if around >= 40.0:
                    continue
                cols = gas[np.ix_(Z > c[2] + radius_mm, np.abs(Y - c[1]) <= 3.0, np.abs(X - c[0]) <= 3.0)]
                g = float(cols.sum(axis=0).mean() * vol.spacing_mm[0])
                key = (round(g, 6), -float(np.hypot(np.hypot(dx, dy), dz)))
                if best_key is None or key > best_key:
                    best, best_key = (c, g, around), key
    if best is None:
        raise SystemExit(f"no renal sinus (mean HU < 40) within {search_mm} mm of {centre}")
    return best


#: Faecal loading, modelled in over the left kidney: this CT's colon in front of the kidney is empty (the
#: pelvic mass pushes the bowel up and aside), and the real gas there lies in broad, smooth pockets the film's
#: background fit takes out.  The stool sits 75 mm in front of the stone, in the bowel and mesenteric fat
#: there (-60 to 30 HU on the CT), behind the real jejunal and colonic gas under the anterior wall.
KUB_STOOL_OFFSET_MM = (0.0, 0.0, 75.0)


def build_kub(ct_dir=ABDOMEN_CT, out=ROOT / "phantoms"):
    """phantoms/kub.toml (+ the shared abdomen.npz): the real abdomen-pelvis CT, AP supine, with a 6 mm
    calcium-oxalate stone in the real left renal pelvis (an analytic sphere) behind faecal loading modelled in
    (see KUB_STOOL_OFFSET_MM).  Measured (volumedr.evidence, seed 1; CNR film / slice): without the stool
    (2026-12-02) the stone reads on the film at every site: renal pelvis 3.65 / 5.98, right lower pole 11.8 /
    12.6, right pelvis 11.1 / 8.7, left lower pole 10.4 / 7.3, left upper pole behind gas 3.4 / 7.9 (4 mm: 3.7
    / 7.3; 5 mm: 3.5 / 7.0), proximal ureters 6.1-6.7 / 6.1-7.5; with the simulator's scatter at a
    scatter-to-primary ratio of 4 (0.67 after the grid) 2.97 / 5.61.  The figures with the stool are in
    docs/cases.md."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KUB_DOSE, METTLER, finding, header, protocol

    vol = abdomen_volume(ct_dir)
    npz = out / "abdomen.npz"
    hu = save_volume(vol, npz)
    d = 6.0
    site, g, around = pelvis_site(vol, KUB_STONE_CENTRE, d / 2)
    if g < 6.0:
        raise SystemExit(f"stone: only {g:.0f} mm of bowel gas in front of {site}")
    site = tuple(round(float(v), 1) for v in site)
    name = "left renal pelvic stone"
    print(f"{name}: {site} ({g:.0f} mm of gas in front, {around:.0f} HU around)")
    text = header(
        "kub", "Abdomen (KUB, real anatomy): left renal stone hidden by faecal loading", "abdomen", "ABDOMEN",
        "RFA", "supine, AP, on the table", (350.0, 420.0), 0.2,
        f"approximate E/KAP for AP abdomen; film checked against {METTLER} (abdomen 0.7 mSv)",
        """
69-year-old woman with left loin pain radiating to the groin and microscopic haematuria; a large
pelvic mass is known (under oncology follow-up). KUB film: 'no definite calculus; faecal loading
over the left flank'. Volume DR requested as a low-dose alternative to a stone CT.
""",
        """
Findings: a 6 mm calcium-oxalate stone in the left renal pelvis, hidden on the film by the mottled
stool and gas of a loaded colon in front of the kidney. Incidental and real: a very large cystic
pelvic mass rising into the mid abdomen (the patient's ovarian tumour), which pushes the bowel up and
to the sides, and a fluid-filled stomach.
Why volume DR helps: the colon lies about 75 mm in front of the kidney, so on the slice at the
kidney's depth its gas bubbles blur away along the sweep and the stone stands out in the renal sinus
fat (published: 75 % sensitivity for ureteric stones vs 39 % for ultrasound; KUB tomosynthesis
0.83 mSv vs 0.63 mSv for the film and about 3 mSv for stone CT).
Pitfalls: vascular calcifications and phleboliths mimic stones; follow the ureter's course. Stones
smaller than the slice thickness fade quickly out of focus. The anatomy is real, so real bowel content,
vessels and the transverse processes cross the kidneys on some slices.
Compared with CT: low-dose CT remains the reference; volume DR is good for follow-up of known stones.
""").replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text = text.replace(
        "\nhistory = ", f'\nnotes = "Anatomy from a real CT: {ABDOMEN_CITATION} The CT (lung bases to the '
        "proximal femora, 3 mm slices) was contrast-enhanced; the enhancement outside bone is taken out. "
        "Three skin markers on the back are taken off. This CT's colon in front of the left kidney is empty, "
        "so faecal loading is modelled in there (analytic stool and gas); the stone is synthetic (an analytic "
        'sphere in the real renal pelvis)."\n'
        'anatomy_source = "CT: TCIA TCGA-OV, subject TCGA-09-2043"\nhistory = ', 1)
    text += protocol(angle=30.0, n=60, sid=1100.0, pivot=round(site[2] / 10) * 10.0, kvp=80.0, filt="2.5Al",
                     sweep_mas=52.0, film_mas=40.0, rng=(20.0, 340.0), spacing=2.0, dose=KUB_DOSE)
    text += volume_toml(npz, vol, "TCGA-OV TCGA-09-2043 abdomen-pelvis CT, 160 slices of 3 mm, table removed, "
                                  "contrast taken out, 2 mm voxels, a gallbladder painted in")
    text += "\n" + faecal_loading("descending colon", np.add(site, KUB_STOOL_OFFSET_MM), (34, 40, 18), (28, 34, 13))
    text += (f'\n[[object]]\ntype = "sphere"\nlabel = "renal stone"\nmaterial = "calcium_oxalate"\n'
             f"centre_mm = [{site[0]}, {site[1]}, {site[2]}]\ndiameter_mm = {d}\nfinding = \"{name}\"\n\n")
    text += finding(name, site, d, True, "6 mm calcium oxalate stone in the left renal pelvis, behind a loaded "
                    "colon on the film", "SCT:95570007")
    toml = out / "kub.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)
    return toml


#: The gallbladder.  This subject's CT shows none in the fossa (contracted or removed: no bile-density pear under
#: the liver on any plane), so it is modelled in, as the issue allows: an ellipsoid of bile (water) hanging from
#: the visceral surface of the real liver, its fundus under the real hepatic-flexure gas (read off the AP
#: volume: two gas pockets at x 83-123, y -37..5, 317-341 mm above the detector), 65-90 mm in front of the
#: stone; the real right kidney lies 100 mm behind it.  It is painted into the voxels (partial volume from
#: 4 x 4 x 4 sub-samples), not kept as an analytic object: a large analytic object in fat showed a dark
#: outline on the film (the voxel material it removes is interpolated over a voxel, its own chord is exact).
GALLBLADDER = {"centre_mm": (92.0, -40.0, 262.0), "semi_axes_mm": (16.0, 38.0, 16.0), "rotation_deg": (-15.0, 0.0, 10.0)}
BILE_HU = 10.0


def paint_ellipsoid(vol, centre_mm, semi_axes_mm, rotation_deg, hu: float, label: str):
    """``vol`` with an ellipsoid of ``hu`` painted in (each voxel mixed by the part of it the ellipsoid fills)."""
    from volumedr.phantoms import primitives as P
    from volumedr.phantoms.volume import VoxelVolume
    from volumedr.simulate.voxel import analytic_occupancy

    packed = P.pack([P.ellipsoid(centre_mm, semi_axes_mm, "water", rotation_deg, label)])
    out = np.array(vol.hu, np.float32)
    for block, occ, _ in analytic_occupancy(vol, packed, supersample=4):
        out[block] = out[block] * (1.0 - occ) + np.float32(hu) * occ
    return VoxelVolume(hu=out, spacing_mm=vol.spacing_mm, origin_mm=vol.origin_mm,
                       effective_energy_kev=vol.effective_energy_kev, description=vol.description)


GALLSTONE_CENTRE = (95.0, -25.0, 252.0)  # on the posterior wall, under the flexure gas; see build_gallbladder


def gallstone_toml(stone, d=8.0, rim=0.8, nidus=3.0, name="gallstone (laminated)") -> str:
    """The laminated gallstone of the analytic case: a calcium-carbonate rim and nidus around a cholesterol body."""
    out = ""
    for label, mat, dd in (("gallstone (calcified rim)", "calcium_carbonate", d),
                           ("gallstone (cholesterol core)", "cholesterol", d - 2 * rim),
                           ("gallstone (calcified nidus)", "calcium_carbonate", nidus)):
        out += (f'\n[[object]]\ntype = "sphere"\nlabel = "{label}"\nmaterial = "{mat}"\n'
                f"centre_mm = [{stone[0]}, {stone[1]}, {stone[2]}]\ndiameter_mm = {dd}\nfinding = \"{name}\"\n")
    return out


def without_skin_markers(vol, dense_hu=1500.0, skin_mm=20.0, tissue_hu=30.0):
    """``vol`` without the dense objects lying on the back's skin (above ``dense_hu``, within ``skin_mm`` of
    the lowest tissue: ECG electrodes or skin markers, three on this CT at x 33-40, y -239..-207 mm, up to
    2674 HU); the metal finder rightly took them for metal, and a radiograph's patient need not wear them."""
    from scipy import ndimage

    from volumedr.phantoms.volume import VoxelVolume

    hu = np.array(vol.hu, np.float32)
    lab, _ = ndimage.label(ndimage.binary_dilation(hu > dense_hu, iterations=2))
    skin = int(np.nonzero((hu > -300).any(axis=(1, 2)))[0][0])  # the lowest plane with tissue (the back)
    removed = 0
    for sl in ndimage.find_objects(lab):
        if sl[0].stop - 1 <= skin + skin_mm / vol.spacing_mm[0]:
            box = hu[sl]
            removed += int((box > 300).sum())
            box[box > 300] = tissue_hu
    print(f"removed {removed} voxels of skin markers")
    return VoxelVolume(hu=hu, spacing_mm=vol.spacing_mm, origin_mm=vol.origin_mm,
                       effective_energy_kev=vol.effective_energy_kev, description=vol.description)


def abdomen_volume(ct_dir=ABDOMEN_CT, gallbladder=GALLBLADDER):
    """The abdomen-pelvis CT at 2 mm, AP supine (the back 15 mm above the detector), contrast taken out, the
    skin markers on the back taken off, the gallbladder painted in: phantoms/abdomen.npz, which every case
    on this CT shares."""
    vol = without_skin_markers(case_from_ct(ct_dir, voxel_mm=2.0, gap_mm=15.0, protocol="gallbladder").volume)
    g = gallbladder
    return paint_ellipsoid(vol, g["centre_mm"], g["semi_axes_mm"], g["rotation_deg"], BILE_HU, "gallbladder")


def build_gallbladder(ct_dir=ABDOMEN_CT, out=ROOT / "phantoms", stone=GALLSTONE_CENTRE, gallbladder=GALLBLADDER):
    """phantoms/gallbladder.toml + abdomen.npz: the real abdomen-pelvis CT, AP supine, with a modelled-in
    gallbladder (see GALLBLADDER) and a laminated 8 mm gallstone on its dependent (posterior) wall (an analytic
    rim, body and nidus: a hybrid phantom).  Measured (volumedr.evidence, seed 1, 2026-12-02; CNR film /
    slice): (95, -25, 252) 1.92 / 10.97 (focus 250); before the gallbladder was painted in (analytic
    ellipsoid): 1.71 / 7.55; other sites under the flexure: (95, -25, 250) 1.74 / 8.86 (focus 248), (85, -40,
    250) 4.25 / 7.29 (beside the gas), (105, -15, 250) 3.94 / 9.56.  The stone reads faintly on the film in
    retrospect (a dot among the gas edges), as small calcified gallstones do.

    This subject is 390-410 mm from back to front (the pelvic mass), and at the KUB exposure (0.87 mAs a
    view) about 1 % of the pixels over the lumbar spine and pelvis get no photons (zero counts, clipped at a
    transmission of 1e-6, line integral 13.8).  The metal finder first took them for metal in every view
    (200 mm² a view); it now seeds metal only where a 2 x 2 block of pixels is above its threshold
    (volumedr.reconstruct.metal._seeds), which scattered starved pixels are not.  (Clamping the signal at a
    floor before the log instead broke the dose trial's ordering of d' with dose.)  Three skin markers on
    the back (up to 2674 HU), which the metal finder rightly took for metal, are taken off."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KUB_DOSE, METTLER, header

    vol = abdomen_volume(ct_dir, gallbladder)
    npz = out / "abdomen.npz"
    hu = save_volume(vol, npz)
    name = "gallstone (laminated)"
    text = header(
        "gallbladder", "Abdomen AP (real anatomy): laminated gallstone hidden by hepatic-flexure gas", "abdomen",
        "ABDOMEN", "RFA", "supine, AP, on the table", (350.0, 420.0), 0.2,
        f"approximate E/KAP for AP abdomen; film checked against {METTLER} (abdomen 0.7 mSv)",
        """
69-year-old woman under oncology follow-up for a large pelvic mass, now with episodes of right upper
quadrant pain after fatty meals. Abdominal film: 'no calcified gallstone seen; gas in the hepatic
flexure'. Ultrasound unavailable until next week.
""",
        """
Findings: a solitary 8 mm laminated gallstone: a cholesterol body with a thin calcified rim and a
calcified nidus (calcium carbonate), lying on the dependent, posterior wall of a mildly distended
gallbladder whose fundus hangs below the liver edge. Incidental and real: a very large cystic pelvic
mass rising into the mid abdomen (the patient's ovarian tumour) and a fluid-filled stomach.
Why volume DR helps: on the AP film the stone's thin rim is lost among the lucencies of the gas in the
hepatic flexure in front of it and the real liver edge, the right kidney, rib 12 and the transverse
processes behind it. The flexure lies 60-90 mm in front of the stone and the kidney 100 mm behind
it, so on the slice at the stone's depth they blur away along the sweep and the stone stands out as a
ring around a dot (the seed textbook lists gallstones among volume DR's abdominal uses).
Pitfalls: only about 15-20 % of gallstones contain enough calcium to be seen by radiography; a
negative study does not exclude stones (ultrasound is the test of choice). Renal stones, costal
cartilage calcification and vascular calcification lie at other depths: read the height of the slice
where the ring is sharpest. Supine, stones sink to the posterior wall; erect, they layer at the fundus.
The anatomy is real, so real bowel content and vessels cross the right upper quadrant on some slices.
Compared with CT: CT misses many pure cholesterol stones (isodense with bile); ultrasound is better
than both.
""").replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text = text.replace(
        "\nhistory = ", f'\nnotes = "Anatomy from a real CT: {ABDOMEN_CITATION} The CT (lung bases to the '
        "proximal femora, 3 mm slices) was contrast-enhanced; the enhancement outside bone is taken out. "
        "Three skin markers on the back (up to 2674 HU) are taken off. The CT shows no gallbladder (contracted or removed), so one is modelled in: an ellipsoid of bile "
        'painted into the voxels under the real liver. The gallbladder and the stone are synthetic."\n'
        'anatomy_source = "CT: TCIA TCGA-OV, subject TCGA-09-2043"\nhistory = ', 1)
    from make_cases import finding, protocol
    text += protocol(angle=30.0, n=60, sid=1100.0, pivot=round(stone[2] / 10) * 10.0, kvp=80.0, filt="2.5Al",
                     sweep_mas=52.0, film_mas=40.0, rng=(20.0, 340.0), spacing=2.0, dose=KUB_DOSE)
    text += volume_toml(npz, vol, "TCGA-OV TCGA-09-2043 abdomen-pelvis CT, 160 slices of 3 mm, table removed, "
                                  "contrast taken out, 2 mm voxels, a gallbladder painted in")
    text += gallstone_toml(stone, name=name)
    text += "\n" + finding(name, stone, 8.0, True, "solitary 8 mm laminated gallstone (calcified rim and nidus) on the "
                          "posterior wall of the gallbladder, under the hepatic-flexure gas on the film", "SCT:266474003")
    toml = out / "gallbladder.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)
    return toml


NECK_CT = ROOT.parent / "shared" / "data" / "neck-ct-tcga-thca" / "series"
NECK_CITATION = ("Kirk S, Lee Y, Roche C, et al. The Cancer Genome Atlas Thyroid Cancer Collection (TCGA-THCA). "
                 "The Cancer Imaging Archive, 2016. https://doi.org/10.7937/K9/TCIA.2016.9ZFRVF1B. Subject TCGA-E3-A3E5, "
                 "licence CC BY 3.0. Clark K, et al. The Cancer Imaging Archive (TCIA): maintaining and operating a "
                 "public information repository. J Digit Imaging 2013;26(6):1045-1057.")
CSPINE_VOXEL_MM = 1.0  # the dens' cortex is 1-2 mm thick
#: The dens of the real C2, read off the AP volume (1 mm voxels, back 10 mm above the detector; y grows
#: caudally, x < 0 is the patient's left): a peg about 11 mm across, its axis along y at x -5, z 130.5, from
#: its tip at y -68 to where it widens into the body of C2 at y -47 (the body spans y -45..-25); the C1
#: anterior arch lies in front of it (z 137-141), the lateral masses of C1 beside it (|x + 5| > 9 mm).
DENS_AXIS_XZ = (-5.0, 130.5)
DENS_RADIUS_MM = 5.5
#: The fracture crosses the waist of the dens, 7 mm below its tip, level with the lateral masses of C1.
#: Where the line goes decides what the film shows (volumedr.evidence, seed 1, 1 mm slices; CNR film / slice):
#: y -48 (the junction with the body) 3.84 / 2.76, -54 1.18 / 1.52, -57 1.26 / 1.85, -58 1.31 / 2.00,
#: -59 0.94 / 2.03 (seeds 2 and 3: 0.94 / 1.97, 2.04), -60 0.15 / 1.83.  Low on the dens only the smooth
#: symphysis of the mandible lies over the line and the film shows it; from -59 up the crowns of the
#: incisors and the alveolus do.  Those figures were measured with the first hybrid model, whose
#: voxel-occupancy hole blurred the gap's edges; with the exact replacement along the chords (2026-12-03):
#: -59 1.77 / 2.59 (the film shows the sharper gap), -60 1.36 / 2.45, -61 0.77 / 2.23; a 1.5 mm gap at -59
#: 1.52 / 2.51, at -60 0.88 / 2.25.
FRACTURE_Y = -61.0


def build_cspine(ct_dir=NECK_CT, out=ROOT / "phantoms"):
    """phantoms/cspine.toml + neck.npz: the real neck CT, AP supine, mouth closed, with a type II odontoid
    fracture (a 2 mm soft-tissue gap across the waist of the real dens: an analytic box that replaces the
    bone along its own chord).  The neck is cropped to |x| <= 100 mm (the collimated field never reaches the
    shoulders beyond) and stored at 1 mm (258 x 238 x 201 voxels, 9.2 MB); see FRACTURE_Y for what the film
    and the slice show at each level of the dens."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KOYAMA, METTLER, finding, header, protocol

    from volumedr.phantoms.volume import VoxelVolume

    case = case_from_ct(ct_dir, voxel_mm=CSPINE_VOXEL_MM, gap_mm=10.0, protocol="cspine")
    vol = case.volume
    # the collimated field (180 x 240 mm at the detector) never reaches the shoulders beyond |x| = 100 mm
    X = vol.axis_mm("x")
    keep = np.abs(X) <= 100.0
    vol = VoxelVolume(hu=np.ascontiguousarray(vol.hu[:, :, keep]), spacing_mm=vol.spacing_mm,
                      origin_mm=(float(X[keep][0]), vol.origin_mm[1], vol.origin_mm[2]),
                      effective_energy_kev=vol.effective_energy_kev, description=vol.description)
    npz = out / "neck.npz"
    hu = save_volume(vol, npz)
    dx, dz = DENS_AXIS_XZ
    # the dens must be bone where the fracture goes: its cortex ring around the axis at the base
    ring = float(vol.hu[_box(vol, (dx, FRACTURE_Y, dz), DENS_RADIUS_MM)].mean())
    if ring < 250.0:
        raise SystemExit(f"no dens at ({dx}, {FRACTURE_Y}, {dz}): mean {ring:.0f} HU")
    name = "type II odontoid fracture"
    left = (round(dx - DENS_RADIUS_MM, 1), FRACTURE_Y, dz)  # the finding at the left cortical break
    b = vol.body_bounds_mm()
    text = header(
        "cspine", "Cervical spine AP (real anatomy): odontoid (dens) fracture hidden behind the teeth", "neck",
        "CSPINE", "RFA", "supine, AP, mouth closed (the patient cannot open the mouth: collar)", (180.0, 240.0), 0.1,
        "approximate E/KAP for AP cervical spine",
        """
78-year-old who fell backwards down three stairs; neck pain, in a collar. AP and lateral films:
'no fracture seen; the dens is obscured by the teeth and the mandible'. An open-mouth view is not
possible. Volume DR requested before CT.
""",
        """
Findings: a type II odontoid fracture, a lucent line about 2 mm wide across the waist of the dens,
level with the lateral masses of C1, undisplaced; it breaks both lateral cortices of the dens (the
finding is marked at the left cortical break, the most conspicuous sign).
Why volume DR helps: with the mouth closed the crowns of the incisors, the alveolus and the symphysis
of the mandible project over the dens on the AP film. They lie 70-100 mm in front of it, so on the slice at the dens'
depth they blur away and the fracture line across the dens base is seen (the seed textbook lists
odontoid fractures among volume DR's spinal uses).
Pitfalls: the gap between the incisors (Mach band) and the lower edge of the posterior arch of C1
cross the dens and mimic a fracture; a true fracture crosses both cortices and persists over
several slices. Type II fractures are unstable: keep the collar. The anatomy is real: the patient's
own degenerative change and the head rest under the occiput are in the picture.
Compared with CT: CT is the reference in the elderly with neck trauma; volume DR helps where the
films are equivocal and CT is not at hand.
""").replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text = text.replace(
        "\nhistory = ", f'\nnotes = "Anatomy from a real CT: {NECK_CITATION} The CT (skull base to the clavicles, 3 mm '
        'slices every 1.5 mm) was contrast-enhanced; the enhancement outside bone is taken out. The fracture is '
        'synthetic (an analytic 2 mm soft-tissue gap across the real dens)."\n'
        'anatomy_source = "CT: TCIA TCGA-THCA, subject TCGA-E3-A3E5"\nhistory = ', 1)
    text += protocol(angle=30.0, n=60, sid=1000.0, pivot=round(dz / 10) * 10.0, kvp=75.0, filt="2.5Al",
                     sweep_mas=40.0, film_mas=25.0, rng=(60.0, float(10 * np.floor((b[1, 2] - 10) / 10))), spacing=1.0,
                     dose=((0.07, 0.3), (0.07, 0.3),
                           f"film: {METTLER} (cervical spine 0.2 mSv, range 0.07-0.3); sweep: the same range "
                           f"(head/neck tomosynthesis 0.07 mSv in {KOYAMA})"))
    text += volume_toml(npz, vol, f"TCGA-THCA TCGA-E3-A3E5 neck CT, 159 slices of 3 mm every 1.5 mm, contrast taken "
                                  f"out, {CSPINE_VOXEL_MM} mm voxels") + f'''
[[object]]
type = "box"
label = "dens fracture line"
material = "soft_tissue"
centre_mm = [{dx}, {FRACTURE_Y}, {dz}]
size_mm = [{2 * DENS_RADIUS_MM + 2}, 2.0, {2 * DENS_RADIUS_MM + 2}]
rotation_deg = [-10.0, 0.0, 0.0]
finding = "{name}"

''' + finding(name, left, 3.0, True, "2 mm fracture line across the waist of the real dens breaking its lateral cortex, "
                   "behind the teeth on the film", "SCT:71030004", contrast="lucent")
    toml = out / "cspine.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)


# ------------------------------------------------------------------------------------------------ hip
#: The right hip joint of the abdomen-pelvis CT (2 mm AP volume, x = the patient's right): a sphere fitted to
#: the cortex of the femoral head and the acetabulum (HU > 300, 14-30 mm from the centre, least squares)
#: gives a centre at (80, 185, 162) mm, radius 24.6 mm.  The CT's last plane is at y 237, through the femoral neck and
#: the top of the greater trochanter: the rest of the proximal femur is not in it (see build_hip).
HIP_CENTRE_CT = (80.0, 185.0, 162.0)
#: The femoral neck runs from the head's centre towards the greater trochanter at about (135, 225, 165).
NECK_DIR = np.array([54.0, 39.0, 4.0]) / np.linalg.norm([54.0, 39.0, 4.0])
#: Where the field's centre lies in the CT's frame: 38 mm below and 2 mm lateral of the joint, as in the
#: analytic hip (the film shows the ilium above the cup and the whole stem below it).
HIP_FIELD_CENTRE_CT = (82.0, 223.0)
HIP_EXTEND_MM = 220.0  # synthetic thigh below it: the stem's tip plus the sweep's reach


def hip_volume(ct_dir=ABDOMEN_CT):
    """The pelvis of the abdomen-pelvis CT for the hip case, in the hip's frame (the field's centre at x = y
    = 0): cropped to y >= 20 and x >= -100 mm (the field never reaches beyond), the real femoral neck
    beyond the cup taken out (resected at arthroplasty), and extended caudally by HIP_EXTEND_MM of
    synthetic thigh: the CT's last plane repeated with its bone made muscle (the femur there is analytic)."""
    from volumedr.phantoms.volume import VoxelVolume

    vol = without_skin_markers(case_from_ct(ct_dir, voxel_mm=2.0, gap_mm=15.0, protocol="gallbladder").volume)
    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    tissue = (vol.hu > -300).any(axis=(0, 2))
    keep_y = (Y >= 20.0) & (Y <= Y[np.nonzero(tissue)[0][-1]])  # up to the last plane with tissue (y 237)
    hu = np.array(vol.hu[:, keep_y][:, :, X >= -100.0], np.float32)
    X, Y = X[X >= -100.0], Y[keep_y]
    # resection: the real neck between the cup and the stem's shoulder, out to 48 mm along the neck axis
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    d = np.stack([xx - HIP_CENTRE_CT[0], yy - HIP_CENTRE_CT[1], zz - HIP_CENTRE_CT[2]], -1)
    along = d @ NECK_DIR
    off = np.linalg.norm(d - along[..., None] * NECK_DIR, axis=-1)
    neck = (along > 0) & (along < 48.0) & (off < 22.0) & (np.linalg.norm(d, axis=-1) > 20.0) & (hu > 100.0)
    hu[neck] = MUSCLE_HU
    print(f"resected {int(neck.sum())} voxels of the real femoral neck")
    from scipy import ndimage

    last = hu[:, -1].copy()
    last[last > 100.0] = MUSCLE_HU
    # the thigh's vessels and septa would run on as straight streaks: soften them (4 mm) over the first 20 mm
    soft = np.where(last > -300.0, ndimage.gaussian_filter(np.where(last > -300.0, last, MUSCLE_HU), 2.0), last)
    n = int(round(HIP_EXTEND_MM / vol.spacing_mm[1]))
    t = np.clip(np.arange(1, n + 1) * vol.spacing_mm[1] / 20.0, 0.0, 1.0)[None, :, None]
    hu = np.concatenate([hu, (1.0 - t) * last[:, None] + t * soft[:, None]], axis=1)
    origin = (float(X[0] - HIP_FIELD_CENTRE_CT[0]), float(Y[0] - HIP_FIELD_CENTRE_CT[1]), vol.origin_mm[2])
    return VoxelVolume(hu=np.ascontiguousarray(hu), spacing_mm=vol.spacing_mm, origin_mm=origin,
                       effective_energy_kev=vol.effective_energy_kev, description=vol.description)


MUSCLE_HU = 45.0


def to_hip(p):
    """A point of the CT's frame in the hip case's frame."""
    return tuple(round(float(v), 1) for v in (p[0] - HIP_FIELD_CENTRE_CT[0], p[1] - HIP_FIELD_CENTRE_CT[1], p[2]))


def faecal_loading(label, centre, semi_axes_mm, spread_mm, to_frame=lambda p: tuple(round(float(v), 1) for v in p),
                   n_gas=200, seed=11, gas_radius_mm=(1.5, 5.0)) -> str:
    """A loaded stretch of colon, modelled in: an analytic ellipsoid of stool (soft tissue) with ``n_gas`` gas
    bubbles spread uniformly over an ellipsoid ``spread_mm`` inside it (deterministic), the mottled
    lucencies that hide small findings on an abdominal film.  ``to_frame`` maps points to the case's frame."""
    from make_cases import obj

    o = obj("ellipsoid", f"{label} (stool)", "soft_tissue", centre_mm=to_frame(centre), semi_axes_mm=semi_axes_mm)
    rng = np.random.default_rng(seed)
    for k in range(n_gas):
        v = rng.normal(0, 1, 3)
        v *= rng.uniform(0, 1) ** (1 / 3) / np.linalg.norm(v)  # uniform in the unit ball
        o += obj("sphere", f"{label} gas {k}", "air", centre_mm=to_frame(np.add(centre, v * spread_mm)),
                 radius_mm=float(rng.uniform(*gas_radius_mm)))
    return o


def hip_objects(lesion, d_lesion, name):
    """The analytic part of the hip case (CT frame in, hip frame out): the proximal femur below the CT's end
    (synthetic: greater and lesser trochanter, metaphysis, shaft), the osteolysis, and the implant (titanium
    cup with a polyethylene liner and a 28 mm CoCr head, titanium neck and stem), in painting order."""
    from make_cases import obj

    c = np.array(HIP_CENTRE_CT)
    u = NECK_DIR
    T = to_hip
    o = ""
    # the femur: the shaft leans 7 degrees medially going down (towards -x), anteversion ignored
    shaft0, shaft1 = c + (34, 70, -2), c + (18, 230, -4)
    # (centre, semi-axes, rotation, cortex mm); every cortex before any marrow, so the femur has one outer cortex
    parts = {"greater trochanter": (c + (62, 48, 0), (16, 26, 20), (0, 0, 10), 1.5),
             "intertrochanteric region": (c + (40, 62, -2), (26, 24, 22), (0, 0, -30), 2.0),
             "lesser trochanter": (c + (20, 72, -14), (9, 10, 9), (0, 0, 0), 1.5)}
    for layer, material in (("cortex", "cortical_bone"), ("marrow", "cancellous_bone")):
        inner = layer == "marrow"
        for part, (cc, semi, rot, cortex) in parts.items():
            o += obj("ellipsoid", f"femur, {part} ({layer})", material, centre_mm=T(cc),
                     semi_axes_mm=tuple(v - cortex * inner for v in semi), rotation_deg=rot)
        o += obj("cylinder", f"femoral shaft ({layer})", material, p0_mm=T(shaft0), p1_mm=T(shaft1),
                 radius_mm=9.0 if inner else 14.0)
    o += obj("sphere", "osteolysis (granuloma)", "soft_tissue", centre_mm=T(lesion), diameter_mm=d_lesion, finding=name)
    # the caecum, modelled in (this CT's right iliac fossa holds no bowel content in front of the ilium):
    # faecal loading, stool mottled with gas, 75 mm in front of the cavity
    o += faecal_loading("caecum", np.add(lesion, (5.0, -5.0, 75.0)), (38, 42, 22), (32, 36, 16), T)
    # the implant: the cup reamed into the real acetabulum, opening 45 degrees lateral-caudal, 15 anteverted
    op = np.array([0.69, 0.69, 0.22]) / np.linalg.norm([0.69, 0.69, 0.22])
    o += obj("sphere", "acetabular cup (Ti-6Al-4V)", "titanium", centre_mm=T(c), radius_mm=26.0)
    o += obj("sphere", "polyethylene liner", "polyethylene", centre_mm=T(c), radius_mm=23.0)
    o += obj("cylinder", "cup opening", "muscle", p0_mm=T(c), p1_mm=T(c + 36 * op), radius_mm=17.0)
    o += obj("sphere", "femoral head (CoCr)", "cocr", centre_mm=T(c), radius_mm=14.0)
    shoulder = c + 44 * u
    o += obj("cylinder", "stem neck (Ti-6Al-4V)", "titanium", p0_mm=T(c), p1_mm=T(shoulder), radius_mm=6.0)
    mid = shaft0 + 0.35 * (shaft1 - shaft0)
    tip = shaft0 + 0.62 * (shaft1 - shaft0)
    o += obj("cylinder", "stem, proximal (Ti-6Al-4V)", "titanium", p0_mm=T(shoulder - 4 * u), p1_mm=T(mid), radius_mm=9.0)
    o += obj("cylinder", "stem, distal (Ti-6Al-4V)", "titanium", p0_mm=T(mid), p1_mm=T(tip), radius_mm=6.0)
    return o


def lysis_site(vol_ct_hu, axes, target, radius_mm, search_mm=2.0, step=2.0):
    """The point near ``target`` (CT frame) whose sphere of ``radius_mm`` (plus 3 mm) holds the most bone
    (mean HU): the cavity is made in real, thick bone.  Its height is then moved to the centroid of the bone
    it removes (HU above soft tissue), so that the cavity's own signal -- the bone it takes out -- is centred
    on it and not on the denser cortex above or below.  Returns (site, mean HU)."""
    X, Y, Z = axes
    best = None
    offs = np.arange(-search_mm, search_mm + 1e-9, step)
    r = radius_mm + 3.0
    for dx in offs:
        for dy in offs:
            for dz in offs:
                p = (target[0] + dx, target[1] + dy, target[2] + dz)
                box = vol_ct_hu[np.ix_(np.abs(Z - p[2]) <= r, np.abs(Y - p[1]) <= r, np.abs(X - p[0]) <= r)]
                m = float(box.mean())
                if best is None or m > best[1]:
                    best = (p, m)
    p = list(best[0])
    for _ in range(3):
        zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
        inside = (xx - p[0]) ** 2 + (yy - p[1]) ** 2 + (zz - p[2]) ** 2 <= radius_mm ** 2
        w = np.clip(vol_ct_hu[inside] - 40.0, 0.0, None)
        p[2] = float(np.round(np.sum(w * zz[inside]) / np.sum(w)))
    return tuple(p), best[1]


#: The osteolysis: DeLee-Charnley zone II, above the cup's dome (CT frame), in the thick real bone of the iliac
#: body; lysis_site centres it on the bone it removes.  Sites tried (volumedr.evidence, seed 1, CNR film / slice,
#: 2026-12-03): (47, 135, 162) above and medial, in thin bone (157 HU): 1.36 / 1.40; (88, 123, 150) before the
#: caecum was modelled in: 1.05 / 1.14 (the film shows the cavity plainly: no bowel over it in this CT); behind
#: the cup (retro-acetabular, 12 mm at (66, 175, 128)): 0.32 / -0.21 (the cup's blur fills the slice); this
#: site with the caecum, 30 degree sweep: 1.43 / 1.89 (focus 4 mm low); 40 degrees: 1.41 / 2.23 (focus 146).
HIP_LESION_TARGET_CT = (94.0, 125.0, 150.0)
HIP_LESION_MM = 16.0


def build_hip(ct_dir=ABDOMEN_CT, out=ROOT / "phantoms"):
    """phantoms/hip.toml + pelvis.npz: a right total hip replacement in the real pelvis of the abdomen-pelvis CT
    (AP supine), with a wear-debris osteolysis in the real supra-acetabular ilium.  The CT stops through the
    femoral neck, so the femur below it is synthetic (analytic trochanters and shaft under a thigh made by
    repeating the CT's last plane); the cup, the head and the stem are exact analytic implants that replace
    the voxels along their chords; the real femoral neck beyond the cup is taken out (resected)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KOYAMA, METTLER, finding, header, protocol

    vol = hip_volume(ct_dir)
    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    axes_ct = (X + HIP_FIELD_CENTRE_CT[0], Y + HIP_FIELD_CENTRE_CT[1], Z)
    site, mean = lysis_site(vol.hu, axes_ct, HIP_LESION_TARGET_CT, HIP_LESION_MM / 2)
    print(f"osteolysis at {to_hip(site)} (hip frame; {mean:.0f} HU around)")
    npz = out / "pelvis.npz"
    hu = save_volume(vol, npz)
    name = "periacetabular osteolysis, zone II"
    b = vol.body_bounds_mm()
    text = header(
        "hip", "Right hip AP (real pelvis): total hip replacement with osteolysis behind the caecum", "pelvis", "HIP",
        "RFA", "supine, AP, feet internally rotated 15 degrees", (240.0, 300.0), 0.2,
        f"approximate E/KAP for AP hip/pelvis; film checked against {METTLER} (hip 0.7 mSv)",
        """
69-year-old woman with a right total hip replacement (uncemented titanium stem and cup, 28 mm
cobalt-chrome head on a polyethylene liner) twelve years ago, now under oncology follow-up for a large
pelvic mass; two months of groin pain on weight bearing. AP hip film: 'components in satisfactory
position; no definite loosening; faecal loading over the right ilium'.
""",
        """
Findings: a 16 mm osteolytic cavity in the supra-acetabular ilium above the cup's dome (DeLee-Charnley
zone II), about 30 mm from it: granuloma from polyethylene wear debris, a sign of impending loosening.
Incidental and real: a very large cystic pelvic mass (the patient's ovarian tumour) filling the pelvis.
Why volume DR helps: the caecum lies in the right iliac fossa about 75 mm in front of the ilium, and on
the AP film its mottled stool and gas lie over the cavity and hide it among dozens of rounded
lucencies. On the slice at the depth of the bone the bowel blurs away along the sweep (40 degrees here,
for depth resolution in a thick pelvis) and the cavity stands out in the real iliac bone, its edge sharp
(published: tomosynthesis is superior to radiography for demarcating osteolysis around hip
arthroplasty; Gothlin JH, Geijer M. The utility of digital linear tomosynthesis imaging of total hip
joint arthroplasty with suspicion of loosening: a prospective study in 40 patients. Biomed Res Int
2013:594631).
Pitfalls: metal produces ripple and streaks along the sweep direction on slices above and below the
implant; judge the bone on slices away from the metal, and beside the cup rather than under it (a
cavity directly behind the cobalt-chrome head stays hidden: the head stops almost every photon in
every view). A lucency under 2 mm along the stem that does not progress is acceptable.
Compared with CT: CT with metal-artefact reduction measures the volume of lysis before revision;
volume DR is the low-dose follow-up.
""").replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text = text.replace(
        "\nhistory = ", f'\nnotes = "Anatomy from a real CT: {ABDOMEN_CITATION} The CT (lung bases to the '
        "proximal femora, 3 mm slices) was contrast-enhanced; the enhancement outside bone is taken out. The CT "
        "stops through the femoral neck: the femur below it (trochanters and shaft) is synthetic, analytic "
        "bone under a thigh made by repeating the CT's last plane, and the pelvis ends abruptly there. This "
        "CT's right iliac fossa holds no bowel content in front of the ilium, so a stool-filled caecum is "
        "modelled in (analytic stool and gas). The implant, its resection of the real femoral neck, the "
        "caecum and the osteolysis are synthetic; the pelvis, the acetabulum the cup sits in and the ilium "
        'the cavity is made in are real."\n'
        'anatomy_source = "CT: TCIA TCGA-OV, subject TCGA-09-2043 (femur below the neck synthetic)"\nhistory = ', 1)
    text += protocol(angle=40.0, n=60, sid=1100.0, pivot=round(site[2] / 10) * 10.0, kvp=80.0, filt="2.5Al",
                     sweep_mas=110.0, film_mas=40.0, rng=(20.0, float(10 * np.floor((b[1, 2] - 10) / 10))),
                     spacing=2.0, mar=True,
                     dose=((0.18, 2.71), (1.0, 1.0), f"film: {METTLER} (hip 0.7 mSv, range 0.18-2.71); "
                                                     f"sweep: {KOYAMA} (hip-joint tomosynthesis about 1 mSv)"))
    text += volume_toml(npz, vol, "TCGA-OV TCGA-09-2043 abdomen-pelvis CT, pelvis from y 20 mm, 3 mm slices, "
                                  f"contrast taken out, 2 mm voxels, {HIP_EXTEND_MM:.0f} mm of synthetic thigh below")
    text += "\n" + hip_objects(site, HIP_LESION_MM, name) + "\n" + finding(
        name, to_hip(site), HIP_LESION_MM, True,
        "16 mm osteolytic cavity (wear-debris granuloma) in the real supra-acetabular ilium above the cup's "
        "dome, under the caecum on the AP film", "ICD10CM:T84.05", contrast="lucent")
    toml = out / "hip.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)
    return toml


# --------------------------------------------------------------------------------------------- lumbar
#: The second lumbar vertebra of the abdomen-pelvis CT (AP volume, CT frame).  Levels counted from the 12th ribs,
#: whose heads meet the spine at y -110..-95 (T12), and the iliac crests at y 50 (L4): on coronal planes through
#: the bodies (z 108-140) the discs bulge at y -85 (T12/L1), -50 (L1/L2) and -15 (L2/L3), so the L2 body spans
#: y -47..-18; it lies off the midline (x -13..33) and 107-147 mm above the detector.
L2_TOP_Y = -47.0
L2_CENTRE_XZ = (10.0, 127.0)
L2_HALF_WIDTH_MM = 22.0
L2_Z_RANGE = (107.0, 147.0)
#: The wedge: the upper endplate pressed down 1 mm at the posterior wall, 7 mm at the anterior wall.
WEDGE_MM = (1.0, 7.0)
DISC_HU = 80.0
#: A stool-filled transverse colon under the anterior wall, where this patient's colon lies (the pelvic mass
#: fills the abdomen behind it; real colonic gas at y -100..-60, z 340-370): 250 mm in front of the spine and
#: magnified 1.5x against the spine's 1.13x, so it sits at y -33 to project over the band on the film.
LUMBAR_COLON_CT = (8.0, -33.0, 372.0)


def wedge_depth_mm(z):
    """How far the upper endplate of L2 is pressed down at height ``z`` (posterior 1 mm, anterior 7 mm)."""
    t = np.clip((np.asarray(z, float) - L2_Z_RANGE[0]) / (L2_Z_RANGE[1] - L2_Z_RANGE[0]), 0.0, 1.0)
    return WEDGE_MM[0] + t * (WEDGE_MM[1] - WEDGE_MM[0])


def lumbar_volume(ct_dir=ABDOMEN_CT):
    """The abdomen-pelvis CT for the lumbar case (CT frame): cropped to |x| <= 130 mm (the 200 mm field never
    reaches beyond), with the anterior wedge of the compression painted in: the top of the L2 body, down to
    wedge_depth_mm below its upper endplate, becomes disc (partial volume along y)."""
    from volumedr.phantoms.volume import VoxelVolume

    vol = without_skin_markers(case_from_ct(ct_dir, voxel_mm=2.0, gap_mm=15.0, protocol="gallbladder").volume)
    X, Y, Z = vol.axis_mm("x"), vol.axis_mm("y"), vol.axis_mm("z")
    keep = np.abs(X) <= 130.0
    hu = np.array(vol.hu[:, :, keep], np.float32)
    X = X[keep]
    dy = vol.spacing_mm[1]
    inx = np.abs(X - L2_CENTRE_XZ[0]) <= L2_HALF_WIDTH_MM
    changed = 0
    for k, z in enumerate(Z):
        if not L2_Z_RANGE[0] <= z <= L2_Z_RANGE[1]:
            continue
        lo, hi = L2_TOP_Y, L2_TOP_Y + float(wedge_depth_mm(z))
        for j, y in enumerate(Y):
            w = max(0.0, min(hi, y + dy / 2) - max(lo - 2.0, y - dy / 2)) / dy  # the endplate (2 mm) and the wedge
            if w <= 0:
                continue
            row = hu[k, j, inx]
            bone = row > DISC_HU
            row[bone] = row[bone] * (1 - w) + DISC_HU * w
            hu[k, j, inx] = row
            changed += int(bone.sum())
    print(f"pressed the L2 endplate down: {changed} voxels mixed with disc")
    return VoxelVolume(hu=hu, spacing_mm=vol.spacing_mm, origin_mm=(float(X[0]), vol.origin_mm[1], vol.origin_mm[2]),
                       effective_energy_kev=vol.effective_energy_kev, description=vol.description)


def build_lumbar(ct_dir=ABDOMEN_CT, out=ROOT / "phantoms"):
    """A draft, not bundled (it would replace the analytic lumbar): phantoms/lumbar.toml + lumbar.npz, an acute
    wedge compression fracture of the real L2 (the anterior endplate pressed down 7 mm, painted into the
    voxels) with its sclerotic band of impacted trabeculae (an analytic 3 mm plate under the pressed
    endplate), behind a stool-filled transverse colon modelled in under the anterior wall (LUMBAR_COLON_CT).
    It does not pass the evidence (volumedr.evidence, seed 1, 2026-12-03; CNR film / slice): a cortical-bone
    band 1.78 / 1.81 and plainly seen on the film (a 34 mm deep plate seen edge-on); a cancellous-bone band
    with the colon's gas laid out by seeds 11-14: 1.59 / 2.14, 2.37 / 1.84, 1.71 / 2.23, 1.50 / 1.85 (300
    bubbles, seed 11: 2.20 / 2.43); a 40 degree sweep: 1.64 / 1.57, 1.71 / 1.90.  Two reasons: this L2's
    endplates lie almost parallel to the AP beam (the L1/L2 disc runs from y -43 at z 110 to y -48 at z 142,
    and the wedge tilts the band back by about as much), so the film sees the band edge-on, its best case;
    and the band is a line, whose ends cross the CNR's annulus on the film and the slice alike.  A later try
    should correct L2_TOP_Y to the endplate under that disc (about -42; these figures used -47), measure a
    line finding along its length, or put the band in a vertebra whose endplates tilt to the beam.  Write it
    with ``make_ct_case.py lumbar`` to look at it; restore phantoms/lumbar.toml and delete lumbar.npz after."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_cases import KOYAMA, METTLER, finding, header, protocol
    from make_chest_case import obj

    vol = lumbar_volume(ct_dir)
    npz = out / "lumbar.npz"
    hu = save_volume(vol, npz)
    x, z = L2_CENTRE_XZ
    slope = (WEDGE_MM[1] - WEDGE_MM[0]) / (L2_Z_RANGE[1] - L2_Z_RANGE[0])
    band = (x, round(L2_TOP_Y + float(wedge_depth_mm(z)) + 1.5, 1), z)
    name = "L2 compression fracture"
    b = vol.body_bounds_mm()
    text = header(
        "lumbar", "Lumbar spine AP (real anatomy): L2 compression fracture behind the transverse colon", "spine",
        "LSPINE", "RFA", "supine, AP, knees flexed", (200.0, 400.0), 0.2,
        f"approximate E/KAP for AP lumbar spine; film checked against {METTLER} (lumbar spine 1.5 mSv)",
        """
69-year-old woman with osteoporosis, under oncology follow-up for a large pelvic mass, who lifted a
heavy box two weeks ago; sudden upper lumbar pain since. Lumbar films reported as 'osteopenia; faecal
loading obscures detail at L1-L2'. Volume DR requested while awaiting MRI.
""",
        """
Findings: an acute wedge compression fracture of L2: the upper endplate pressed down anteriorly (about
7 mm at the front, 1 mm at the back) with a 3 mm sclerotic band of impacted trabeculae just below it.
Incidental and real: osteopenic vertebrae and a very large cystic pelvic mass (the patient's ovarian
tumour) filling the abdomen in front of the spine.
Why volume DR helps: on the AP film the band is crossed by the mottled stool and gas of the transverse
colon, which the mass has pushed up against the anterior abdominal wall, 250 mm in front of the spine.
On the slice at the band's depth the colon blurs away completely and the band stands out under the
pressed endplate.
Pitfalls: compare the endplates level by level (count from the 12th ribs); the psoas shadow, the
transverse processes and the normal endplates are not the fracture. The AP view shows the band, not
the wedge: the height loss is best judged on a lateral view. The anatomy is real, so degenerative
endplate change and osteophytes are present at other levels.
Compared with CT: CT or MRI shows retropulsion and marrow oedema (acute vs old); volume DR shows the
band at a fraction of the CT dose.
""").replace("# Generated by tools/make_cases.py", "# Generated by tools/make_ct_case.py")
    text = text.replace(
        "\nhistory = ", f'\nnotes = "Anatomy from a real CT: {ABDOMEN_CITATION} The CT (lung bases to the '
        "proximal femora, 3 mm slices) was contrast-enhanced; the enhancement outside bone is taken out. "
        "Three skin markers on the back are taken off. The fracture is synthetic: the wedge painted into the "
        "real L2 body (its upper endplate and the bone above the pressed level mixed with disc) and the "
        "band an analytic plate. This CT's transverse colon holds little content over L2, so a stool-filled "
        'stretch is modelled in under the anterior wall (analytic stool and gas)."\n'
        'anatomy_source = "CT: TCIA TCGA-OV, subject TCGA-09-2043"\nhistory = ', 1)
    text += protocol(angle=30.0, n=60, sid=1100.0, pivot=round(z / 10) * 10.0, kvp=80.0, filt="2.5Al",
                     sweep_mas=90.0, film_mas=60.0, rng=(20.0, float(10 * np.floor((b[1, 2] - 10) / 10))),
                     spacing=2.0, dose=((0.5, 1.8), (1.0, 1.0), f"film: {METTLER} (lumbar spine 1.5 mSv, range "
                                                             f"0.5-1.8); sweep: {KOYAMA} (abdominal tomosynthesis "
                                                             "about 1 mSv)"))
    text += volume_toml(npz, vol, "TCGA-OV TCGA-09-2043 abdomen-pelvis CT, 3 mm slices, table removed, contrast "
                                  "taken out, 2 mm voxels, cropped to 130 mm either side, an L2 wedge painted in")
    text += "\n" + faecal_loading("transverse colon", LUMBAR_COLON_CT, (60, 24, 13), (52, 19, 9))
    text += "\n" + obj("box", "impaction band (L2)", "cancellous_bone", centre_mm=band, size_mm=(40.0, 3.0, 34.0),
                       rotation_deg=(-float(np.degrees(np.arctan(slope))), 0.0, 0.0), finding=name)
    text += "\n" + finding(name, band, 6.0, True, "acute wedge compression fracture of the real L2: a 3 mm sclerotic "
                           "band of impacted trabeculae under the pressed upper endplate", "SCT:207957008")
    toml = out / "lumbar.toml"
    toml.write_text(text, encoding="utf-8")
    wrote(toml, npz, hu)
    return toml


BUILDERS = {"chest": build_chest, "cspine": build_cspine, "gallbladder": build_gallbladder, "hip": build_hip,
            "kub": build_kub}
DRAFTS = {"sinus": build_sinus, "lumbar": build_lumbar}  # not bundled: see their docstrings

if __name__ == "__main__":
    for name in sys.argv[1:] or BUILDERS:
        {**BUILDERS, **DRAFTS}[name]()
