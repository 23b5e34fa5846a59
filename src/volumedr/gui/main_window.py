"""The review workstation window: three linked panes, cine, controls, case notes."""
from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ..errors import VolumedrError
from ..geometry import Detector
from ..io.study_file import read_study, write_study
from ..sysinfo import limit_malloc_arenas, release_free_memory
from ..phantoms.case import case_names, load_case
from ..reconstruct import ReconSettings
from ..simulate import settings_from_case, sweep_from_case
from ..study import Study
from .. import workflow as wf
from .pane import ImagePane, percentile_levels
from .worker import GeneratorWorker

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

TOMO_PRESETS = {"Default": (0.5, 99.5), "Bone": (40.0, 99.9), "Soft tissue": (1.0, 80.0)}
CT_PRESETS = {"Lung": (-1350.0, 150.0), "Mediastinum": (-160.0, 240.0), "Bone": (-500.0, 1300.0),
              "Fat (-190...-30)": (-190.0, -30.0)}


def _spin(lo, hi, val, step=1.0, decimals=1, suffix=""):
    s = QtWidgets.QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(val)
    if suffix:
        s.setSuffix(suffix)
    s.setKeyboardTracking(False)
    return s


class MainWindow(QtWidgets.QMainWindow):
    """The volumedr workstation.  ``case`` is acquired on start unless ``study`` is given."""

    reconstruction_shown = QtCore.Signal()
    job_finished = QtCore.Signal(str)

    def __init__(self, *, case: str | None = "chest", study_path: str | None = None, detector_label=None):
        super().__init__()
        limit_malloc_arenas(2)  # job threads come and go; without a limit each keeps its freed arrays resident
        self.setWindowTitle("volumedr - volume DR workstation")
        self.resize(1500, 900)
        self.study: Study | None = None
        self.rec = None
        self.preview = None
        self.index = 0
        self.worker: GeneratorWorker | None = None
        self._workers: list[GeneratorWorker] = []  # kept until their last signal is handled here
        self._cases: dict = {}  # name -> Case (cases are immutable); filled in the background at start
        threading.Thread(target=self._preload_cases, name="volumedr-preload-cases", daemon=True).start()
        self.last_error: str | None = None
        self.last_warning: str | None = None
        self.settings_pacs: str | None = None
        self.settings_tls = None
        self._error_box = None
        self._cine_dir = 1
        self._build_panes()
        self._build_navigation()
        self._build_controls(detector_label)
        self._build_case_dock()
        self._build_toolbar_and_menu()
        self._build_status()
        self.cine_timer = QtCore.QTimer(self)
        self.cine_timer.timeout.connect(self._cine_step)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        if case:
            i = self.case_combo.findData(case)
            if i >= 0:
                self.case_combo.setCurrentIndex(i)
        self._on_case_changed()
        if study_path:
            QtCore.QTimer.singleShot(0, lambda: self.open_study(study_path))
        elif case:
            QtCore.QTimer.singleShot(0, self.acquire)

    # ------------------------------------------------------------------ layout
    def _build_panes(self):
        self.slice_pane = ImagePane("Volume DR slices")
        self.film_pane = ImagePane("Conventional DR (plain film)")
        self.ct_pane = ImagePane("CT reference", units="HU")
        self.panes = (self.slice_pane, self.film_pane, self.ct_pane)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        for p in self.panes:
            split.addWidget(p)
            p.glw.scene().sigMouseMoved.connect(lambda pos, pane=p: self._mouse_moved(pane, pos))
            p.glw.scene().sigMouseClicked.connect(lambda ev, pane=p: self._mouse_clicked(pane, ev))
        self.slice_pane.on_wheel = lambda d: self.step(d)
        self.ct_pane.on_wheel = lambda d: self.step(d)
        self.film_pane.on_wheel = None
        split.setSizes([600, 450, 450])
        central = QtWidgets.QWidget()
        self.central_layout = QtWidgets.QVBoxLayout(central)
        self.central_layout.setContentsMargins(2, 2, 2, 2)
        self.central_layout.addWidget(split, 1)
        self.setCentralWidget(central)
        self.view_widget = split

    def _build_navigation(self):
        bar = QtWidgets.QHBoxLayout()
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self.set_index)
        self.height_label = QtWidgets.QLabel("no slices")
        self.height_label.setMinimumWidth(190)
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self.set_playing)
        self.fps = QtWidgets.QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(15)
        self.fps.setSuffix(" fps")
        self.fps.valueChanged.connect(lambda v: self.cine_timer.setInterval(int(1000 / v)))
        self.cine_mode = QtWidgets.QComboBox()
        self.cine_mode.addItems(["loop", "back and forth"])
        self.slab_mode = QtWidgets.QComboBox()
        self.slab_mode.addItem("single slice", "single")
        self.slab_mode.addItem("slab average", "average")
        self.slab_mode.addItem("slab maximum", "mip")
        self.slab_n = QtWidgets.QSpinBox()
        self.slab_n.setRange(1, 31)
        self.slab_n.setValue(5)
        self.slab_n.setPrefix("N ")
        self.slab_mode.currentIndexChanged.connect(lambda _: self.refresh())
        self.slab_n.valueChanged.connect(lambda _: self.refresh())
        for w in (QtWidgets.QLabel("Slice"), self.slider, self.height_label, self.play_button, self.fps,
                  self.cine_mode, self.slab_mode, self.slab_n):
            bar.addWidget(w, 1 if w is self.slider else 0)
        self.central_layout.addLayout(bar)

    def _build_controls(self, detector_label):
        dock = QtWidgets.QDockWidget("Technologist", self)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        acq = QtWidgets.QGroupBox("Acquisition")
        f = QtWidgets.QFormLayout(acq)
        self.case_combo = QtWidgets.QComboBox()
        for name in case_names():
            self.case_combo.addItem(name, name)
        self.case_combo.currentIndexChanged.connect(self._on_case_changed)
        self.sweep_kind = QtWidgets.QComboBox()
        self.sweep_kind.addItems(["linear", "arc", "opposed"])
        self.sweep_dir = QtWidgets.QComboBox()
        self.sweep_dir.addItems(["y", "x"])
        self.angle = _spin(2, 90, 30, 1, 0, " deg")
        self.n_proj = QtWidgets.QSpinBox()
        self.n_proj.setRange(3, 120)
        self.n_proj.setValue(60)
        self.kvp = _spin(40, 150, 120, 1, 0, " kVp")
        self.mas = _spin(0.1, 500, 19.2, 0.5, 1, " mAs")
        self.film_mas = _spin(0.1, 100, 1.9, 0.1, 1, " mAs")
        self.detector = QtWidgets.QComboBox()
        for label in wf.DETECTOR_BINNING:
            self.detector.addItem(label)
        self.detector.setCurrentText(detector_label or "512 x 512 (preview)")
        self.dose_label = QtWidgets.QLabel("")
        self.dose_label.setWordWrap(True)
        self.dose_label.setObjectName("doseLabel")
        f.addRow("Case", self.case_combo)
        f.addRow("Sweep", self.sweep_kind)
        f.addRow("Direction", self.sweep_dir)
        f.addRow("Sweep angle", self.angle)
        f.addRow("Projections", self.n_proj)
        f.addRow("Tube voltage", self.kvp)
        f.addRow("Sweep total", self.mas)
        f.addRow("Plain film", self.film_mas)
        f.addRow("Detector", self.detector)
        f.addRow(self.dose_label)
        self.acquire_button = QtWidgets.QPushButton("Acquire")
        self.acquire_button.clicked.connect(self.acquire)
        f.addRow(self.acquire_button)
        for s in (self.angle, self.kvp, self.mas, self.film_mas):
            s.valueChanged.connect(self.update_dose)
        self.n_proj.valueChanged.connect(self.update_dose)
        self.sweep_kind.currentIndexChanged.connect(self.update_dose)
        lay.addWidget(acq)
        rec = QtWidgets.QGroupBox("Reconstruction")
        g = QtWidgets.QFormLayout(rec)
        self.method = QtWidgets.QComboBox()
        self.method.addItem("FBP (filtered backprojection)", "fbp")
        self.method.addItem("SAA (shift-and-add)", "saa")
        self.method.addItem("SART (iterative)", "sart")
        self.iterations = QtWidgets.QSpinBox()
        self.iterations.setRange(1, 200)
        self.iterations.setValue(ReconSettings().iterations)
        self.tv_weight = _spin(0.0, 1.0, ReconSettings().tv_weight, 0.05, 2)
        self.tv_weight.setToolTip("total-variation step between SART iterations (0 = off)")
        self.method.currentIndexChanged.connect(self._method_changed)
        self.thickness = _spin(0.1, 50, 2.0, 0.5, 1, " mm")
        self.spacing = _spin(0.5, 50, 2.0, 0.5, 1, " mm")
        self.zmin = _spin(0.5, 1000, 20, 5, 0, " mm")
        self.zmax = _spin(0.5, 1000, 240, 5, 0, " mm")
        self.mar = QtWidgets.QCheckBox("Metal artefact reduction")
        self.mar.setToolTip("find metal in the projections, reconstruct the tissue without it and put the metal "
                            "back at its own height only (on by default for the arthroplasty cases)")
        g.addRow("Method", self.method)
        g.addRow("", self.mar)
        g.addRow("SART iterations", self.iterations)
        g.addRow("SART TV weight", self.tv_weight)
        self._method_changed()
        g.addRow("Slice thickness", self.thickness)
        g.addRow("Slice spacing", self.spacing)
        g.addRow("Lowest slice", self.zmin)
        g.addRow("Highest slice", self.zmax)
        self.recon_button = QtWidgets.QPushButton("Reconstruct")
        self.recon_button.clicked.connect(self.reconstruct)
        g.addRow(self.recon_button)
        lay.addWidget(rec)
        lay.addStretch(1)
        dock.setWidget(w)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.tech_dock = dock

    def _build_case_dock(self):
        dock = QtWidgets.QDockWidget("Case", self)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        self.case_title = QtWidgets.QLabel("")
        self.case_title.setWordWrap(True)
        self.notes = QtWidgets.QTextBrowser()
        self.show_answers = QtWidgets.QCheckBox("Show answers (findings)")
        self.show_answers.toggled.connect(lambda _: self.refresh())
        self.findings_list = QtWidgets.QListWidget()
        self.findings_list.itemActivated.connect(self._goto_finding)
        self.findings_list.itemClicked.connect(self._goto_finding)
        lay.addWidget(self.case_title)
        lay.addWidget(self.notes, 2)
        lay.addWidget(self.show_answers)
        lay.addWidget(self.findings_list, 1)
        dock.setWidget(w)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.tabifyDockWidget(self.tech_dock, dock)  # one column of tabs leaves the width to the images
        self.tech_dock.raise_()
        self.case_dock = dock

    def _build_toolbar_and_menu(self):
        tb = self.addToolBar("Tools")
        self.tool_group = QtGui.QActionGroup(self)
        self.tool_actions = {}
        for key, label in (("pan", "Pan/Zoom"), ("wl", "Window/Level"), ("roi", "ROI"), ("ruler", "Ruler"),
                           ("focus", "Depth from focus")):
            a = QtGui.QAction(label, self, checkable=True)
            a.triggered.connect(lambda _=False, k=key: self.set_tool(k))
            self.tool_group.addAction(a)
            tb.addAction(a)
            self.tool_actions[key] = a
        self.tool_actions["pan"].setChecked(True)
        clear = QtGui.QAction("Clear ROI/ruler", self)
        clear.triggered.connect(lambda: [p.clear_tools() for p in self.panes])
        tb.addAction(clear)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" DR/tomo window "))
        self.tomo_preset = QtWidgets.QComboBox()
        self.tomo_preset.addItems(list(TOMO_PRESETS))
        self.tomo_preset.currentTextChanged.connect(self.apply_tomo_preset)
        tb.addWidget(self.tomo_preset)
        tb.addWidget(QtWidgets.QLabel(" CT window "))
        self.ct_preset = QtWidgets.QComboBox()
        self.ct_preset.addItems(list(CT_PRESETS))
        self.ct_preset.setCurrentText("Mediastinum")
        self.ct_preset.currentTextChanged.connect(self.apply_ct_preset)
        tb.addWidget(self.ct_preset)
        self.link_zoom = QtWidgets.QCheckBox("Link zoom/pan")
        self.link_zoom.setChecked(True)
        self.link_zoom.toggled.connect(self.set_linked)
        tb.addWidget(self.link_zoom)
        self.set_linked(True)
        m = self.menuBar().addMenu("&File")
        for label, slot, key in (("&Open study...", self.open_dialog, QtGui.QKeySequence.StandardKey.Open),
                                 ("&Save study as...", self.save_dialog, QtGui.QKeySequence.StandardKey.Save),
                                 ("&Export view as PNG...", self.export_dialog, None),
                                 ("Export &DICOM...", self.export_dicom_dialog, None),
                                 ("Send to &PACS...", self.send_dialog, None),
                                 ("&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)):
            a = QtGui.QAction(label, self)
            a.triggered.connect(slot)
            if key is not None:
                a.setShortcut(key)
            m.addAction(a)

    def _build_status(self):
        sb = self.statusBar()
        self.status_label = QtWidgets.QLabel("ready")
        self.cursor_label = QtWidgets.QLabel("")
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.cursor_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    # ---------------------------------------------------------------- controls
    def _preload_cases(self):
        """Load every bundled case off the GUI thread (a CT-based case reads and inflates its volume),
        so that choosing one never freezes the window."""
        for name in case_names():
            if name not in self._cases:
                try:
                    self._cases.setdefault(name, load_case(name))
                except VolumedrError:
                    pass  # reported when the user picks it

    def _on_case_changed(self):
        name = self.case_combo.currentData()
        if not name:
            return
        try:
            case = self._cases.get(name) or self._cases.setdefault(name, load_case(name))  # cases are immutable
        except VolumedrError as exc:
            self.show_error(str(exc))
            return
        self.case = case
        sw = sweep_from_case(case)
        st = settings_from_case(case)
        for wdg, val in ((self.angle, sw.total_angle_deg), (self.n_proj, sw.n_projections), (self.kvp, st.kvp),
                         (self.mas, st.sweep_mas), (self.film_mas, st.plain_film_mas)):
            wdg.blockSignals(True)
            wdg.setValue(val)
            wdg.blockSignals(False)
        self.sweep_kind.setCurrentText(sw.kind)
        self.sweep_dir.setCurrentText(sw.direction)
        r = case.reconstruction
        i = self.method.findData(str(r.get("method", "fbp")))
        if i >= 0:
            self.method.setCurrentIndex(i)
        self.mar.setChecked(bool(r.get("mar", False)))
        if "iterations" in r:
            self.iterations.setValue(int(r["iterations"]))
        if "spacing_mm" in r:
            self.spacing.setValue(float(r["spacing_mm"]))
            self.thickness.setValue(float(r.get("thickness_mm", r["spacing_mm"])))
        if "range_mm" in r:
            self.zmin.setValue(float(r["range_mm"][0]))
            self.zmax.setValue(float(r["range_mm"][1]))
        self.case_title.setText(f"<b>{case.title}</b><br>{case.region}")
        hist = case.history.replace("\n", " ")
        teach = case.teaching.replace("\n\n", "<br><br>").replace("\n", " ")
        self.notes.setHtml(f"<p><b>History.</b> {hist}</p><p><b>Teaching notes.</b> {teach}</p>")
        self.update_dose()

    def _sweep_and_settings(self):
        case = self.case
        sw = sweep_from_case(case, kind=self.sweep_kind.currentText(), direction=self.sweep_dir.currentText(),
                             total_angle_deg=float(self.angle.value()), n_projections=int(self.n_proj.value()))
        st = settings_from_case(case, kvp=float(self.kvp.value()), sweep_mas=float(self.mas.value()),
                                plain_film_mas=float(self.film_mas.value()))
        return sw, st

    def update_dose(self):
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sw, st = self._sweep_and_settings()
            d_sweep, d_film = wf.dose_preview(self.case, sw, st)
        except VolumedrError as exc:
            self.dose_label.setText(f"<span style='color:#c00'>{exc}</span>")
            return
        ratio = d_sweep.effective_dose_msv / max(d_film.effective_dose_msv, 1e-12)
        self.dose_label.setText(
            f"<b>Sweep:</b> {sw.n_projections} x {st.mas_per_view(sw.n_projections):.2f} mAs, ESAK "
            f"{d_sweep.entrance_surface_air_kerma_total_ugy / 1000:.2f} mGy, E {d_sweep.effective_dose_msv:.3f} mSv<br>"
            f"<b>Plain film:</b> ESAK {d_film.entrance_surface_air_kerma_total_ugy / 1000:.3f} mGy, "
            f"E {d_film.effective_dose_msv:.3f} mSv<br>sweep = {ratio:.1f} x film")
        self.dose_readout = (d_sweep, d_film)

    def _method_changed(self):
        sart = self.method.currentData() == "sart"
        self.iterations.setEnabled(sart)
        self.tv_weight.setEnabled(sart)

    def recon_settings(self) -> ReconSettings:
        extra = {}
        if self.method.currentData() == "sart":
            extra = dict(iterations=int(self.iterations.value()), tv_weight=float(self.tv_weight.value()))
        return ReconSettings(method=self.method.currentData(), spacing_mm=float(self.spacing.value()),
                             thickness_mm=float(self.thickness.value()), z_min_mm=float(self.zmin.value()),
                             z_max_mm=float(self.zmax.value()), mar=self.mar.isChecked(), **extra)

    # -------------------------------------------------------------------- jobs
    def _start(self, name, make_job, on_done, on_partial=None):
        if self.worker is not None and not self.worker.done:
            self.worker.cancel()
        w = GeneratorWorker(make_job, name)
        w.on_done = on_done
        w.on_partial = on_partial
        # bound methods of this (GUI-thread) object with queued connections: the handlers run on the
        # GUI thread, never in the worker thread
        q = QtCore.Qt.ConnectionType.QueuedConnection
        w.progress.connect(self._on_progress, q)
        w.partial.connect(self._on_partial, q)
        w.failed.connect(self._on_failed, q)
        w.cancelled.connect(self._on_cancelled, q)
        w.finished.connect(self._on_finished, q)
        self.worker = w
        # a worker is dropped only once its last signal was handled here and its thread has ended
        # (dropping it earlier loses the sender of a queued signal and can destroy a running QThread)
        self._workers = [x for x in self._workers if not (getattr(x, "ended", False) and x.thread.isFinished())] + [w]
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.cancel_button.setVisible(True)
        self.status_label.setText(f"{name}...")
        w.start()
        return w

    @QtCore.Slot(str, int, int)
    def _on_progress(self, stage, done, total):
        if self.sender() is not self.worker:
            return
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage} %v/%m")

    @QtCore.Slot(object)
    def _on_partial(self, ev):
        w = self.sender()
        if w is self.worker and getattr(w, "on_partial", None) is not None:
            w.on_partial(ev)

    @QtCore.Slot(object)
    def _on_finished(self, result):
        w = self.sender()
        self._end_job(w)
        if w is not self.worker:
            return
        try:
            w.on_done(result)
        except VolumedrError as exc:
            self.show_error(str(exc))
        self.job_finished.emit(w.name)

    @QtCore.Slot(str)
    def _on_failed(self, msg):
        w = self.sender()
        self._end_job(w)
        if w is self.worker:
            self.show_error(msg)
        self.job_finished.emit(w.name)

    @QtCore.Slot()
    def _on_cancelled(self):
        w = self.sender()
        self._end_job(w)
        if w is self.worker:
            self.status_label.setText(f"{w.name} cancelled")
        self.job_finished.emit(w.name)

    def _end_job(self, w):
        w.ended = True
        release_free_memory()  # what the job freed goes back to the system, not into its thread's arena
        if w is self.worker:
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)

    def cancel_job(self):
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("cancelling...")

    def show_error(self, msg: str):
        self.last_error = msg
        self._message(QtWidgets.QMessageBox.Icon.Critical, f"Error: {msg}", msg)

    def show_warning(self, msg: str):
        """Something the user should know that did not stop the work (a study opened without a broken item)."""
        self.last_warning = msg
        self._message(QtWidgets.QMessageBox.Icon.Warning, f"Warning: {msg}", msg)

    def _message(self, icon, status: str, msg: str):
        self.status_label.setText(status)
        box = QtWidgets.QMessageBox(icon, "volumedr", msg, QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self._error_box = box

    def acquire(self):
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sw, st = self._sweep_and_settings()
            det = Detector().binned(wf.DETECTOR_BINNING[self.detector.currentText()])
        except VolumedrError as exc:
            self.show_error(str(exc))
            return
        case = self.case
        self._start("acquiring", lambda: wf.acquire_job(case, sw, st, det, seed=None), self._acquired)

    def _acquired(self, study: Study):
        self.set_study(study)
        self.reconstruct()

    def reconstruct(self):
        if self.study is None:
            self.show_error("no study: acquire or open one first")
            return
        try:
            settings = self.recon_settings()
        except VolumedrError as exc:
            self.show_error(str(exc))
            return
        study = self.study
        h = self.current_height()
        self._start("reconstructing", lambda: wf.reconstruct_job(study, settings, h), self._reconstructed,
                    self._on_preview)

    def _on_preview(self, ev):
        if isinstance(ev, wf.PartialReconstruction):  # SART converging: show the slices so far
            self._show_iteration(ev)
            return
        if isinstance(ev, wf.Preview):
            self.preview = ev
            self.slice_pane.set_image(ev.image, ev.pixel_spacing_mm, ev.origin_mm)
            if self.rec is None:
                self.slice_pane.set_levels(*percentile_levels(ev.image, *TOMO_PRESETS[self.tomo_preset.currentText()]))
            self.height_label.setText(f"{ev.height_mm:.1f} mm (preview; filling in)")

    def _show_iteration(self, ev):
        """SART converging: show the slices so far (the worker keeps iterating)."""
        if self.study is None:
            return
        self._reconstructed(ev.reconstruction, final=False)
        self.status_label.setText(f"SART iteration {ev.iteration}/{ev.n_iterations} shown (data residual "
                                  f"{ev.residual:.4g}); converging...")

    def _reconstructed(self, rec, final: bool = True):
        first = self.rec is None or self.rec.method != rec.method  # new units: new grey levels
        h = self.current_height()
        self.rec = rec
        self.preview = None
        self.study.reconstruction = rec
        n = len(rec.heights_mm)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setEnabled(True)
        idx = int(np.argmin(np.abs(rec.heights_mm - h))) if h is not None else n // 2
        self.slider.setValue(idx)
        self.slider.blockSignals(False)
        self.index = idx
        if first:
            self.apply_tomo_preset(self.tomo_preset.currentText())
        self.refresh()
        if not final:
            return
        extra = ""
        if rec.method == "sart":
            p = rec.parameters
            extra = f", {p.get('iterations')} SART iterations x {p.get('subsets')} subsets, TV {p.get('tv_weight')}"
        mar = rec.parameters.get("mar")
        if isinstance(mar, dict) and mar:
            from ..reconstruct.metal import mar_line

            extra += "; " + mar_line(mar)
        self.status_label.setText(f"{rec.method.upper()}: {n} slices {rec.heights_mm[0]:.0f}-{rec.heights_mm[-1]:.0f} mm"
                                  f" every {rec.heights_mm[1] - rec.heights_mm[0] if n > 1 else 0:.1f} mm,"
                                  f" thickness {rec.thickness_mm:g} mm{extra}")
        self.reconstruction_shown.emit()

    # ----------------------------------------------------------------- display
    def set_study(self, study: Study):
        self.study = study
        self.rec = study.reconstruction
        self.film_pane.set_image(None)
        if study.dr is not None:
            sp, org = self.film_display_grid()
            self.film_pane.set_image(study.dr, sp, org, auto_range=True)
            self.film_pane.set_levels(*percentile_levels(study.dr, *TOMO_PRESETS[self.tomo_preset.currentText()]))
        self.ct_pane.set_levels(*CT_PRESETS[self.ct_preset.currentText()])
        self.findings_list.clear()
        for f in study.findings:
            item = QtWidgets.QListWidgetItem(
                f"{f['name']} ({f['size_mm']:g} mm, z {f['centre_mm'][2]:.0f} mm)"
                + ("  [occult on film]" if f.get("occult_on_plain_film") else ""))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, f)
            self.findings_list.addItem(item)
        if self.rec is not None:
            self._reconstructed(self.rec)

    def _h_ref(self) -> float:
        if self.rec is not None:
            return float(np.mean(self.rec.heights_mm))
        r = self.study.metadata.get("object_height_range_mm") if self.study else None
        return float(np.mean(r)) if r else 0.0

    def _source_z(self) -> float:
        return float(self.study.geometry.source_positions_mm[:, 2].mean())

    def film_display_grid(self):
        """The film is shown demagnified to the mid-slice plane so anatomy lines up with the slices."""
        det = self.study.geometry.detector
        sz = self._source_z()
        demag = (sz - self._h_ref()) / sz
        sp = (det.pitch_row_mm * demag, det.pitch_col_mm * demag)
        return sp, (-(det.cols - 1) / 2 * sp[1], -(det.rows - 1) / 2 * sp[0])

    def to_film(self, x, y, z):
        """Where a point (x, y, z) appears on the (demagnified) film display."""
        sz = self._source_z()
        k = (sz - self._h_ref()) / (sz - z)
        return x * k, y * k

    def current_height(self):
        if self.rec is not None and len(self.rec.heights_mm):
            return float(self.rec.heights_mm[self.index])
        if self.preview is not None:
            return self.preview.height_mm
        return None

    def current_image(self):
        if self.rec is None:
            return None
        return wf.slab(self.rec.slices, self.index, self.slab_n.value(), self.slab_mode.currentData())

    def refresh(self):
        if self.rec is None or self.study is None:
            return
        rec = self.rec
        h = float(rec.heights_mm[self.index])
        self.slice_pane.set_image(self.current_image(), rec.pixel_spacing_mm, rec.origin_mm)
        few = None
        if rec.view_fraction is not None and rec.view_fraction.shape == rec.slices.shape:
            few = rec.view_fraction[self.index] < 128  # seen by fewer than half of the views: not to be trusted
        self.slice_pane.set_veil(few)
        mode = self.slab_mode.currentData()
        slab = "" if mode == "single" else f", {mode} of {self.slab_n.value()}"
        self.height_label.setText(f"{h:.1f} mm  ({self.index + 1}/{len(rec.heights_mm)}{slab})")
        self.slice_pane.info.setText(f"{rec.method.upper()}  z = {h:.1f} mm")
        ct = self.study.ct_reference
        if ct is not None:
            k = int(round((h - ct.origin_mm[2]) / ct.spacing_mm[0]))
            if 0 <= k < ct.hu.shape[0]:
                self.ct_pane.set_image(ct.hu[k], (ct.spacing_mm[1], ct.spacing_mm[2]), ct.origin_mm[:2])
                self.ct_pane.info.setText(f"z = {ct.origin_mm[2] + k * ct.spacing_mm[0]:.1f} mm")
            else:
                self.ct_pane.set_image(np.full((2, 2), -1000, np.float32), (1, 1), (0, 0))
                self.ct_pane.info.setText("outside the CT volume")
        self._update_findings(h)

    def _update_findings(self, h):
        show = self.show_answers.isChecked() and self.study is not None
        fs = self.study.findings if show else []
        th = self.rec.thickness_mm if self.rec is not None else 1.0
        on_slice, on_film, on_ct = [], [], []
        for f in fs:
            x, y, z = f["centre_mm"]
            d = float(f["size_mm"])
            label = f["name"].split(",")[0]
            if abs(z - h) <= d / 2 + th / 2:
                on_slice.append((x, y, d, label))
            if abs(z - h) <= d / 2:
                on_ct.append((x, y, d, label))
            fx, fy = self.to_film(x, y, z)
            on_film.append((fx, fy, d, label))
        self.slice_pane.set_findings(on_slice)
        self.film_pane.set_findings(on_film)
        self.ct_pane.set_findings(on_ct)

    def set_index(self, i: int):
        if self.rec is None:
            return
        i = int(np.clip(i, 0, len(self.rec.heights_mm) - 1))
        self.index = i
        if self.slider.value() != i:
            self.slider.blockSignals(True)
            self.slider.setValue(i)
            self.slider.blockSignals(False)
        self.refresh()

    def step(self, d: int):
        self.set_index(self.index + d)

    def set_playing(self, on: bool):
        if on and self.rec is not None:
            self.cine_timer.setInterval(int(1000 / self.fps.value()))
            self.cine_timer.start()
            self.play_button.setText("Pause")
        else:
            self.cine_timer.stop()
            self.play_button.setText("Play")
            if self.play_button.isChecked():
                self.play_button.setChecked(False)

    def _cine_step(self):
        if self.rec is None:
            return
        n = len(self.rec.heights_mm)
        i = self.index + self._cine_dir
        if self.cine_mode.currentText() == "loop":
            i %= n
        elif i >= n or i < 0:
            self._cine_dir = -self._cine_dir
            i = self.index + self._cine_dir
        self.set_index(i)

    def keyPressEvent(self, ev):
        k = ev.key()
        Q = QtCore.Qt.Key
        n = len(self.rec.heights_mm) if self.rec is not None else 0
        moves = {Q.Key_Up: 1, Q.Key_Down: -1, Q.Key_PageUp: 10, Q.Key_PageDown: -10}
        if k in moves:
            self.step(moves[k])
        elif k == Q.Key_Home:
            self.set_index(0)
        elif k == Q.Key_End:
            self.set_index(n - 1)
        elif k == Q.Key_Space:
            self.play_button.toggle()
        else:
            super().keyPressEvent(ev)

    # ------------------------------------------------------------ W/L, tools
    def apply_tomo_preset(self, name):
        lo_p, hi_p = TOMO_PRESETS[name]
        img = self.current_image()
        if img is None and self.preview is not None:
            img = self.preview.image
        if img is not None:
            self.slice_pane.set_levels(*percentile_levels(img, lo_p, hi_p))
        if self.study is not None and self.study.dr is not None:
            self.film_pane.set_levels(*percentile_levels(self.study.dr, lo_p, hi_p))

    def apply_ct_preset(self, name):
        self.ct_pane.set_levels(*CT_PRESETS[name])

    def set_tool(self, key):
        for p in self.panes:
            p.tool = key
        self.tool_actions[key].setChecked(True)

    def set_linked(self, on: bool):
        a, b, c = (p.vb for p in self.panes)
        for v in (b, c):
            v.setXLink(a if on else None)
            v.setYLink(a if on else None)

    def _pane_point(self, pane, scene_pos):
        p = pane.vb.mapSceneToView(scene_pos)
        return p.x(), p.y()

    def _mouse_moved(self, pane, pos):
        if self.study is None:
            return
        x, y = self._pane_point(pane, pos)
        h = self.current_height() or self._h_ref()
        if pane is self.film_pane:  # film -> object plane at the current height
            sz = self._source_z()
            k = (sz - h) / (sz - self._h_ref())
            xo, yo = x * k, y * k
        else:
            xo, yo = x, y
        fx, fy = self.to_film(xo, yo, h)
        self.slice_pane.set_cursor(xo, yo)
        self.ct_pane.set_cursor(xo, yo)
        self.film_pane.set_cursor(fx, fy)
        v = pane.value_at(x, y)
        vtxt = "" if v is None else (f"  {v:.0f} HU" if pane is self.ct_pane else f"  value {v:.4g}")
        self.cursor_label.setText(f"x {xo:.1f}  y {yo:.1f}  z {h:.1f} mm{vtxt}")

    def _mouse_clicked(self, pane, ev):
        if pane.tool != "focus" or self.rec is None or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        x, y = self._pane_point(pane, ev.scenePos())
        self.focus_at(x, y, from_film=pane is self.film_pane)

    def focus_at(self, x, y, from_film=False):
        """Jump to the slice where the structure at (x, y) is sharpest."""
        if from_film:
            sz = self._source_z()
            # a film point at the display plane; search along the ray through it at each height
            k = (sz - float(np.mean(self.rec.heights_mm))) / (sz - self._h_ref())
            x, y = x * k, y * k
        row, col = self.rec.pixel_of(x, y)
        idx = wf.sharpest_slice(self.rec.slices, row, col, pixel_mm=float(self.rec.pixel_spacing_mm[1]))
        self.set_index(idx)
        self.status_label.setText(f"sharpest at z = {self.rec.heights_mm[idx]:.1f} mm")
        return idx

    def _goto_finding(self, item):
        f = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if self.rec is None or not f:
            return
        self.set_index(int(np.argmin(np.abs(self.rec.heights_mm - f["centre_mm"][2]))))

    # ------------------------------------------------------------------ files
    def open_dialog(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open study", "", "volumedr studies (*.h5 *.hdf5)")
        if path:
            self.open_study(path)

    def open_study(self, path):
        def job():
            s = read_study(path)
            yield from ()
            return s

        def done(study):
            self.rec = None
            self.set_study(study)
            self.setWindowTitle(f"volumedr - {Path(path).name}")
            if study.dropped:  # damaged or invalid optional items: the rest opened, say what is missing
                self.show_warning(f"{Path(path).name} opened without these damaged or invalid items: "
                                  f"{', '.join(study.dropped)}")
            if study.reconstruction is None:
                self.reconstruct()

        self._start("opening", job, done)

    def save_dialog(self):
        if self.study is None:
            self.show_error("nothing to save: acquire or open a study first")
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save study", "study.h5", "volumedr studies (*.h5)")
        if path:
            self.save_study(path)

    def save_study(self, path):
        study = self.study

        def job():
            write_study(path, study)
            yield from ()
            return path

        self._start("saving", job, lambda p: self.status_label.setText(f"saved {p}"))

    def export_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view", "view.png", "PNG images (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path) -> bool:
        ok = self.view_widget.grab().save(str(path), "PNG")
        if not ok:
            self.show_error(f"could not write {path}")
        return ok

    # ------------------------------------------------------------------ DICOM
    SLICE_CHOICES = ("CT (scrolls as a stack in every viewer)", "DX (radiography semantics)")

    def _study_for_export(self):
        if self.study is None:
            self.show_error("nothing to export: acquire or open a study first")
            return None
        study = copy.copy(self.study)
        study.reconstruction = self.rec
        return study

    def export_dicom_dialog(self):
        if self._study_for_export() is None:
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export DICOM into folder")
        if not folder:
            return
        choice, ok = QtWidgets.QInputDialog.getItem(self, "Export DICOM", "Slices as:", self.SLICE_CHOICES, 0, False)
        if ok:
            name = f"{self.study.metadata.get('case', 'study')}-dicom"
            out = Path(folder) / name
            n = 2
            while out.exists():
                out = Path(folder) / f"{name}-{n}"
                n += 1
            self.export_dicom(out, "ct" if choice.startswith("CT") else "dx")

    def export_dicom(self, outdir, as_: str = "ct"):
        """Write the study (with the slices on screen) as DICOM into the new folder ``outdir``, in a worker."""
        from ..io.dicom_export import export_dicom

        study = self._study_for_export()
        if study is None:
            return None

        def job():
            return (yield from export_dicom(study, outdir, as_=as_))

        def done(summary):
            self.status_label.setText(f"exported {len(summary.files)} DICOM files to {summary.outdir}")

        return self._start("exporting DICOM", job, done)

    def send_dialog(self):
        if self._study_for_export() is None:
            return
        dlg = SendDialog(self, self.settings_pacs or "ORTHANC@127.0.0.1:4242", self.settings_tls)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            try:
                tls = dlg.tls_settings()
            except VolumedrError as exc:
                self.show_error(str(exc))
                return
            self.send_to_pacs(dlg.address.text().strip(), tls=tls)

    def send_to_pacs(self, address: str, as_: str = "ct", timeout_s: float = 30.0, tls=None):
        """Export to a temporary folder and C-STORE every image to ``address`` (AET@HOST:PORT), in a worker;
        ``tls`` (a :class:`~volumedr.io.pacs.TlsSettings`) sends DICOM over TLS, the PACS verified."""
        import tempfile

        from ..io.dicom_export import export_dicom
        from ..io.pacs import parse_peer, send_files

        study = self._study_for_export()
        if study is None:
            return None
        try:
            peer = parse_peer(address, tls)
        except VolumedrError as exc:
            self.show_error(str(exc))
            return None
        self.settings_pacs = address
        self.settings_tls = tls

        def job():
            with tempfile.TemporaryDirectory(prefix="volumedr-send-") as tmp:
                summary = yield from export_dicom(study, Path(tmp) / "export", as_=as_)
                n = yield from send_files(summary.files, peer, timeout_s=timeout_s)
            return n

        return self._start("sending to PACS", job, lambda n: self.status_label.setText(f"sent {n} images to {peer}"))

    def closeEvent(self, ev):
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            w.thread.quit()
            w.thread.wait(5000)
        super().closeEvent(ev)


class SendDialog(QtWidgets.QDialog):
    """Where to send: the PACS address and, for DICOM over TLS, the CA to verify it against and this
    workstation's certificate and key (PEM files; empty = the system's CAs, no client certificate)."""

    def __init__(self, parent, address: str, tls=None):
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        lay = QtWidgets.QFormLayout(self)
        self.address = QtWidgets.QLineEdit(address)
        lay.addRow("PACS (AET@HOST:PORT)", self.address)
        self.tls = QtWidgets.QCheckBox("DICOM over TLS (the PACS's certificate is verified)")
        lay.addRow(self.tls)
        self.files = {}
        for key, label in (("ca_path", "CA certificate(s)"), ("cert_path", "This workstation's certificate"),
                           ("key_path", "Its private key")):
            edit = QtWidgets.QLineEdit(getattr(tls, key, None) or "")
            edit.setPlaceholderText("PEM file" + (" (empty: the system's CAs)" if key == "ca_path" else " (optional)"))
            browse = QtWidgets.QPushButton("...")
            browse.clicked.connect(lambda _=False, e=edit: self._browse(e))
            row = QtWidgets.QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            lay.addRow(label, row)
            self.files[key] = edit
        self.tls.toggled.connect(self._tls_toggled)
        self.tls.setChecked(tls is not None)
        self._tls_toggled(tls is not None)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)

    def _browse(self, edit):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "PEM file", "", "PEM (*.pem *.crt *.key);;All (*)")
        if path:
            edit.setText(path)

    def _tls_toggled(self, on: bool):
        for edit in self.files.values():
            edit.setEnabled(on)

    def tls_settings(self):
        """The TLS settings chosen, or None for plain DICOM (raises ParameterError for missing files)."""
        from ..io.pacs import TlsSettings

        if not self.tls.isChecked():
            return None
        return TlsSettings(**{k: (e.text().strip() or None) for k, e in self.files.items()})


__all__ = ["MainWindow", "SendDialog"]
