"""``volumedr gui``: start the workstation (or take a screenshot and exit)."""
from __future__ import annotations

import os
import sys


def display_available() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run(study: str | None = None, case: str | None = "chest", screenshot: str | None = None,
        detector: str | None = None, timeout_s: float = 600.0, verbose: bool = False, reading_db=None,
        read: bool = False) -> int:
    if not display_available():
        if screenshot:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        else:
            print("volumedr: error: no display available; run under X/Wayland, or set QT_QPA_PLATFORM=offscreen "
                  "(e.g. volumedr gui --screenshot view.png)", file=sys.stderr)
            return 2
    from .platform_check import wants_xcb, xcb_problem

    if wants_xcb():
        problem = xcb_problem()
        if problem:
            print(f"volumedr: error: {problem}", file=sys.stderr)
            return 2
    from PySide6 import QtCore, QtWidgets  # noqa: F401  (PySide6 before pyqtgraph)
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    from .main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("volumedr")
    win = MainWindow(case=case if not study else None, study_path=study, detector_label=detector,
                     reading_db=reading_db)
    win.show()
    if read:
        QtCore.QTimer.singleShot(0, win.reading.sign_in)
    status = {"rc": 0}
    if verbose:  # what the status bar says, on the terminal too
        win.job_finished.connect(lambda name: print(f"volumedr: {name} finished", file=sys.stderr, flush=True))
        win.reconstruction_shown.connect(lambda: print(f"volumedr: reconstruction shown: {win.status_label.text()}",
                                                       file=sys.stderr, flush=True))
    if screenshot:
        def save():
            ok = win.grab().save(screenshot, "PNG")
            if not ok:
                print(f"volumedr: error: could not write {screenshot}", file=sys.stderr)
                status["rc"] = 2
            else:
                print(f"screenshot -> {screenshot}", flush=True)
            app.quit()

        def failed():
            if win.last_error:
                print(f"volumedr: error: {win.last_error}", file=sys.stderr)
                status["rc"] = 2
                app.quit()

        win.reconstruction_shown.connect(lambda: QtCore.QTimer.singleShot(300, save))
        win.job_finished.connect(lambda _name: failed())
        QtCore.QTimer.singleShot(int(timeout_s * 1000), lambda: (print("volumedr: error: timed out waiting for "
                                                                       "the reconstruction", file=sys.stderr),
                                                                 status.__setitem__("rc", 2), app.quit()))
    rc = app.exec()
    win.close()
    app.processEvents()
    # Leave without running Qt's and Python's destructors in an arbitrary order (PySide6 can crash
    # there); every file was written atomically before this point.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status["rc"] or rc)
