"""Reading mode in the real window (offscreen): a whole blinded session of two cases, marks placed by
real mouse clicks, submission, feedback and the results view, each step grabbed to PNG."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6 import QtCore
from PySide6.QtTest import QTest

from volumedr.gui.main_window import MainWindow
from volumedr.reading.store import Store

QUICK = "256 x 256 (quick look)"
CASES = ["chest", "wrist"]


def _seed_with_a_finding_case_then_a_normal(tmp_path) -> int:
    probe = Store(tmp_path / "probe.sqlite3")
    for seed in range(200):
        got = [(s.case_name, s.variant) for s in probe.shown(probe.start_session("Ada", CASES, seed=seed))]
        if got == [("chest", "findings"), ("wrist", "normal")]:
            return seed
    raise AssertionError("no seed gives chest with findings, then a normal wrist")


def _wait(qapp, cond, what, timeout_s=180):
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < timeout_s:
        qapp.processEvents()
        time.sleep(0.01)
    assert cond(), what


def _click(pane, x, y):
    """A real left click (press and release) on the pane at (x, y) in its display mm."""
    scene = pane.vb.mapViewToScene(QtCore.QPointF(x, y))
    QTest.mouseClick(pane.glw.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     pane.glw.mapFromScene(scene))


def _lit(widget) -> float:
    from tests.gui.test_window import grab_array

    px = grab_array(widget)
    return float((px.max(axis=2) > 40).mean())


def test_a_blinded_session_film_then_slices_with_feedback_and_results(qapp, tmp_path):
    from tests.gui.test_window import grab_array
    from volumedr.io.png import write_png

    seed = _seed_with_a_finding_case_then_a_normal(tmp_path)
    db = tmp_path / "reading.sqlite3"
    win = MainWindow(case=None, detector_label=QUICK, reading_db=db)
    win.resize(1400, 850)
    win.show()
    r = win.reading
    shots = {}
    try:
        sid = r.begin("Ada", CASES, seed=seed, feedback=True)
        _wait(qapp, lambda: r.stage == "film", win.last_error)
        qapp.processEvents()
        # blind: history only, no title, notes, findings, CT or slices
        assert not win.case_dock.isVisible() and not win.tech_dock.isVisible() and not win.ct_pane.isVisible()
        assert not win.slice_pane.isVisible() and not win.show_answers.isChecked()
        assert "ex-smoker" in r.history_box.toPlainText()
        text = r.history_box.toPlainText().lower() + win.windowTitle().lower()
        assert "nodule" not in text and "teaching" not in text and "chest" not in win.windowTitle().lower()
        assert not win.file_actions["save"].isEnabled() and win.file_actions["quit"].isEnabled()
        assert _lit(win.film_pane.glw) > 0.15, "the film is not shown"
        shots["1-film"] = grab_array(win)

        f = r.study.findings[0]  # the retrocardiac nodule, occult on the film; clicked on its shadow anyway
        x, y, z = f["centre_mm"]
        sid_mm = r.study.metadata["sweep"]["source_to_image_mm"]
        k, mag = r._film_scale(), sid_mm / (sid_mm - z)
        _click(win.film_pane, x * mag * k, y * mag * k)
        qapp.processEvents()
        assert len(r.marks) == 1 and next(iter(r.marks.values())).modality == "film"
        film_mark = next(iter(r.marks.values()))
        assert np.hypot(film_mark.x_mm - x * mag, film_mark.y_mm - y * mag) < 1.5  # detector mm, on the shadow

        _wait(qapp, lambda: r.rec is not None, "the slices never arrived")
        r.show_slices()
        qapp.processEvents()
        assert r.stage == "tomo" and win.slice_pane.isVisible()
        _click(win.film_pane, 0.0, 0.0)  # the film reading is locked now
        assert len(r.marks) == 1
        win.set_index(int(np.argmin(np.abs(win.rec.heights_mm - z))))
        _click(win.slice_pane, x, y)
        r.confidence.setValue(5)  # the selected (new) mark's confidence
        fp = r.add_mark("tomo", x + 90.0, y)  # a false positive, rated 2, moved and kept
        r.confidence.setValue(2)
        r.move_mark(fp, x + 80.0, y - 5.0)
        extra = r.add_mark("tomo", x - 120.0, y)  # placed, then deleted
        r.mark_list.setCurrentRow(3)
        r.delete_selected()
        assert extra not in r.marks and len(r.marks) == 3
        qapp.processEvents()
        shots["2-slices"] = grab_array(win)
        store = Store(db)  # a second connection sees every committed mark already
        assert len(store.marks(r.shown.id)) == 3
        tomo_marks = [m for _, m in store.marks(r.shown.id) if m.modality == "tomo"]
        assert sorted(m.confidence for m in tomo_marks) == [2, 5]
        assert min(abs(m.x_mm - (x + 80.0)) for m in tomo_marks) < 1e-6  # the move was stored

        r.submit()
        qapp.processEvents()
        assert r.stage == "feedback"
        res = r.result
        assert [h["finding"] for h in res["tomo"]["hits"]] == [f["name"]] and res["tomo"]["false_positives"] == 1
        assert [h["finding"] for h in res["film"]["hits"]] == [f["name"]]
        fb = r.feedback_box.toPlainText()
        assert "Film: 1 of 6 found" in fb and "volume DR: 1 of 6 found, 1 false positive" in fb
        assert "Teaching notes" in fb and "retrocardiac" in fb.lower()
        missed = [r.findings_list.item(i) for i in range(r.findings_list.count())
                  if "MISSED" in r.findings_list.item(i).text()]
        assert len(missed) == 5
        target = missed[0].data(QtCore.Qt.ItemDataRole.UserRole)
        r._goto_finding(missed[0])  # one click to the slice where it is sharpest
        assert abs(win.rec.heights_mm[win.index] - target["centre_mm"][2]) <= target["size_mm"]
        assert len(win.slice_pane.findings.data) >= 1  # the missed finding is drawn on that slice
        win.set_index(int(np.argmin(np.abs(win.rec.heights_mm - z))))
        qapp.processEvents()
        shots["3-feedback"] = grab_array(win)
        # the case, its answer key and this reading, as DICOM (the SRs)
        w = r.export_case(tmp_path / "case-dicom")
        _wait(qapp, lambda: w.done and (tmp_path / "case-dicom").exists(), win.last_error)
        import pydicom

        key = pydicom.dcmread(tmp_path / "case-dicom" / "answer_key" / "SR0001.dcm")
        mine = pydicom.dcmread(tmp_path / "case-dicom" / "reading_Ada" / "SR0001.dcm")
        assert key.Modality == mine.Modality == "SR" and key.StudyInstanceUID == mine.StudyInstanceUID
        assert mine.SeriesDescription == "Reading by Ada"

        r.next_case()
        _wait(qapp, lambda: r.stage == "film", win.last_error)
        assert r.shown.variant == "normal" and r.study.findings == [] or len(r.study.findings) == 0
        assert _lit(win.film_pane.glw) > 0.02, "the second film is not shown"
        r.add_mark("film", 10.0, 10.0)
        _wait(qapp, lambda: r.rec is not None, "the slices of case 2 never arrived")
        r.show_slices()
        r.submit()
        qapp.processEvents()
        assert "normal variant" in r.feedback_box.toPlainText()
        assert r.result["film"]["false_positives"] == 1 and r.result["film"]["n_findings"] == 0
        shots["4-normal"] = grab_array(win)

        r.next_case()
        _wait(qapp, lambda: r.results_dialog is not None, "no results view at the end of the session")
        qapp.processEvents()
        dlg = r.results_dialog
        assert dlg.table.rowCount() == 2 and dlg.table.item(1, 0).text() == "all sessions"
        assert dlg.table.item(0, 3).text() == "17%"  # 1 of 6 on the slices
        assert dlg.table.item(0, 7).text().startswith("0.58")  # wAFROC: hit at 3 vs no FP on the normal: 0.5/6 + 0.5
        ys = dlg.curves["tomo"].getData()[1]
        assert ys[0] == pytest.approx(1 / 6)
        assert any("Dobbins" in ref["source"] for ref in dlg.references)
        shots["5-results"] = grab_array(dlg)
        assert store.session(sid)["finished_utc"] is not None
        times = store.reading_time(store.shown(sid)[0].id)
        assert set(times) == {"film", "tomo"} and all(v >= 0 for v in times.values())

        r.leave()
        qapp.processEvents()
        assert win.case_dock.toggleViewAction().isEnabled() and win.ct_pane.isVisible()
        assert win.file_actions["save"].isEnabled()
    finally:
        out = tmp_path / "shots"
        out.mkdir(exist_ok=True)
        for name, px in shots.items():
            write_png(out / f"reading-{name}.png", px)
        win.close()


def test_resuming_a_session_brings_back_its_marks_at_the_slices(qapp, tmp_path):
    db = tmp_path / "reading.sqlite3"
    store = Store(db)
    sid = store.start_session("Bo", ["wrist"], seed=1, normal_fraction=0.0)
    sh = store.next_case(sid)
    store.add_mark(sh.id, "film", 5.0, 6.0, None, 2)
    store.record_time(sh.id, "film", 3.0)  # the film was read before the crash
    store.close()
    win = MainWindow(case=None, detector_label=QUICK, reading_db=db)
    win.show()
    try:
        win.reading.resume(sid)
        _wait(qapp, lambda: win.reading.stage == "tomo", win.last_error)
        assert [m.confidence for m in win.reading.marks.values()] == [2]
        assert win.slice_pane.isVisible()  # straight to the slices: the film reading was done
    finally:
        win.close()


def test_an_exam_style_session_shows_no_feedback_and_ends_in_the_results(qapp, tmp_path):
    win = MainWindow(case=None, detector_label=QUICK, reading_db=tmp_path / "r.sqlite3")
    win.show()
    r = win.reading
    try:
        r.begin("Cy", ["wrist"], seed=2, feedback=False)
        _wait(qapp, lambda: r.stage == "film", win.last_error)
        _wait(qapp, lambda: r.rec is not None, "no slices")
        r.show_slices()
        r.submit()
        qapp.processEvents()
        assert r.stage == "done" and not r.feedback_box.isVisible() and r.results_dialog is not None
        assert "complete" in r.header.text()
    finally:
        win.close()


def test_the_sign_in_dialog_lists_the_cases_and_a_trainee_s_open_sessions(qapp, tmp_path):
    from volumedr.gui.reading import SignInDialog

    store = Store(tmp_path / "r.sqlite3")
    sid = store.start_session("Dee", ["kub", "wrist"], seed=0)
    dlg = SignInDialog(None, lambda: store)
    assert "chest" in dlg.chosen_cases() and len(dlg.chosen_cases()) == dlg.cases.count()
    dlg.cases.item(0).setCheckState(QtCore.Qt.CheckState.Unchecked)
    assert len(dlg.chosen_cases()) == dlg.cases.count() - 1
    dlg.name.setText("Dee")
    dlg._list_open_sessions()
    assert dlg.resume.count() == 2 and dlg.resume.itemData(1) == sid and "2 case(s) left" in dlg.resume.itemText(1)
    dlg.name.setText("Nobody")
    dlg._list_open_sessions()
    assert dlg.resume.count() == 1
