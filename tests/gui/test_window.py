"""The workstation window, offscreen (pytest-qt): real Qt, real jobs, grabbed pixels."""
import os
import subprocess
import sys

import numpy as np
import pytest

from PySide6 import QtCore, QtGui  # noqa: E402

from volumedr.gui.main_window import CT_PRESETS, MainWindow  # noqa: E402
from volumedr.io.png import write_png  # noqa: E402

QUICK = "256 x 256 (quick look)"


def grab_array(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, :w * 3]
    return buf.reshape(h, w, 3).copy()


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    import time

    win = MainWindow(case="chest", detector_label=QUICK)
    win.resize(1400, 850)
    win.show()
    t0 = time.monotonic()
    while (win.rec is None or (win.worker is not None and not win.worker.done)) and time.monotonic() - t0 < 120:
        qapp.processEvents()
        time.sleep(0.01)
    assert win.rec is not None, win.last_error
    qapp.processEvents()
    out = tmp_path_factory.mktemp("shots") / "window.png"
    write_png(out, grab_array(win))
    win.screenshot_path = out
    yield win
    win.close()


def test_opens_on_the_default_case_with_images_in_all_three_panes(window):
    assert window.case.name == "chest" and window.rec is not None
    for pane in window.panes:
        assert pane.image is not None and float(np.std(pane.image)) > 0
        px = grab_array(pane.glw)
        lit = (px.max(axis=2) > 40).mean()
        assert lit > 0.10, f"{pane.title.text()} looks blank ({lit:.0%} lit)"
        # more than a flat fill: real structure in the rendered image
        assert px[px.max(axis=2) > 40].std() > 10
    assert "mSv" in window.dose_label.text() and "x film" in window.dose_label.text()


def test_scrolling_changes_slice_and_height_readout(window, qtbot):
    window.set_index(10)
    before = window.height_label.text()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Up)
    assert window.index == 11 and window.height_label.text() != before
    window.slice_pane.on_wheel(-1)
    assert window.index == 10
    qtbot.keyClick(window, QtCore.Qt.Key.Key_End)
    assert window.index == len(window.rec.heights_mm) - 1
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Home)
    assert window.index == 0 and window.slider.value() == 0
    qtbot.keyClick(window, QtCore.Qt.Key.Key_PageUp)
    assert window.index == 10
    h = window.rec.heights_mm[10]
    assert f"{h:.1f} mm" in window.height_label.text()


def test_ct_pane_follows_the_slice_height(window):
    ct = window.study.ct_reference
    window.set_index(20)
    h = window.rec.heights_mm[20]
    k = int(round((h - ct.origin_mm[2]) / ct.spacing_mm[0]))
    assert np.array_equal(window.ct_pane.image, ct.hu[k])


def test_cine_advances_frames(window, qtbot):
    window.set_index(0)
    window.fps.setValue(30)
    window.play_button.setChecked(True)
    qtbot.waitUntil(lambda: window.index >= 5, timeout=3000)
    window.play_button.setChecked(False)
    stopped = window.index
    qtbot.wait(200)
    assert window.index == stopped
    # back-and-forth turns at the end
    window.cine_mode.setCurrentText("back and forth")
    window.set_index(len(window.rec.heights_mm) - 2)
    window._cine_dir = 1
    window._cine_step()
    window._cine_step()
    assert window.index == len(window.rec.heights_mm) - 2
    window.cine_mode.setCurrentText("loop")


def test_window_level_presets_change_levels(window):
    window.ct_preset.setCurrentText("Lung")
    assert window.ct_pane.levels == CT_PRESETS["Lung"]
    assert "W 1500" in window.ct_pane.footer.text() and "L -600" in window.ct_pane.footer.text()
    window.ct_preset.setCurrentText("Fat (-190...-30)")
    assert window.ct_pane.levels == (-190.0, -30.0)
    before = window.slice_pane.levels
    window.tomo_preset.setCurrentText("Bone")
    assert window.slice_pane.levels != before
    window.tomo_preset.setCurrentText("Default")
    w0, _ = window.slice_pane.window_level()
    window.slice_pane.drag_window_level(50, 0)  # dragging right widens the window
    assert window.slice_pane.window_level()[0] > w0


