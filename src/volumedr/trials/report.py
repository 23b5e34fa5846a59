"""``volumedr trial report``: d' and CNR against dose, film against volume DR, from a trial's results.

One figure per finding (matplotlib): d' (left) and CNR (right) against the effective dose, one line per
protocol (sweep, angle, views, kVp, binning, method, MAR, slices) for the slices (solid) and one for the
plain film (dashed, against the film's own dose), each point the mean over the noise seeds with the
standard error of that mean as its error bar.  ``index.md`` and ``index.html`` hold the plots and a
table of the same means.  Failed runs are listed with their errors, not plotted.
"""
from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .engine import read_results

PROTOCOL = ("sweep", "angle_deg", "projections", "kvp", "bin", "method", "mar", "spacing_mm", "thickness_mm")


def _mean_se(values):
    v = np.array([x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))], float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0, len(v)


def _label(key: dict) -> str:
    sweep = key["sweep"] or "case sweep"
    parts = [f"{sweep} {key['angle_deg']:g} deg" if key["angle_deg"] is not None else sweep,
             f"{int(key['projections'])} views" if key["projections"] is not None else None,
             f"{key['kvp']:g} kVp" if key["kvp"] is not None else None,
             str(key["method"]).upper() + (" + MAR" if key["mar"] else "")]
    return ", ".join(p for p in parts if p)


def summarise(rows: list[dict]):
    """(groups, failures): the mean and standard error over seeds of every measure, per case, finding,
    protocol and mAs; and the failed runs."""
    failures = [r for r in rows if r.get("error")]
    groups = defaultdict(list)
    for r in rows:
        if r.get("error") or r.get("finding") is None:
            continue
        key = (r["case"], r["finding"]) + tuple(r.get(k) for k in PROTOCOL) + (r.get("mas"),)
        groups[key].append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0][:2])
                          + (kv[1][0].get("effective_dose_msv") or 0,)):
        g = {"case": key[0], "finding": key[1], **dict(zip(PROTOCOL, key[2:-1])), "mas": key[-1], "n_seeds": len(rs),
             "occult_on_film": rs[0].get("occult_on_film")}
        for m in ("dprime_slice", "dprime_film", "cnr_slice", "cnr_film", "focus_error_mm", "effective_dose_msv",
                  "film_effective_dose_msv", "esak_mgy", "seconds"):
            g[m], g[m + "_sem"], _ = _mean_se(r.get(m) for r in rs)
        out.append(g)
    return out, failures


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def make_report(results, folder) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_results(results)
    if not rows:
        raise ParameterError(f"{results}: no rows")
    groups, failures = summarise(rows)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    by_finding = defaultdict(list)
    for g in groups:
        by_finding[(g["case"], g["finding"])].append(g)
    images = []
    for (case, finding), gs in by_finding.items():
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        series = defaultdict(list)
        for g in gs:
            series[tuple(g[k] for k in PROTOCOL)].append(g)
        film_done = set()
        for i, (pkey, pts) in enumerate(sorted(series.items(), key=lambda kv: str(kv[0]))):
            pts = sorted(pts, key=lambda g: g["effective_dose_msv"])
            colour = f"C{i % 10}"
            label = _label(dict(zip(PROTOCOL, pkey)))
            for ax, m in ((a1, "dprime"), (a2, "cnr")):
                ax.errorbar([g["effective_dose_msv"] for g in pts], [g[m + "_slice"] for g in pts],
                            yerr=[g[m + "_slice_sem"] for g in pts], color=colour, marker="o", capsize=3,
                            label=f"volume DR: {label}")
            film_key = (pkey[3], pkey[4])  # the film depends on the kVp and the binning only
            if film_key not in film_done:
                film_done.add(film_key)
                for ax, m in ((a1, "dprime"), (a2, "cnr")):
                    ax.errorbar([g["film_effective_dose_msv"] for g in pts], [g[m + "_film"] for g in pts],
                                yerr=[g[m + "_film_sem"] for g in pts], color="0.3", ls="--", marker="s",
                                capsize=3, label="plain film" + (f", {pkey[3]:g} kVp" if pkey[3] is not None else ""))
        for ax, name in ((a1, "d' (channelized Hotelling observer)"), (a2, "CNR")):
            ax.set_xscale("log")
            ax.set_xlabel("effective dose (mSv)")
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
        a1.legend(fontsize=7)
        fig.suptitle(f"{case}: {finding}", fontsize=10)
        fig.tight_layout()
        name = f"{_slug(case)}--{_slug(finding)}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        images.append((case, finding, name))
    head = ["case", "finding", "protocol", "mAs", "seeds", "E sweep (mSv)", "d' slice", "d' film", "CNR slice",
            "CNR film", "focus error (mm)"]

    def cells(g):
        return [g["case"], g["finding"], _label(g), "case" if g["mas"] is None else f"{g['mas']:g}", str(g["n_seeds"]),
                f"{g['effective_dose_msv']:.4f}", f"{g['dprime_slice']:.2f} ± {g['dprime_slice_sem']:.2f}",
                f"{g['dprime_film']:.2f} ± {g['dprime_film_sem']:.2f}", f"{g['cnr_slice']:.2f} ± {g['cnr_slice_sem']:.2f}",
                f"{g['cnr_film']:.2f} ± {g['cnr_film_sem']:.2f}", f"{g['focus_error_mm']:.1f}"]

    md = [f"# Trial report: {Path(results).name}", "",
          f"{len(rows)} rows, {len(groups)} case x finding x protocol x dose groups; means over the noise seeds "
          "± their standard error. d' is the channelized Hotelling observer's (docs/trials.md).", ""]
    for case, finding, name in images:
        md += [f"![{case}: {finding}]({name})", ""]
    md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(c.replace("|", "/") for c in cells(g)) + " |" for g in groups]
    if failures:
        md += ["", f"## Failed runs ({len(failures)})", ""]
        md += [f"- {r['case']} seed {r.get('seed')}: {r['error']}" for r in failures]
    (out / "index.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    h = ["<!doctype html><meta charset='utf-8'><title>Trial report</title>",
         "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}</style>",
         f"<h1>Trial report: {html.escape(Path(results).name)}</h1>"]
    h += [f"<p><img src='{html.escape(n)}' alt='{html.escape(c)}: {html.escape(f)}'></p>" for c, f, n in images]
    h += ["<table><tr>" + "".join(f"<th>{html.escape(x)}</th>" for x in head) + "</tr>"]
    h += ["<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells(g)) + "</tr>" for g in groups]
    h += ["</table>"]
    if failures:
        h += [f"<h2>Failed runs ({len(failures)})</h2><ul>"] + [
            f"<li>{html.escape(str(r['case']))} seed {r.get('seed')}: {html.escape(str(r['error']))}</li>"
            for r in failures] + ["</ul>"]
    (out / "index.html").write_text("\n".join(h) + "\n", encoding="utf-8")
    return {"plots": len(images), "groups": len(groups), "index": str(out / "index.md")}
