"""Regenerate the screenshots in docs/images (offscreen):

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_screenshots.py
"""
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6 import QtWidgets  # noqa: E402

from volumedr.gui.main_window import MainWindow  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "docs", "images")


def wait(app, win, timeout=300):
    t = time.monotonic()
    while (win.worker is None or not win.worker.done) and time.monotonic() - t < timeout:
        app.processEvents()
        time.sleep(0.01)
    while win.rec is None and time.monotonic() - t < timeout:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def main():
    app = QtWidgets.QApplication(sys.argv[:1])
    win = MainWindow(case="chest", detector_label="1024 x 1024")
    win.resize(1600, 940)
    win.show()
    wait(app, win)
    if win.rec is None:
        raise SystemExit(f"no reconstruction: {win.last_error}")
    f = next(f for f in win.study.findings if f["name"].startswith("retrocardiac"))
    win.set_index(int(abs(win.rec.heights_mm - f["centre_mm"][2]).argmin()))
    win.ct_preset.setCurrentText("Lung")
    app.processEvents()
    win.grab().save(os.path.join(OUT, "workstation.png"))
    win.case_dock.raise_()
    win.show_answers.setChecked(True)
    win.ct_pane.set_roi(-120.0, 55.0, 40.0, 30.0)  # the liver
    win.slice_pane.set_ruler((f["centre_mm"][0] - 5, f["centre_mm"][1] + 12), (f["centre_mm"][0] + 5, f["centre_mm"][1] + 12))
    app.processEvents()
    win.grab().save(os.path.join(OUT, "workstation-answers.png"))
    print("screenshots written to", os.path.abspath(OUT))
    win.close()


if __name__ == "__main__":
    main()