def test_linked_cursor_marks_all_panes(window):
    vb = window.slice_pane.vb
    x, y = 30.0, -40.0
    window._mouse_moved(window.slice_pane, vb.mapViewToScene(QtCore.QPointF(x, y)))
    sx, sy = window.slice_pane.cursor.getData()
    cx, cy = window.ct_pane.cursor.getData()
    fx, fy = window.film_pane.cursor.getData()
    assert sx[0] == pytest.approx(x, abs=0.5) and sy[0] == pytest.approx(y, abs=0.5)
    assert cx[0] == pytest.approx(sx[0]) and cy[0] == pytest.approx(sy[0])
    h = window.current_height()
    ex, ey = window.to_film(sx[0], sy[0], h)
    assert fx[0] == pytest.approx(ex) and fy[0] == pytest.approx(ey)
    assert "z" in window.cursor_label.text() and "mm" in window.cursor_label.text()


def test_roi_and_ruler_measure_in_mm_and_hu(window):
    ct = window.ct_pane
    window.set_index(int(np.argmin(np.abs(window.rec.heights_mm - 120))))
    ct.set_roi(-115.0, 55.0, 30.0, 30.0)  # inside the liver (the real CT's, its enhancement taken out)
    m, s, a = ct.roi_statistics()
    assert 30 < m < 80 and 1 < s < 30 and a == pytest.approx(900, rel=0.15)
    assert "ROI mean" in ct.footer.text() and "HU" in ct.footer.text()
    window.slice_pane.set_ruler((0.0, 0.0), (30.0, 40.0))
    assert window.slice_pane.ruler_length_mm() == pytest.approx(50.0)
    assert "ruler 50.0 mm" in window.slice_pane.footer.text()
    for p in window.panes:
        p.clear_tools()


def test_answer_overlay_and_depth_from_focus(window):
    f = next(f for f in window.study.findings if f["name"].startswith("right mid-zone"))
    x, y, z = f["centre_mm"]
    window.show_answers.setChecked(True)
    window.set_index(int(np.argmin(np.abs(window.rec.heights_mm - z))))
    assert len(window.slice_pane.findings.getData()[0]) >= 1
    assert len(window.film_pane.findings.getData()[0]) == len(window.study.findings)
    window.show_answers.setChecked(False)
    assert len(window.slice_pane.findings.getData()[0]) == 0
    # depth from focus on compact findings (docs: large ones have a broad depth response)
    for name, tol in (("calcified granuloma", 4.0), ("nodule projected over a rib", 6.0)):
        g = next(f for f in window.study.findings if f["name"].startswith(name))
        window.set_index(0)
        idx = window.focus_at(g["centre_mm"][0], g["centre_mm"][1])
        assert abs(window.rec.heights_mm[idx] - g["centre_mm"][2]) <= tol, (name, window.rec.heights_mm[idx])
        assert window.index == idx and "sharpest at" in window.status_label.text()


def test_changing_reconstruction_settings_rereconstructs_without_resimulating(window, qtbot):
    study = window.study
    window.method.setCurrentIndex(window.method.findData("saa"))
    window.spacing.setValue(5.0)
    window.thickness.setValue(5.0)
    with qtbot.waitSignal(window.reconstruction_shown, timeout=60000):
        window.reconstruct()
    assert window.study is study and window.rec.method == "saa"
    assert np.allclose(np.diff(window.rec.heights_mm), 5.0)
    window.method.setCurrentIndex(window.method.findData("fbp"))
    window.spacing.setValue(2.0)
    window.thickness.setValue(2.0)
    with qtbot.waitSignal(window.reconstruction_shown, timeout=60000):
        window.reconstruct()


