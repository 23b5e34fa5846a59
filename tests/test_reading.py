"""Scoring a reading (Qt-free): marks against the findings of every bundled case, film and slices."""
from __future__ import annotations

import json

import pytest

from volumedr.phantoms.case import case_names, load_case
from volumedr.reading import TOLERANCE_MM, Mark, Target, read_marks, score

SID = 1800.0
SPACING = 2.0


def _targets(name):
    return [Target(f.name, tuple(f.centre_mm), f.size_mm) for f in load_case(name).findings]


def _film_point(t, sid=SID):
    x, y, z = t.centre_mm
    m = sid / (sid - z)
    return x * m, y * m


def _perfect(targets, sid=SID, confidence=5):
    marks = []
    for t in targets:
        fx, fy = _film_point(t, sid)
        marks.append(Mark("film", fx, fy, None, confidence))
        marks.append(Mark("tomo", *t.centre_mm, confidence))
    return marks


@pytest.mark.parametrize("name", case_names())
def test_a_perfect_reader_finds_everything_and_marks_nothing_else(name):
    targets = _targets(name)
    sid = float(load_case(name).protocol.get("source_to_image_mm", SID))
    res = score(_perfect(targets, sid), targets, sid_mm=sid, spacing_mm=SPACING)
    for m in ("film", "tomo"):
        assert res[m].sensitivity == 1.0 and res[m].false_positives == 0 and not res[m].misses


@pytest.mark.parametrize("name", case_names())
def test_marks_three_radii_away_are_all_false_positives(name):
    targets = _targets(name)
    far = []
    for t in targets:
        x, y, z = t.centre_mm
        off = 3 * (t.size_mm / 2) + TOLERANCE_MM + 1.0
        far.append(Mark("tomo", x + off, y, z, 3))
        fx, fy = _film_point(t)
        far.append(Mark("film", fx, fy + off * 1.3, None, 3))
    # a mark 3 radii (plus the tolerance) away from one finding may still sit on another: only count the clear ones
    res = score(far, targets, sid_mm=SID, spacing_mm=SPACING)
    for m in ("film", "tomo"):
        assert res[m].false_positives + len(res[m].hits) == len(targets)
        if len(targets) == 1:
            assert res[m].sensitivity == 0.0 and res[m].false_positives == 1


def test_a_reader_who_marks_nothing_finds_nothing():
    targets = _targets("chest")
    res = score([], targets, sid_mm=SID, spacing_mm=SPACING)
    assert res["film"].sensitivity == res["tomo"].sensitivity == 0.0
    assert res["tomo"].misses == [t.name for t in targets] and res["tomo"].false_positives == 0


def test_a_normal_variant_has_nothing_to_hit():
    case = load_case("chest", with_findings=False)
    assert not case.findings
    res = score(_perfect(_targets("chest")), [], sid_mm=SID, spacing_mm=SPACING)
    assert res["tomo"].sensitivity is None and res["tomo"].false_positives == len(_targets("chest"))


def test_a_slice_mark_at_the_wrong_height_misses_and_one_finding_counts_once():
    t = Target("nodule", (10.0, 20.0, 100.0), 8.0)
    wrong = Mark("tomo", 10.0, 20.0, 100.0 + 4.0 + SPACING + 0.5, 5)  # beyond half the size + one spacing
    near = Mark("tomo", 10.0, 20.0, 100.0 + 4.0 + SPACING - 0.5, 2)
    again = Mark("tomo", 11.0, 20.0, 100.0, 4)
    res = score([wrong, near, again], [t], sid_mm=SID, spacing_mm=SPACING)["tomo"]
    assert res.sensitivity == 1.0 and res.hits[0][1] == 4  # the highest-confidence mark that hits counts
    assert res.false_positives == 2  # the wrong-height mark and the second hit on the same finding
    edge = Mark("tomo", 10.0 + 4.0 + TOLERANCE_MM - 0.1, 20.0, 100.0, 3)
    assert score([edge], [t], sid_mm=SID, spacing_mm=SPACING)["tomo"].sensitivity == 1.0
    beyond = Mark("tomo", 10.0 + 4.0 + TOLERANCE_MM + 0.1, 20.0, 100.0, 3)
    assert score([beyond], [t], sid_mm=SID, spacing_mm=SPACING)["tomo"].sensitivity == 0.0


def test_film_marks_are_compared_with_the_magnified_shadow():
    t = Target("nodule", (50.0, 0.0, 300.0), 6.0)
    m = SID / (SID - 300.0)  # 1.2
    at_shadow = Mark("film", 50.0 * m, 0.0, None, 5)
    at_object = Mark("film", 50.0, 0.0, None, 5)  # 10 mm off the shadow: beyond radius x m + tolerance
    assert score([at_shadow], [t], sid_mm=SID, spacing_mm=SPACING)["film"].sensitivity == 1.0
    assert score([at_object], [t], sid_mm=SID, spacing_mm=SPACING)["film"].sensitivity == 0.0


@pytest.mark.parametrize("text, message", [
    ("modality,x_mm,y_mm,confidence\nfilm,1,2,3\n", "missing column(s) z_mm"),
    ("modality,x_mm,y_mm,z_mm,confidence\nslice,1,2,3,3\n", "line 2: a mark's modality must be film or tomo"),
    ("modality,x_mm,y_mm,z_mm,confidence\ntomo,1,2,,3\n", "line 2: a tomo mark needs a finite z_mm"),
    ("modality,x_mm,y_mm,z_mm,confidence\nfilm,1,2,,6\n", "line 2: a mark's confidence must be 1 to 5"),
    ("modality,x_mm,y_mm,z_mm,confidence\nfilm,one,2,,3\n", "line 2: could not convert"),
    ("modality,x_mm,y_mm,z_mm,confidence\nfilm,1,2,,high\n", "line 2: the confidence must be a whole number"),
])
def test_bad_marks_files_name_the_line(tmp_path, text, message):
    from volumedr.errors import ParameterError

    p = tmp_path / "marks.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_marks(p)


def test_the_command_line_scores_a_study(tmp_path, capsys):
    from volumedr.cli.main import main

    study = tmp_path / "wrist.h5"
    assert main(["simulate", "wrist", "-o", str(study), "--bin", "16", "--seed", "1", "--no-ct"]) == 0
    capsys.readouterr()
    case = load_case("wrist")
    sid = float(case.protocol["source_to_image_mm"])
    t = _targets("wrist")[0]
    fx, fy = _film_point(t, sid)
    marks = tmp_path / "marks.csv"
    marks.write_text("modality,x_mm,y_mm,z_mm,confidence\n"
                     f"film,{fx + 40},{fy},,2\n"
                     f"tomo,{t.centre_mm[0]},{t.centre_mm[1]},{t.centre_mm[2]},4\n", encoding="utf-8")
    assert main(["reading", "score", str(study), str(marks), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tomo"]["sensitivity"] == 1.0 and out["tomo"]["false_positives"] == 0
    assert out["film"]["sensitivity"] == 0.0 and out["film"]["false_positives"] == 1
    for key in ("hits", "misses", "lesion_localisations", "non_lesion_localisations"):
        assert key in out["film"] and key in out["tomo"]
    assert main(["reading", "score", str(study), str(marks)]) == 0
    text = capsys.readouterr().out
    assert "tomo: sensitivity 100%" in text and "film: sensitivity 0%" in text
    assert main(["reading", "score", str(study), str(tmp_path / "none.csv")]) == 2
    assert "no such marks file" in capsys.readouterr().err
