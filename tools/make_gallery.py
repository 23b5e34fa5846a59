"""Rebuild the case gallery: docs/cases/<case>.png and the evidence table in docs/cases.md.

For every bundled case, at its default protocol (volumedr.evidence, the same measurement the tests make):
the plain film | the tomosynthesis slice where the first occult finding is sharpest | the CT reference slice at
that height, each finding ringed in red, the patient's right on the viewer's left as the workstation shows
them (AP cases mirrored); the second row is a close-up of that finding.  The table between the GALLERY markers in docs/cases.md is rewritten
with the measured CNR, focus and doses.  Run from the repository root (about a minute a case):

    .venv/bin/python tools/make_gallery.py            # every case
    .venv/bin/python tools/make_gallery.py wrist kub  # only these (the table keeps the others' rows)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from volumedr.evidence import measure_case  # noqa: E402
from volumedr.geometry.patient import PatientFrame  # noqa: E402
from volumedr.io.png import to_uint8, write_png  # noqa: E402
from volumedr.phantoms.case import case_names, load_case  # noqa: E402
from volumedr.simulate.acquire import case_ct_reference  # noqa: E402

PANEL = 360  # panel height in pixels
DOC = ROOT / "docs" / "cases.md"
BEGIN, END = "<!-- GALLERY BEGIN (tools/make_gallery.py) -->", "<!-- GALLERY END -->"


def _ring(rgb, row, col, radius):
    rr, cc = np.ogrid[:rgb.shape[0], :rgb.shape[1]]
    d = np.hypot(rr - row, cc - col)
    on = np.abs(d - radius) <= 1.2
    rgb[on] = (230, 40, 40)


def _panel(img, window, marks, crop=None):
    """Grey panel PANEL pixels high with red rings at marks [(row, col, radius_px)] (in img pixels)."""
    a = np.asarray(img, np.float64)
    if crop is not None:
        (r0, r1), (c0, c1) = crop
        a = a[r0:r1, c0:c1]
        marks = [(r - r0, c - c0, rad) for r, c, rad in marks]
    g = to_uint8(a, window)
    z = PANEL / g.shape[0]
    g = ndimage.zoom(g, z, order=1)
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    for r, c, rad in marks:
        _ring(rgb, r * z, c * z, max(rad * z, 6))
    return rgb


def _crop_box(shape, centre_rc, half_px):
    """A square window around centre_rc, clipped to the image."""
    r, c = centre_rc
    r0, r1 = int(max(0, r - half_px)), int(min(shape[0], r + half_px))
    c0, c1 = int(max(0, c - half_px)), int(min(shape[1], c + half_px))
    return (r0, r1), (c0, c1)


def gallery_image(name):
    case = load_case(name)
    mirror = PatientFrame(case.patient_axes).display_sides()[0]
    ev, study, rec = measure_case(case)  # exactly what the tests measure
    key = next((f for f in ev.findings if f.occult_on_plain_film), ev.findings[0])
    k = int(np.argmin(np.abs(rec.heights_mm - key.focus_height_mm)))
    det = study.geometry.detector
    px = rec.pixel_spacing_mm[0]
    # a field of view around the findings: the case's field, at most 240 mm, centred on the key finding
    half_mm = min(max(case.field_mm) / 2, 120.0)
    film_marks = [(f.film_pixel[0], f.film_pixel[1], (f.size_mm / 2 + 3) / det.pitch_row_mm) for f in ev.findings]
    slice_marks = [(f.slice_pixel[0], f.slice_pixel[1], (f.size_mm / 2 + 3) / px) for f in ev.findings
                   if abs(f.centre_mm[2] - rec.heights_mm[k]) <= 2 * max(f.size_mm, 4)]
    zoom_mm = max(4.0 * key.size_mm, 15.0)  # the second row: a close-up of the key finding
    ct = case_ct_reference(case, rng=np.random.default_rng(1))
    kk = int(np.argmin(np.abs(ct.heights_mm() - rec.heights_mm[k])))
    hu = ct.hu[kk]
    cpx = ct.spacing_mm[1:]  # (y, x)
    cr, cc = (key.centre_mm[1] - ct.origin_mm[1]) / cpx[0], (key.centre_mm[0] - ct.origin_mm[0]) / cpx[1]
    ct_marks = [((f.centre_mm[1] - ct.origin_mm[1]) / cpx[0], (f.centre_mm[0] - ct.origin_mm[0]) / cpx[1],
                 (f.size_mm / 2 + 3) / cpx[0]) for f in ev.findings
                if abs(f.centre_mm[2] - ct.heights_mm()[kk]) <= 2 * max(f.size_mm, 4)]
    sl = rec.slices[k]
    rows = []
    # the close-up is windowed on the finding and its surround (the CNR annulus), so that metal or gas
    # elsewhere in the crop does not take the grey scale
    near_mm = 1.25 * key.size_mm + 3.0

    def window(img, centre, half_px, seen=None):
        (r0, r1), (c0, c1) = _crop_box(img.shape, centre, half_px)
        v = img[r0:r1, c0:c1]
        if seen is not None and seen[r0:r1, c0:c1].sum() > 100:
            v = v[seen[r0:r1, c0:c1]]  # not the part of the field few views see (dark beyond the field)
        return tuple(np.percentile(v, [1, 99.8]))

    seen = rec.well_seen(k)

    for half, win_mm in ((half_mm, half_mm), (zoom_mm, near_mm)):
        fb = _crop_box(study.dr.shape, key.film_pixel, half / det.pitch_row_mm)
        panels = [_panel(study.dr, window(study.dr, key.film_pixel, win_mm / det.pitch_row_mm), film_marks, fb)]
        crop = _crop_box(sl.shape, key.slice_pixel, half / px)
        panels.append(_panel(sl, window(sl, key.slice_pixel, win_mm / px, seen), slice_marks, crop))
        panels.append(_panel(hu, (-1000, 1400), ct_marks, _crop_box(hu.shape, (cr, cc), half / cpx[0])))
        if mirror:  # as the workstation shows it: the patient's right on the viewer's left
            panels = [np.ascontiguousarray(p[:, ::-1]) for p in panels]
        gap = np.full((PANEL, 8, 3), 255, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [gap, p]
        rows.append(np.concatenate(row, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    image = np.concatenate([rows[0], np.full((8, width, 3), 255, np.uint8), rows[1]], axis=0)
    out = ROOT / "docs" / "cases" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_png(out, image)
    return ev, out


def table_rows(ev):
    rows = []
    for f in ev.findings:
        rows.append(f"| {ev.case} | {f.name} | {'yes' if f.occult_on_plain_film else 'no'} | {f.contrast} | "
                    f"{f.cnr_film:.2f} | {f.cnr_slice:.2f} | {f.centre_mm[2]:.0f} / {f.focus_height_mm:.0f} | "
                    f"{ev.film_msv:.4f} | {ev.sweep_msv:.4f} |")
    return rows


def main(names):
    names = names or case_names()
    text = DOC.read_text(encoding="utf-8")
    old = {}
    m = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.S)
    if m:
        for line in m.group(1).splitlines():
            if line.startswith("| ") and not line.startswith("| case") and not line.startswith("|---"):
                old.setdefault(line.split("|")[1].strip(), []).append(line)
    for name in names:
        ev, out = gallery_image(name)
        old[name] = table_rows(ev)
        print(f"{name}: {out.relative_to(ROOT)}; " + "; ".join(
            f"{f.name}: CNR {f.cnr_film:.2f} -> {f.cnr_slice:.2f}" for f in ev.findings))
    lines = ["", "| case | finding | occult on film | contrast | CNR film | CNR slice | height true / in focus (mm) "
             "| film mSv | sweep mSv |", "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(old):
        lines += old[name]
    lines.append("")
    lines += [f"![{n}](cases/{n}.png)" for n in sorted(old)]
    block = BEGIN + "\n".join(lines) + "\n" + END
    text = text.replace(m.group(0), block) if m else text.rstrip() + "\n\n## Gallery and evidence\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