def test_cancel_stops_a_running_job_within_a_second(window, qtbot):
    study = window.study
    window.detector.setCurrentText("1024 x 1024")
    window.acquire()
    qtbot.wait(300)
    import time

    t = time.perf_counter()
    with qtbot.waitSignal(window.job_finished, timeout=5000):
        window.cancel_job()
    assert time.perf_counter() - t < 1.0
    assert "cancelled" in window.status_label.text()
    assert window.study is study
    window.detector.setCurrentText(QUICK)


def test_a_failing_job_shows_an_error_message(window, qtbot):
    good = window.study.projections
    bad = good.copy()
    bad[2, 5, 5] = np.nan
    window.study.projections = bad
    try:
        with qtbot.waitSignal(window.job_finished, timeout=30000):
            window.reconstruct()
    finally:
        window.study.projections = good
    assert window.last_error and "NaN" in window.last_error
    assert window._error_box is not None and window._error_box.isVisible()
    assert "NaN" in window._error_box.text()
    window._error_box.close()
    window.zmin.setValue(300)
    window.zmax.setValue(100)
    window.reconstruct()  # refused before any work
    assert "empty" in window.last_error
    window.zmin.setValue(20)
    window.zmax.setValue(240)


def test_save_open_and_export(window, qtbot, tmp_path):
    p = tmp_path / "saved.h5"
    with qtbot.waitSignal(window.job_finished, timeout=30000):
        window.save_study(str(p))
    assert p.exists()
    png = tmp_path / "view.png"
    assert window.export_png(str(png)) and png.stat().st_size > 10000
    win2 = MainWindow(case=None, study_path=str(p))
    with qtbot.waitSignal(win2.reconstruction_shown, timeout=30000):
        win2.show()
    assert np.array_equal(win2.rec.slices, window.rec.slices)
    win2.close()


def test_a_study_with_a_damaged_film_opens_with_a_warning(window, qtbot, tmp_path):
    import h5py
    import warnings

    p = tmp_path / "damaged.h5"
    with qtbot.waitSignal(window.job_finished, timeout=30000):
        window.save_study(str(p))
    with h5py.File(p, "r+") as f:
        del f["dr"]
        f["dr"] = np.zeros((3, 3), np.float32)  # the wrong shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the worker's warning goes to the terminal; the window says it too
        win2 = MainWindow(case=None, study_path=str(p))
        with qtbot.waitSignal(win2.reconstruction_shown, timeout=30000):
            win2.show()
    assert win2.last_error is None and "/dr" in (win2.last_warning or "")
    assert win2.rec is not None and win2.film_pane.image is None and win2.slice_pane.image is not None
    win2.close()


def test_sart_shows_fbp_at_once_then_each_iteration(window, qtbot, tmp_path):
    seen = []
    window.status_label.setText("")
    window.method.setCurrentIndex(window.method.findData("sart"))
    assert window.iterations.isEnabled() and window.tv_weight.isEnabled()
    window.iterations.setValue(3)
    orig = window._show_iteration

    def spy(ev):
        seen.append((ev.iteration, window.slice_pane.image is not None))
        orig(ev)

    window._show_iteration = spy
    try:
        with qtbot.waitSignal(window.reconstruction_shown, timeout=120000):
            window.reconstruct()
    finally:
        window._show_iteration = orig
    assert [i for i, _ in seen] == [1, 2, 3] and all(shown for _, shown in seen)
    assert window.rec.method == "sart" and window.rec.parameters["iterations"] == 3
    assert "SART iterations" in window.status_label.text()
    img = window.slice_pane.image
    assert img is not None and float(np.std(img)) > 0
    px = grab_array(window.slice_pane.glw)
    assert (px.max(axis=2) > 40).mean() > 0.10 and px[px.max(axis=2) > 40].std() > 10  # levels follow the new units
    write_png(tmp_path / "sart.png", grab_array(window))
    if os.environ.get("VOLUMEDR_SHOTS"):
        write_png(os.path.join(os.environ["VOLUMEDR_SHOTS"], "sart-window.png"), grab_array(window))
    window.method.setCurrentIndex(window.method.findData("fbp"))
    assert not window.iterations.isEnabled()
    with qtbot.waitSignal(window.reconstruction_shown, timeout=60000):
        window.reconstruct()
    assert window.rec.method == "fbp"


