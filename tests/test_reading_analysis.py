"""A trainee's figures of merit: AFROC / wAFROC worked by hand, the bootstrap, and the results over
sessions straight from the reading database."""
from __future__ import annotations

import math

import pytest

from volumedr.reading import Target
from volumedr.reading.analysis import (CaseReading, bootstrap_ci, figure_of_merit, history, references_for,
                                       summarise)
from volumedr.reading.store import Store

NEG = -math.inf


def reading(ll, nl, sid=1, case="c"):
    return CaseReading(sid, case, "findings" if ll else "normal", len(ll), {"film": list(ll), "tomo": list(ll)},
                       {"film": list(nl), "tomo": list(nl)}, {"film": 10.0, "tomo": 20.0})


def test_the_figures_of_merit_match_a_hand_computation():
    # normals with highest NL 3 and none; abnormal cases with lesions rated (4, missed) and (2)
    rs = [reading([], [3, 1]), reading([], []), reading([4, NEG], [5]), reading([2], [])]
    # wAFROC: FP 3 -> 0.5*1 + 0.5*0 + 0 = 0.5; FP -inf -> 0.5*1 + 0.5*0.5 + 1 = 1.75; (0.5 + 1.75) / 4
    assert figure_of_merit(rs, "tomo") == pytest.approx(2.25 / 4)
    # AFROC: every lesion alike: (1 + 0 + 0) + (1 + 0.5 + 1) over 2 normals x 3 lesions
    assert figure_of_merit(rs, "tomo", weighted=False) == pytest.approx(3.5 / 6)
    s = summarise(rs)
    assert s["tomo"]["sensitivity"] == pytest.approx(2 / 3) and s["tomo"]["false_positives_per_case"] == 0.75
    assert s["cases"] == 4 and s["normal_cases"] == 2 and s["tomo"]["seconds_per_case"] == 20.0


def test_perfect_blind_and_chance_readers():
    perfect = [reading([5, 4], []), reading([3], []), reading([], []), reading([], [])]
    assert figure_of_merit(perfect, "film") == 1.0 and bootstrap_ci(perfect, "film") == (1.0, 1.0)
    blind = [reading([NEG, NEG], []), reading([NEG], []), reading([], []), reading([], [])]
    assert figure_of_merit(blind, "film") == 0.5  # nothing against nothing is a tie, as in RJafroc
    # every normal with a confident false positive above every lesion: 0
    worst = [reading([2], []), reading([], [5])]
    assert figure_of_merit(worst, "film") == 0.0
    assert figure_of_merit([reading([3], [])], "film") is None  # no normal case: no FOM
    assert bootstrap_ci([reading([3], [])], "film") is None


def test_the_bootstrap_interval_holds_the_estimate_and_narrows_with_more_cases():
    import numpy as np

    rng = np.random.default_rng(4)

    def cases(k):
        rs = []
        for _ in range(k):
            rs.append(reading([float(rng.integers(2, 6)) if rng.random() < 0.7 else NEG], []))
            rs.append(reading([], [int(rng.integers(1, 4))] if rng.random() < 0.4 else []))
        return rs

    small, large = cases(8), cases(80)
    for rs in (small, large):
        lo, hi = bootstrap_ci(rs, "tomo")
        assert lo <= figure_of_merit(rs, "tomo") <= hi
    assert np.diff(bootstrap_ci(large, "tomo"))[0] < np.diff(bootstrap_ci(small, "tomo"))[0]


def test_history_over_sessions_from_the_database(tmp_path):
    s = Store(tmp_path / "r.sqlite3")
    truth = [Target("nodule", (0.0, 0.0, 100.0), 10.0)]
    for k, hit in enumerate((False, True)):
        sid = s.start_session("Ada", ["chest", "wrist"], seed=k, normal_fraction=0.0)
        for sh in s.shown(sid):
            s.add_mark(sh.id, "film", 200.0, 0.0, None, 2)  # a false positive on the film every time
            if hit:
                s.add_mark(sh.id, "tomo", 1.0, 0.0, 101.0, 4)
            s.record_time(sh.id, "film", 5.0 + k)
            s.submit(sh.id, truth, sid_mm=1800.0, spacing_mm=2.0)
    h = history(s, "Ada")
    assert [x["tomo"]["sensitivity"] for x in h["sessions"]] == [0.0, 1.0]
    assert [x["film"]["false_positives_per_case"] for x in h["sessions"]] == [1.0, 1.0]
    assert h["all"]["tomo"]["sensitivity"] == 0.5 and h["all"]["film"]["seconds_per_case"] == 5.5
    assert h["all"]["tomo"]["wafroc"] is None  # no normal case read: the FOM is undefined, not made up
    assert [r["cases"] for r in references_for(["wrist", "kub"])] == [("wrist",)]


def test_the_results_command_prints_the_sessions(tmp_path, capsys):
    import json

    from volumedr.cli.main import main

    db = tmp_path / "r.sqlite3"
    s = Store(db)
    sid = s.start_session("Ada", ["chest"], seed=0, normal_fraction=0.0)
    sh = s.next_case(sid)
    s.add_mark(sh.id, "tomo", 0.0, 0.0, 100.0, 4)
    s.submit(sh.id, [Target("nodule", (0.0, 0.0, 100.0), 10.0)], sid_mm=1800.0, spacing_mm=2.0)
    s.close()
    assert main(["reading", "results", "--trainee", "Ada", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "session 1" in out and "100%" in out and "all sessions" in out
    assert main(["reading", "results", "--trainee", "Ada", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["all"]["tomo"]["sensitivity"] == 1.0
    assert main(["reading", "results", "--trainee", "Nobody", "--db", str(db)]) == 2
    assert "no submitted readings by Nobody" in capsys.readouterr().err
