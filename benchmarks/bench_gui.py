"""Workstation benchmarks, offscreen: time per displayed frame and event-loop latency during work.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py

1. Slice stepping with 1024 x 1024 slices: set the slice, let Qt process the
   events and repaint the three panes; time per displayed frame.
2. The event loop while a 60 x 1024^2 FBP reconstruction runs in the worker:
   a 10 ms timer records how late it fires; the largest gap is the worst
   time the window takes to answer.
"""
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from volumedr.geometry import Detector, Sweep  # noqa: E402
from volumedr.gui.main_window import MainWindow  # noqa: E402
from volumedr.study import CTReference, Reconstruction, Study  # noqa: E402


def main():
    app = QtWidgets.QApplication([])
    n = 1024
    det = Detector(rows=n, cols=n, pitch_row_mm=0.4, pitch_col_mm=0.4)
    geo = Sweep(n_projections=60, source_to_image_mm=1800).geometry(det)
    rng = np.random.default_rng(0)
    proj = rng.random((60, n, n), dtype=np.float32)
    slices = rng.random((100, n, n), dtype=np.float32)
    rec = Reconstruction(slices, np.arange(20.0, 220.0, 2.0), (0.38, 0.38), (-194.0, -194.0), 2.0, "fbp")
    ct = CTReference(rng.normal(0, 100, (120, 200, 200)).astype(np.float32), (2.0, 2.0, 2.0), (-200.0, -200.0, 1.0))
    study = Study(projections=proj, geometry=geo, dr=rng.random((n, n), dtype=np.float32), ct_reference=ct,
                  reconstruction=rec, metadata={}, findings=[])
    win = MainWindow(case=None)
    win.resize(1600, 900)
    win.show()
    win.set_study(study)
    app.processEvents()
    panes = [p.glw.viewport() for p in win.panes]
    for i in range(5):
        win.set_index(i)
        app.processEvents()
    t = time.perf_counter()
    frames = 100
    for i in range(frames):
        win.set_index(i % 100)
        for v in panes:
            v.repaint()
        app.processEvents()
    dt = (time.perf_counter() - t) / frames
    print(f"1. slice stepping, 1024 x 1024 slices, three panes repainted: {dt * 1000:.1f} ms per frame "
          f"({1 / dt:.0f} frames per second)")
    win.slab_mode.setCurrentIndex(1)
    t = time.perf_counter()
    for i in range(30):
        win.set_index(i + 10)
        for v in panes:
            v.repaint()
        app.processEvents()
    dt2 = (time.perf_counter() - t) / 30
    win.slab_mode.setCurrentIndex(0)
    print(f"   with a 5-slice average slab: {dt2 * 1000:.1f} ms per frame ({1 / dt2:.0f} fps)")

    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    win.spacing.setValue(2.0)
    win.zmin.setValue(20)
    win.zmax.setValue(218)
    done = []
    win.job_finished.connect(lambda name: done.append(name))
    t = time.perf_counter()
    win.reconstruct()
    last[0] = time.perf_counter()
    timer.start()
    while not done and time.perf_counter() - t < 300:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    timer.stop()
    g = np.array(gaps[1:]) * 1000
    print(f"2. event loop during a 60 x 1024^2 -> 100-slice FBP ({time.perf_counter() - t:.1f} s): "
          f"timer period 10 ms, median {np.median(g):.1f} ms, 99th percentile {np.percentile(g, 99):.1f} ms, "
          f"worst {g.max():.1f} ms")
    win.close()


if __name__ == "__main__":
    main()