def test_the_part_of_the_field_few_views_see_is_greyed_out(window, qapp):
    assert window.rec.view_fraction is not None and window.rec.view_fraction.shape == window.rec.slices.shape
    pane = window.slice_pane
    window.refresh()
    qapp.processEvents()
    expected = window.rec.view_fraction[window.index] < 128
    assert (pane.veiled is None and not expected.any()) or np.array_equal(pane.veiled, expected)
    before = grab_array(pane.glw).astype(int)
    mask = np.zeros(pane.image.shape, bool)
    mask[:, : mask.shape[1] // 3] = True
    pane.set_veil(mask)
    qapp.processEvents()
    after = grab_array(pane.glw).astype(int)
    changed = np.abs(after - before).max(axis=2) > 20
    assert 0.05 < changed.mean() < 0.6, changed.mean()
    window.refresh()  # back to the study's own map


def test_gui_without_display_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "volumedr.cli.main", "gui"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "offscreen" in lines[0]


def test_screenshot_command_saves_the_reconstructed_window(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, "-m", "volumedr.cli.main", "gui", "--case", "chest", "--detector", QUICK,
                        "--screenshot", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.exists() and out.stat().st_size > 50000


def _wait_job(window, qapp, name, timeout=120):
    import time

    t0 = time.monotonic()
    while window.worker is not None and window.worker.name == name and not window.worker.done \
            and time.monotonic() - t0 < timeout:
        qapp.processEvents()
        time.sleep(0.01)
    qapp.processEvents()


def test_export_dicom_from_the_window(window, qapp, tmp_path):
    import pydicom

    out = tmp_path / "dicom"
    window.export_dicom(out, "ct")
    _wait_job(window, qapp, "exporting DICOM")
    slices = sorted((out / "slices").glob("*.dcm"))
    assert len(slices) == len(window.rec.heights_mm)
    assert len(list((out / "projections").glob("*.dcm"))) == window.study.geometry.n_views
    d = pydicom.dcmread(slices[0])
    assert d.Modality == "CT" and float(d.SliceLocation) == pytest.approx(min(window.rec.heights_mm), abs=1e-3)
    assert "exported" in window.status_label.text()


def test_send_to_an_unreachable_pacs_reports_the_error(window, qapp):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    window.last_error = None
    window.send_to_pacs(f"ORTHANC@127.0.0.1:{port}", timeout_s=3)
    _wait_job(window, qapp, "sending to PACS")
    assert window.last_error is not None and "cannot reach the PACS" in window.last_error
    window.send_to_pacs("not an address")
    assert "AET@HOST:PORT" in window.last_error


def test_the_send_dialog_offers_dicom_over_tls(window, qapp, tmp_path):
    import socket

    from volumedr.errors import ParameterError
    from volumedr.gui.main_window import SendDialog

    dlg = SendDialog(window, "ORTHANC@127.0.0.1:2762")
    assert dlg.tls_settings() is None and not dlg.files["ca_path"].isEnabled()
    dlg.tls.setChecked(True)
    assert dlg.files["ca_path"].isEnabled()
    assert dlg.tls_settings().ca_path is None  # the system's trusted CAs
    dlg.files["ca_path"].setText(str(tmp_path / "missing.pem"))
    with pytest.raises(ParameterError, match="does not exist"):
        dlg.tls_settings()
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    dlg.files["ca_path"].setText(str(ca))
    tls = dlg.tls_settings()
    assert tls.ca_path == str(ca)
    dlg.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    window.last_error = None
    window.send_to_pacs(f"ORTHANC@127.0.0.1:{port}", timeout_s=3, tls=tls)
    _wait_job(window, qapp, "sending to PACS")
    assert window.last_error is not None and "CA certificate" in window.last_error  # refused before connecting
    assert window.settings_tls is tls


def _assert_patient_right_on_viewer_left(window, axes):
    from PySide6 import QtCore

    from volumedr.geometry.patient import PatientFrame

    assert window.study.metadata["patient_axes"] == axes
    right_x = -1.0 if PatientFrame(axes).axes[0] == "L" else 1.0  # the sign of x towards the patient's right
    for pane in window.panes:
        assert pane.mirrored() == (axes == "RFA"), pane.title.text()
        left, right = pane.side_labels
        assert (left.text(), right.text()) == ("R", "L") and left.isVisible() and right.isVisible()
        assert left.x() < right.x()
        # a point 50 mm towards the patient's right is drawn left of the midline, whatever the zoom
        a = pane.vb.mapViewToScene(QtCore.QPointF(50.0 * right_x, 0.0)).x()
        b = pane.vb.mapViewToScene(QtCore.QPointF(0.0, 0.0)).x()
        assert a < b, (pane.title.text(), a, b)


def test_a_pa_chest_is_shown_with_the_patients_right_on_the_viewers_left(window):
    _assert_patient_right_on_viewer_left(window, "LFP")


def test_an_arthroplasty_case_reconstructs_with_metal_artefact_reduction(window, qtbot, tmp_path):
    assert not window.mar.isChecked()  # the chest asks for none
    try:
        with qtbot.waitSignal(window.reconstruction_shown, timeout=180000):
            window.case_combo.setCurrentIndex(window.case_combo.findData("knee"))
            assert window.mar.isChecked()  # the knee case's default
            window.acquire()
        assert window.rec.parameters["mar"]["views_with_metal"] > 0
        assert "MAR: metal in" in window.status_label.text()
        _assert_patient_right_on_viewer_left(window, "RFA")  # an AP knee: shown mirrored
        write_png(tmp_path / "knee-mar.png", grab_array(window))
        if os.environ.get("VOLUMEDR_SHOTS"):
            write_png(os.path.join(os.environ["VOLUMEDR_SHOTS"], "knee-mar-window.png"), grab_array(window))
        px = grab_array(window.slice_pane.glw)  # a knee fills less of the panel than a chest
        assert (px.max(axis=2) > 40).mean() > 0.05 and px[px.max(axis=2) > 40].std() > 10
    finally:
        with qtbot.waitSignal(window.reconstruction_shown, timeout=180000):
            window.case_combo.setCurrentIndex(window.case_combo.findData("chest"))
            window.acquire()
    assert not window.mar.isChecked()


def test_the_case_sets_the_fbp_kernel(window):
    assert window.kernel.value() == 1.0  # the chest: the sharp default
    try:
        window.case_combo.setCurrentIndex(window.case_combo.findData("lumbar"))
        assert window.kernel.value() == pytest.approx(0.6)  # the lumbar spine's soft kernel
        assert window.recon_settings().apodisation_cutoff == pytest.approx(0.6)
    finally:
        window.case_combo.setCurrentIndex(window.case_combo.findData("chest"))
    assert window.kernel.value() == 1.0 and window.recon_settings().apodisation_cutoff == 1.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are set on Linux")
def test_jobs_run_below_the_windows_priority(qtbot):
    """A job's thread (and the numba pool it starts) yields the CPU to the window's thread: on 2 cores the
    kernels' threads otherwise kept the window from answering for over 100 ms (the stress test)."""
    import threading

    from volumedr.gui.worker import BACKGROUND_NICE, GeneratorWorker

    seen = {}

    def job():
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        yield from ()
        return "ok"

    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    w = GeneratorWorker(job)
    with qtbot.waitSignal(w.finished, timeout=10000):
        w.start()
    assert seen["nice"] >= BACKGROUND_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice  # the window's is untouched
    w.thread.wait(5000)
