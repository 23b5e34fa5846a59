"""The reading database: a real SQLite file, a killed process, a resumed session, migrations."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from volumedr.errors import ParameterError
from volumedr.reading import Target
from volumedr.reading.store import MIGRATIONS, SCHEMA_VERSION, Store


def test_a_session_is_shuffled_per_trainee_with_normal_variants_and_scored(tmp_path):
    s = Store(tmp_path / "r.sqlite3")
    assert s.journal_mode == "wal"
    cases = ["chest", "kub", "wrist", "hip", "knee", "sinus", "cspine", "lumbar"]
    a = [x.case_name for x in s.shown(s.start_session("Ada", cases, seed=3))]
    b = [x.case_name for x in s.shown(s.start_session("Bob", cases, seed=3))]
    again = [x.case_name for x in s.shown(s.start_session("Ada", cases, seed=3))]
    assert sorted(a) == sorted(cases) and a == again and a != b  # seeded per trainee
    sid = s.start_session("Cy", ["chest"] * 1 + ["kub"], seed=1, normal_fraction=0.0)
    first = s.next_case(sid)
    t = Target("stone", (10.0, 20.0, 80.0), 6.0)
    m1 = s.add_mark(first.id, "tomo", 10.5, 20.0, 80.0, 4)
    s.add_mark(first.id, "tomo", 60.0, 20.0, 80.0, 2)
    s.move_mark(m1, 11.0, 20.0)
    m3 = s.add_mark(first.id, "film", 0.0, 0.0, None, 1)
    s.delete_mark(m3)
    s.record_time(first.id, "film", 12.5)
    s.record_time(first.id, "tomo", 30.0)
    res = s.submit(first.id, [t], sid_mm=1800.0, spacing_mm=2.0)
    assert res["tomo"]["sensitivity"] == 1.0 and res["tomo"]["false_positives"] == 1
    assert res["film"]["sensitivity"] == 0.0 and res["film"]["false_positives"] == 0  # the deleted mark is gone
    assert s.reading_time(first.id) == {"film": 12.5, "tomo": 30.0}
    assert s.next_case(sid).position == 1
    with pytest.raises(ParameterError, match="confidence must be 1 to 5"):
        s.add_mark(first.id, "tomo", 1.0, 2.0, 3.0, 7)
    with pytest.raises(ParameterError, match="needs a finite z_mm"):
        s.add_mark(first.id, "tomo", 1.0, 2.0, None, 3)


def test_a_killed_process_loses_no_committed_mark_and_the_session_resumes(tmp_path):
    db = tmp_path / "r.sqlite3"
    script = textwrap.dedent(f"""
        import os, signal
        from volumedr.reading.store import Store
        s = Store({str(db)!r})
        sid = s.start_session("Ada", ["chest", "kub", "wrist"], seed=5)
        first = s.next_case(sid)
        for k in range(5):
            s.add_mark(first.id, "tomo", 10.0 * k, 0.0, 50.0, 3)
        s.submit(first.id, [], sid_mm=1800.0, spacing_mm=2.0)
        second = s.next_case(sid)
        s.add_mark(second.id, "film", 1.0, 2.0, None, 5)
        os.kill(os.getpid(), signal.SIGKILL)  # a crash: no close, no commit beyond what each call made
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == -9, r.stderr
    s = Store(db)
    sid = s.open_sessions("Ada")[0]
    shown = s.shown(sid)
    assert shown[0].submitted and len(s.marks(shown[0].id)) == 5
    nxt = s.next_case(sid)
    assert nxt.position == 1 and [m.modality for _, m in s.marks(nxt.id)] == ["film"]  # resumed where it stopped


def _sql(path, script: str) -> None:
    """Change a database behind the Store's back, as another program (or an older volumedr) would."""
    con = sqlite3.connect(path)
    con.executescript(script)
    con.commit()
    con.close()


