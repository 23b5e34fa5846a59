"""The review workstation window: the thin place that wires the roles together.

Each part lives in the module named for it: the viewer (``viewer.py``: panes, navigation, cine, tools),
the technologist's acquisition and reconstruction panel (``technologist.py``), the case browser
(``case_browser.py``), the reading mode for trainees (``reading.py``), the job runner (``jobs.py``) and
the file and network actions (``file_actions.py``).
"""
from __future__ import annotations

import threading

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ..study import Study
from ..sysinfo import limit_malloc_arenas
from .widgets import CT_PRESETS, TOMO_PRESETS
from .worker import GeneratorWorker

from .case_browser import CaseBrowserMixin
from .file_actions import FileActionsMixin, SendDialog
from .jobs import JobsMixin
from .reading import ReadingMode
from .technologist import TechnologistMixin
from .viewer import ViewerMixin

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

__all__ = ["MainWindow", "SendDialog", "CT_PRESETS", "TOMO_PRESETS"]


class MainWindow(ViewerMixin, TechnologistMixin, CaseBrowserMixin, JobsMixin, FileActionsMixin,
                 QtWidgets.QMainWindow):
    """The volumedr workstation.  ``case`` is acquired on start unless ``study`` is given."""

    reconstruction_shown = QtCore.Signal()
    job_finished = QtCore.Signal(str)

    def __init__(self, *, case: str | None = "chest", study_path: str | None = None, detector_label=None,
                 reading_db=None):
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
        self.reading = ReadingMode(self, reading_db)
        self._build_reading_menu()
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
        self.file_actions = {}
        for name, label, slot, key in (
                ("open", "&Open study...", self.open_dialog, QtGui.QKeySequence.StandardKey.Open),
                ("save", "&Save study as...", self.save_dialog, QtGui.QKeySequence.StandardKey.Save),
                ("png", "&Export view as PNG...", self.export_dialog, None),
                ("dicom", "Export &DICOM...", self.export_dicom_dialog, None),
                ("pacs", "Send to &PACS...", self.send_dialog, None),
                ("quit", "&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit)):
            a = QtGui.QAction(label, self)
            a.triggered.connect(slot)
            if key is not None:
                a.setShortcut(key)
            m.addAction(a)
            self.file_actions[name] = a

    def _build_reading_menu(self):
        m = self.menuBar().addMenu("&Reading")
        for label, slot in (("&Start or resume a reading session...", self.reading.sign_in),
                            ("&Results...", self.reading.show_results),
                            ("&Leave reading mode", self.reading.leave)):
            a = QtGui.QAction(label, self)
            a.triggered.connect(slot)
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

    def closeEvent(self, ev):
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            w.thread.quit()
            w.thread.wait(5000)
        super().closeEvent(ev)

    # the job runner's slots are declared here, on the QObject: Qt gives a slot its sender() only when the
    # slot belongs to the QObject class itself, not to a plain mixin (jobs.py holds what they do)
    @QtCore.Slot(str, int, int)
    def _on_progress(self, stage, done, total):
        JobsMixin._on_progress(self, stage, done, total)

    @QtCore.Slot(object)
    def _on_partial(self, ev):
        JobsMixin._on_partial(self, ev)

    @QtCore.Slot(object)
    def _on_finished(self, result):
        JobsMixin._on_finished(self, result)

    @QtCore.Slot(str)
    def _on_failed(self, msg):
        JobsMixin._on_failed(self, msg)

    @QtCore.Slot()
    def _on_cancelled(self):
        JobsMixin._on_cancelled(self)