def test_an_older_database_is_migrated_and_a_newer_one_refused(tmp_path):
    db = tmp_path / "old.sqlite3"
    _sql(db, MIGRATIONS[1] + "; INSERT INTO meta VALUES ('schema_version', '1');"
             "INSERT INTO trainees (name, created_utc) VALUES ('Ada', '2026-01-01T00:00:00');")
    s = Store(db)
    assert s.version() == SCHEMA_VERSION
    assert s.trainee("Ada") == 1  # kept
    s.record_time(s.next_case(s.start_session("Ada", ["chest"], seed=1)).id, "film", 3.0)  # the new tables
    s.close()
    _sql(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ParameterError, match="schema 99 was made by a newer volumedr"):
        Store(db)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ParameterError, match="not a readable volumedr reading database"):
        Store(junk)
    other = tmp_path / "other.sqlite3"
    _sql(other, "CREATE TABLE patients (id INTEGER)")
    with pytest.raises(ParameterError, match="not a volumedr reading database"):
        Store(other)


def test_the_default_place_follows_the_platform(monkeypatch, tmp_path):
    from volumedr.reading.store import default_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "volumedr" / "reading.sqlite3"


def _read_session(store, trainee, hits_first=True):
    from volumedr.phantoms.case import load_case

    sid = store.start_session(trainee, ["kub", "wrist"], seed=2, normal_fraction=0.0)
    for shown in store.shown(sid):
        case = load_case(shown.case_name)
        f = case.findings[0]
        x, y, z = f.centre_mm
        sid_mm = float(case.protocol["source_to_image_mm"])
        m = sid_mm / (sid_mm - z)
        store.add_mark(shown.id, "tomo", x, y, z, 5 if hits_first else 2)
        store.add_mark(shown.id, "tomo", x + 60, y, z, 3)
        store.add_mark(shown.id, "film", x * m + 50, y * m, None, 2)
        store.submit(shown.id, [Target(f.name, tuple(f.centre_mm), f.size_mm)], sid_mm=sid_mm, spacing_mm=2.0)
    return sid


def test_readings_export_for_rjafroc_imrmc_and_csv(tmp_path, capsys):
    import csv

    from volumedr.cli.main import main

    db = tmp_path / "r.sqlite3"
    s = Store(db)
    _read_session(s, "Ada")
    _read_session(s, "Bob", hits_first=False)
    s.close()
    assert main(["reading", "export", "--format", "rjafroc", "--db", str(db), "-o", str(tmp_path / "study")]) == 0
    truth = list(csv.DictReader(open(tmp_path / "study.Truth.csv")))
    assert [(r["CaseID"], r["LesionID"], r["Weight"]) for r in truth] == [("1", "1", "1.0"), ("2", "1", "1.0")]
    ll = list(csv.DictReader(open(tmp_path / "study.LL.csv")))
    nl = list(csv.DictReader(open(tmp_path / "study.NL.csv")))
    assert len(ll) == 4 and {r["ModalityID"] for r in ll} == {"tomo"}  # each reader hit both cases on the slices
    assert sorted(r["LL_Rating"] for r in ll) == ["2", "2", "5", "5"]
    assert len(nl) == 8  # per reader and case: one far slice mark and one film mark
    assert main(["reading", "export", "--format", "imrmc", "--db", str(db), "-o", str(tmp_path / "imrmc.txt")]) == 0
    text = (tmp_path / "imrmc.txt").read_text().splitlines()
    data = text[text.index("BEGIN DATA:") + 1:]
    assert "-1,1,0,1" in data and "-1,2,0,1" in data and "1,1,2,5" in data and "2,1,2,3" in data
    assert main(["reading", "export", "--format", "csv", "--trainee", "Ada", "--db", str(db),
                 "-o", str(tmp_path / "marks.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "marks.csv")))
    assert len(rows) == 6 and {r["reader"] for r in rows} == {"Ada"}
    assert sum(1 for r in rows if r["finding_hit"]) == 2
    capsys.readouterr()
    assert main(["reading", "export", "--format", "csv", "--trainee", "Nobody", "--db", str(db),
                 "-o", str(tmp_path / "x.csv")]) == 2
    assert "no submitted readings by Nobody" in capsys.readouterr().err
