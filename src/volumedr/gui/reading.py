"""Reading mode: a trainee reads blinded cases, film first and then the volume DR slices, marks what
they find with a confidence, and is scored (``volumedr.reading``) and shown what they missed.

The flow of one case:

1. **film**: the history and the plain film alone (no title, no teaching notes, no findings, no CT
   reference, no slices).  A left click on the film with the Pan/Zoom tool places a mark at the
   current confidence; a mark can be dragged, its confidence changed, or deleted.
2. **slices**: "Read the slices" locks the film marks and shows the volume DR slices beside the film; a
   click on a slice places a mark at (x, y) and that slice's height.
3. **submit**: the marks are scored; with feedback on, every mark is labelled a hit or a false
   positive, the findings are drawn (a click on one in the list goes to the slice where it is
   sharpest), the title and teaching notes are revealed with a one-line film-vs-volume DR result.
   An exam-style session (feedback off) goes straight to the next case.

Every mark, move, deletion, timing and score is committed to the reading database as it happens
(``volumedr.reading.store``), so a session can be resumed after a crash.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .. import workflow as wf
from ..errors import VolumedrError
from ..geometry import Detector
from ..phantoms.case import case_names, load_case
from ..reading.scoring import study_targets
from ..reconstruct import ReconSettings
from ..simulate import settings_from_case, sweep_from_case

HIT = "#36d96b"
FALSE_POSITIVE = "#ff4d4d"
PENDING = "#ffb000"
LOCKED = "#9aa6b2"


class CaseReady:
    """The acquisition of a reading case is done (its film can be read while the slices reconstruct)."""

    def __init__(self, study):
        self.study = study


class SignInDialog(QtWidgets.QDialog):
    """Sign in by name, choose the cases and whether to see feedback; or resume an open session."""

    def __init__(self, parent, store_factory):
        super().__init__(parent)
        self.setWindowTitle("volumedr - start a reading session")
        self._store_factory = store_factory
        lay = QtWidgets.QFormLayout(self)
        self.name = QtWidgets.QLineEdit()
        self.name.setPlaceholderText("your name")
        self.cases = QtWidgets.QListWidget()
        for n in case_names():
            it = QtWidgets.QListWidgetItem(n)
            it.setFlags(it.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(QtCore.Qt.CheckState.Checked)
            self.cases.addItem(it)
        self.feedback = QtWidgets.QCheckBox("Feedback after each case (off: an exam-style session)")
        self.feedback.setChecked(True)
        self.resume = QtWidgets.QComboBox()
        self.resume.addItem("start a new session", None)
        self.name.editingFinished.connect(self._list_open_sessions)
        lay.addRow("Trainee", self.name)
        lay.addRow("Cases", self.cases)
        lay.addRow("", self.feedback)
        lay.addRow("Session", self.resume)
        bb = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                        | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addRow(bb)

    def _list_open_sessions(self):
        while self.resume.count() > 1:
            self.resume.removeItem(1)
        name = self.name.text().strip()
        if not name:
            return
        try:
            store = self._store_factory()
            for sid in store.open_sessions(name):
                left = sum(not s.submitted for s in store.shown(sid))
                self.resume.addItem(f"resume session {sid} ({left} case(s) left)", sid)
        except VolumedrError:
            return

    def chosen_cases(self) -> list[str]:
        return [self.cases.item(i).text() for i in range(self.cases.count())
                if self.cases.item(i).checkState() == QtCore.Qt.CheckState.Checked]


class ResultsDialog(QtWidgets.QDialog):
    """A trainee's results over sessions: a table and a plot beside the published reference values."""

    COLUMNS = ("Session", "Cases (normal)", "Film sensitivity", "Volume DR sensitivity", "Film FP/case",
               "Volume DR FP/case", "Film wAFROC [95 % CI]", "Volume DR wAFROC [95 % CI]", "Film s/case",
               "Volume DR s/case")

    def __init__(self, parent, store, trainee: str):
        super().__init__(parent)
        from ..reading.analysis import history, references_for

        self.setWindowTitle(f"volumedr - reading results: {trainee}")
        self.resize(1300, 660)
        self.history = history(store, trainee)
        cases = {r[0] for r in store.db.execute(
            "SELECT sh.case_name FROM shown sh JOIN sessions s ON s.id = sh.session_id JOIN trainees t ON "
            "t.id = s.trainee_id WHERE t.name = ? AND sh.submitted_utc IS NOT NULL", (self.history["trainee"],))}
        self.references = references_for(cases)
        lay = QtWidgets.QVBoxLayout(self)
        rows = [(str(s["session"]), s) for s in self.history["sessions"]] + [("all sessions", self.history["all"])]
        self.table = QtWidgets.QTableWidget(len(rows), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        for i, (label, s) in enumerate(rows):
            for j, text in enumerate(self._row(label, s)):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        lay.addWidget(self.table, 1)
        self.plot = pg.PlotWidget(title="Sensitivity per session")
        self.plot.setBackground("w")
        self.plot.addLegend(offset=(10, 10))
        self.plot.setLabel("bottom", "session")
        self.plot.setLabel("left", "sensitivity")
        self.plot.setYRange(0, 1.05)
        xs = np.arange(1, len(self.history["sessions"]) + 1, dtype=float)
        self.curves = {}
        for m, colour, name, symbol, size in (("film", "#1f77b4", "film", "o", 14),
                                              ("tomo", "#d62728", "volume DR", "t", 10)):
            ys = np.array([np.nan if s[m]["sensitivity"] is None else s[m]["sensitivity"]
                           for s in self.history["sessions"]], float)
            ok = np.isfinite(ys)  # a session of normal cases only has no sensitivity
            self.curves[m] = self.plot.plot(xs[ok], ys[ok], pen=pg.mkPen(colour, width=2), symbol=symbol, symbolSize=size,
                                            symbolBrush=colour, symbolPen=colour, name=f"{name} (you)")
            for i, ref in enumerate(self.references):
                line = pg.InfiniteLine(pos=ref[m], angle=0, pen=pg.mkPen(colour, width=1,
                                                                         style=QtCore.Qt.PenStyle.DashLine),
                                       label=f"{ref['finding']}, {name}: {ref[m]:.0%} (published)",
                                       labelOpts={"position": 0.18 + 0.5 * i, "color": colour})
                self.plot.addItem(line)
        if len(xs):
            self.plot.setXRange(0.5, len(xs) + 0.5)
            self.plot.getAxis("bottom").setTicks([[(float(i), str(s["session"])) for i, s in
                                                    zip(xs, self.history["sessions"])]])
        lay.addWidget(self.plot, 2)
        refs = "<br>".join(r["source"] for r in self.references) or "no published reference for these cases"
        note = QtWidgets.QLabel(f"<small>Dashed lines: {refs}. wAFROC needs a normal case and a case with "
                                "findings in the session; '-' where it has not both.</small>")
        note.setWordWrap(True)
        lay.addWidget(note)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        lay.addWidget(close, 0, QtCore.Qt.AlignmentFlag.AlignRight)

    @staticmethod
    def _row(label, s):
        def pct(v):
            return "-" if v is None else f"{v:.0%}"

        def num(v, fmt="{:.2f}"):
            return "-" if v is None else fmt.format(v)

        def fom(m):
            v, ci = s[m]["wafroc"], s[m]["wafroc_ci95"]
            return "-" if v is None else f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"

        return (label, f"{s['cases']} ({s['normal_cases']})", pct(s["film"]["sensitivity"]),
                pct(s["tomo"]["sensitivity"]), num(s["film"]["false_positives_per_case"]),
                num(s["tomo"]["false_positives_per_case"]), fom("film"), fom("tomo"),
                num(s["film"]["seconds_per_case"], "{:.0f}"), num(s["tomo"]["seconds_per_case"], "{:.0f}"))


class ReadingMode(QtCore.QObject):
    """Reading mode of the main window: its dock, the blinded case flow, the marks and the scoring."""

    case_shown = QtCore.Signal(str)  # stage: "film", "tomo" or "feedback"
    session_finished = QtCore.Signal(int)

    def __init__(self, win, db_path=None):
        super().__init__(win)
        self.win = win
        self.db_path = db_path
        self.store = None
        self.active = False
        self.session_id = None
        self.trainee = None
        self.feedback = True
        self.shown = None
        self.case = None
        self.study = None
        self.rec = None
        self.stage = None
        self.items: dict[int, pg.TargetItem] = {}  # mark id -> its item on the film or slice pane
        self.marks: dict[int, object] = {}  # mark id -> Mark
        self.result = None
        self.results_dialog = None
        self._clock = QtCore.QElapsedTimer()
        self._tick = QtCore.QTimer(self)
        self._tick.timeout.connect(self._update_clock)
        self._build_dock()
        for pane in (win.film_pane, win.slice_pane):
            pane.glw.scene().sigMouseClicked.connect(lambda ev, p=pane: self._clicked(p, ev))

    # -- the dock ------------------------------------------------------------------------------------------
    def _build_dock(self):
        dock = QtWidgets.QDockWidget("Reading", self.win)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        w = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(w)
        self.header = QtWidgets.QLabel("")
        self.header.setWordWrap(True)
        self.history_box = QtWidgets.QTextBrowser()
        self.history_box.setMaximumHeight(120)
        self.clock_label = QtWidgets.QLabel("")
        self.instructions = QtWidgets.QLabel("")
        self.instructions.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Confidence"))
        self.confidence = QtWidgets.QSpinBox()
        self.confidence.setRange(1, 5)
        self.confidence.setValue(3)
        self.confidence.setToolTip("1 = possibly there ... 5 = certainly there; applies to new marks and to the "
                                   "selected one")
        self.confidence.valueChanged.connect(self._confidence_changed)
        row.addWidget(self.confidence)
        row.addStretch(1)
        self.mark_list = QtWidgets.QListWidget()
        self.mark_list.currentItemChanged.connect(self._mark_selected)
        self.delete_button = QtWidgets.QPushButton("Delete mark")
        self.delete_button.clicked.connect(self.delete_selected)
        QtGui.QShortcut(QtGui.QKeySequence.StandardKey.Delete, self.mark_list, activated=self.delete_selected)
        self.slices_button = QtWidgets.QPushButton("Read the slices")
        self.slices_button.clicked.connect(self.show_slices)
        self.submit_button = QtWidgets.QPushButton("Submit")
        self.submit_button.clicked.connect(self.submit)
        self.feedback_box = QtWidgets.QTextBrowser()
        self.findings_list = QtWidgets.QListWidget()
        self.findings_list.setWordWrap(True)
        self.findings_list.itemClicked.connect(self._goto_finding)
        self.next_button = QtWidgets.QPushButton("Next case")
        self.next_button.clicked.connect(self.next_case)
        self.export_button = QtWidgets.QPushButton("Export this case with my reading (DICOM)...")
        self.export_button.setToolTip("the film, the slices, the answer key and your marks as DICOM (SR)")
        self.export_button.clicked.connect(self.export_dialog)
        self.results_button = QtWidgets.QPushButton("Results...")
        self.results_button.clicked.connect(self.show_results)
        self.leave_button = QtWidgets.QPushButton("Leave reading mode")
        self.leave_button.clicked.connect(self.leave)
        for wdg in (self.header, self.history_box, self.clock_label, self.instructions):
            lay.addWidget(wdg)
        lay.addLayout(row)
        lay.addWidget(self.mark_list, 1)
        lay.addWidget(self.delete_button)
        lay.addWidget(self.slices_button)
        lay.addWidget(self.submit_button)
        lay.addWidget(self.feedback_box, 2)
        lay.addWidget(self.findings_list, 1)
        lay.addWidget(self.next_button)
        lay.addWidget(self.export_button)
        lay.addWidget(self.results_button)
        lay.addWidget(self.leave_button)
        dock.setWidget(w)
        self.win.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        dock.setVisible(False)
        self.dock = dock

    def open_store(self):
        if self.store is None:
            from ..reading.store import Store

            self.store = Store(self.db_path)
        return self.store

    # -- entering and leaving ------------------------------------------------------------------------------
    def sign_in(self):
        """The sign-in dialog; starts or resumes the session chosen."""
        dlg = SignInDialog(self.win, self.open_store)
        if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return
        sid = dlg.resume.currentData()
        if sid is not None:
            self.resume(int(sid))
        else:
            self.begin(dlg.name.text(), dlg.chosen_cases(), feedback=dlg.feedback.isChecked())

    def begin(self, trainee: str, cases, *, feedback: bool = True, seed: int | None = None, **kw) -> int | None:
        """Start a new session for ``trainee`` over ``cases``; returns its id."""
        try:
            sid = self.open_store().start_session(trainee, cases, seed=seed, feedback=feedback, **kw)
        except VolumedrError as exc:
            self.win.show_error(str(exc))
            return None
        self.resume(sid)
        return sid

    def resume(self, session_id: int) -> None:
        try:
            info = self.open_store().session(session_id)
        except VolumedrError as exc:
            self.win.show_error(str(exc))
            return
        self.session_id = session_id
        self.trainee = info["trainee"]
        self.feedback = info["feedback"]
        self._enter()
        self.next_case()

    def _enter(self):
        w = self.win
        if not self.active:
            self._saved = {"answers": w.show_answers.isChecked(), "title": w.windowTitle()}
        self.active = True
        w.show_answers.setChecked(False)
        for d in (w.tech_dock, w.case_dock):
            d.setVisible(False)
            d.toggleViewAction().setEnabled(False)
        for a in w.file_actions.values():
            a.setEnabled(a is w.file_actions.get("quit"))
        w.ct_pane.setVisible(False)
        w.set_linked(False)  # the film is read alone: its view must not follow the hidden slice pane
        self.dock.setVisible(True)
        w.setWindowTitle(f"volumedr - reading mode ({self.trainee})")

    def leave(self):
        """Back to the workstation; an unfinished session stays open for resuming."""
        if not self.active:
            return
        w = self.win
        if w.worker is not None and not w.worker.done:
            w.worker.cancel()
        self._tick.stop()
        self._clear_marks()
        self.active = False
        self.stage = None
        self.dock.setVisible(False)
        for d in (w.tech_dock, w.case_dock):
            d.toggleViewAction().setEnabled(True)
            d.setVisible(True)
        w.tech_dock.raise_()
        for a in w.file_actions.values():
            a.setEnabled(True)
        w.ct_pane.setVisible(True)
        w.slice_pane.setVisible(True)
        w.set_linked(w.link_zoom.isChecked())
        w.slice_pane.set_findings([])
        w.film_pane.set_findings([])
        w.show_answers.setChecked(self._saved["answers"])
        w.setWindowTitle(self._saved["title"])
        if self.case is not None:
            i = w.case_combo.findData(self.case.name)
            if i >= 0:
                w.case_combo.setCurrentIndex(i)  # the case notes now belong to what is on screen

    # -- one case ------------------------------------------------------------------------------------------
    def next_case(self):
        w = self.win
        self._tick.stop()
        self._clear_marks()
        self.result = None
        self.rec = None
        self.study = None
        store = self.open_store()
        self.shown = store.next_case(self.session_id)
        shown_all = store.shown(self.session_id)
        if self.shown is None:
            self.stage = "done"
            self._show_stage()
            self.session_finished.emit(self.session_id)
            self.show_results()
            return
        self.stage = "loading"
        self.case = None
        w.rec = None
        w.study = None
        w.slice_pane.set_image(None)
        w.film_pane.set_image(None)
        w.slice_pane.set_findings([])
        w.film_pane.set_findings([])
        w.slider.setEnabled(False)
        w.slice_pane.setVisible(False)
        w.set_linked(False)  # the film is read alone: its view must not follow the hidden slice pane
        self.header.setText(f"<b>{self.trainee}</b>: case {self.shown.position + 1} of {len(shown_all)}")
        self._show_stage()
        shown = self.shown
        try:
            det = Detector().binned(wf.DETECTOR_BINNING[w.detector.currentText()])
        except (KeyError, VolumedrError) as exc:
            w.show_error(str(exc))
            return

        def job():
            case = load_case(shown.case_name, with_findings=shown.variant == "findings")
            study = yield from wf.acquire_job(case, sweep_from_case(case), settings_from_case(case), det,
                                              seed=shown.seed)
            yield CaseReady(study)
            rec = yield from wf.reconstruct_job(study, ReconSettings.from_case(case.reconstruction))
            return case, study, rec

        w._start(f"preparing case {shown.position + 1}", job, self._slices_ready, self._partial)

    def _partial(self, ev):
        if isinstance(ev, CaseReady) and self.active:
            self._film_ready(ev.study)  # a reconstruction Preview is never shown in reading mode

    def _film_ready(self, study):
        w = self.win
        self.study = study
        w.set_study(study)
        w.findings_list.clear()  # the case dock is hidden, but hold nothing there to find
        store = self.open_store()
        store.start_case(self.shown.id)
        case_name = self.shown.case_name
        case = w._cases.get(case_name) or load_case(case_name)
        self.history_box.setHtml(f"<p><b>History.</b> {case.history}</p><p>{case.region.capitalize()}.</p>")
        timings = store.reading_time(self.shown.id)
        for mid, mark in store.marks(self.shown.id):  # a resumed case brings its marks back
            self._add_item(mid, mark)
        self.stage = "tomo_wait" if "film" in timings else "film"
        self._clock.start()
        self._tick.start(1000)
        self._show_stage()
        if self.stage == "film":
            self.case_shown.emit("film")
        elif self.rec is not None:
            self.show_slices()

    def _slices_ready(self, result):
        case, study, rec = result
        self.case = case
        self.rec = rec
        if self.stage == "tomo_wait":
            self.show_slices()
        else:
            self._show_stage()

    def show_slices(self):
        """Lock the film reading (its time recorded) and show the slices."""
        if self.stage not in ("film", "tomo_wait"):
            return
        store = self.open_store()
        if self.stage == "film":
            store.record_time(self.shown.id, "film", self._clock.elapsed() / 1000.0)
        if self.rec is None:
            self.stage = "tomo_wait"
            self._show_stage()
            return
        self.stage = "tomo"
        self._clock.start()
        w = self.win
        w.slice_pane.setVisible(True)
        w._reconstructed(self.rec)
        if w.link_zoom.isChecked():
            w.slice_pane.vb.setRange(w.film_pane.vb.viewRect(), padding=0)  # the slices open on the film's view
            w.set_linked(True)
        for mid, item in self.items.items():
            if self.marks[mid].modality == "film":
                item.movable = False
                item.setPen(pg.mkPen(LOCKED, width=2))
        self._show_stage()
        self.on_refresh()
        self.case_shown.emit("tomo")

    def submit(self):
        if self.stage != "tomo":
            return
        store = self.open_store()
        store.record_time(self.shown.id, "tomo", self._clock.elapsed() / 1000.0)
        self._tick.stop()
        targets, sid_mm, spacing = study_targets(self.study)
        try:
            self.result = store.submit(self.shown.id, targets, sid_mm=sid_mm, spacing_mm=spacing)
        except VolumedrError as exc:
            self.win.show_error(str(exc))
            return
        if not self.feedback:
            self.next_case()
            return
        self.stage = "feedback"
        t = store.reading_time(self.shown.id)
        self.clock_label.setText(f"Read in {t.get('film', 0):.0f} s (film) + {t.get('tomo', 0):.0f} s (slices)")
        self._show_feedback()
        self._show_stage()
        self.case_shown.emit("feedback")

    def _show_feedback(self):
        res = self.result
        status = {}
        for m in ("film", "tomo"):
            for h in res[m]["hits"]:
                status.setdefault(tuple(sorted(h["mark"].items())), []).append(("hit", h["finding"]))
            for nl in res[m]["non_lesion_localisations"]:
                status.setdefault(tuple(sorted(nl.items())), []).append(("fp", None))
        for mid, mark in self.marks.items():
            key = tuple(sorted(asdict(mark).items()))
            kind, finding = (status.get(key) or [("fp", None)]).pop(0)
            item = self.items[mid]
            item.movable = False
            colour = HIT if kind == "hit" else FALSE_POSITIVE
            item.setPen(pg.mkPen(colour, width=2.5))
            item.setLabel(f"{mark.confidence} {'hit: ' + finding.split(',')[0] if kind == 'hit' else 'FP'}",
                          {"color": colour, "offset": (8, -8)})
        self._fill_mark_list()

        def part(m, label):
            r = res[m]
            fp = r["false_positives"]
            fp_text = "no false positive" if fp == 0 else f"{fp} false positive{'s' if fp > 1 else ''}"
            if not r["n_findings"]:
                return f"{label}: {fp_text}"
            return f"{label}: {len(r['hits'])} of {r['n_findings']} found, {fp_text}"

        case = self.case
        normal = self.shown.variant == "normal"
        line = part("film", "Film") + "; " + part("tomo", "volume DR") + "."
        verdict = ("This was a <b>normal variant</b>: the case's anatomy without its findings." if normal else "")
        teach = case.teaching.replace("\n\n", "<br><br>").replace("\n", " ")
        self.feedback_box.setHtml(f"<p><b>{line}</b></p><p>{verdict}</p><p><b>{case.title}</b></p>"
                                  f"<p><b>Teaching notes.</b> {teach}</p>")
        self.findings_list.clear()
        hit_by = {m: {h["finding"] for h in res[m]["hits"]} for m in ("film", "tomo")}
        for f in self.study.findings:
            on = [lab for m, lab in (("film", "film"), ("tomo", "slices")) if f["name"] in hit_by[m]]
            tag = ("found on " + " and ".join(on)) if on else "MISSED"
            it = QtWidgets.QListWidgetItem(f"{f['name']} ({f['size_mm']:g} mm, z {f['centre_mm'][2]:.0f} mm): {tag}")
            it.setData(QtCore.Qt.ItemDataRole.UserRole, f)
            it.setForeground(QtGui.QColor(HIT if on else FALSE_POSITIVE))
            self.findings_list.addItem(it)
        if normal:
            self.findings_list.addItem("no findings: a normal variant")
        self.on_refresh()

    def export_case(self, outdir):
        """After the case is scored: its film, slices, answer key and this reader's marks as DICOM."""
        if self.stage != "feedback":
            return None
        return self.win.export_dicom(outdir, "ct", reading=(list(self.marks.values()), self.trainee))

    def export_dialog(self):
        from .file_actions import new_folder

        folder = QtWidgets.QFileDialog.getExistingDirectory(self.win, "Export the case and your reading into folder")
        if folder:
            self.export_case(new_folder(folder, f"{self.shown.case_name}-{self.shown.variant}-reading"))

    def _goto_finding(self, item):
        f = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if not f or self.win.rec is None:
            return
        x, y, _ = f["centre_mm"]
        self.win.focus_at(x, y)  # the slice where it is sharpest

    # -- marks ---------------------------------------------------------------------------------------------
    def _film_scale(self) -> float:
        """Film display mm per detector mm (the film is shown demagnified to the mid-slice plane)."""
        det = self.study.geometry.detector
        return self.win.film_pane.spacing_mm[1] / det.pitch_col_mm

    def _to_display(self, mark):
        if mark.modality == "film":
            k = self._film_scale()
            return mark.x_mm * k, mark.y_mm * k
        return mark.x_mm, mark.y_mm

    def _from_display(self, modality: str, x: float, y: float) -> tuple[float, float]:
        """The inverse of :meth:`_to_display`: a film mark is kept in mm on the detector."""
        if modality == "film":
            k = self._film_scale()
            return x / k, y / k
        return x, y

    def _clicked(self, pane, ev):
        if not self.active or ev.button() != QtCore.Qt.MouseButton.LeftButton or pane.tool != "pan":
            return
        if ev.modifiers() != QtCore.Qt.KeyboardModifier.NoModifier or self.study is None:
            return
        modality = "film" if pane is self.win.film_pane else "tomo"
        if (modality, self.stage) not in (("film", "film"), ("tomo", "tomo")):
            if modality == "film" and self.stage == "tomo":
                self.win.status_label.setText("the film reading is locked once the slices are shown")
            return
        p = pane.vb.mapSceneToView(ev.scenePos())
        # a click on (or right next to) a mark selects it rather than placing a new one
        for mid, item in self.items.items():
            if item.isVisible() and item.parentItem() is not None and item.getViewBox() is pane.vb:
                d = pane.vb.mapViewToScene(item.pos()) - ev.scenePos()
                if np.hypot(d.x(), d.y()) <= 10:
                    self._select(mid)
                    return
        self.add_mark(modality, p.x(), p.y())

    def add_mark(self, modality: str, x_display: float, y_display: float) -> int | None:
        """Place a mark where the reader pointed (display mm of the film or slice pane)."""
        x, y = self._from_display(modality, x_display, y_display)
        z = None if modality == "film" else self.win.current_height()
        try:
            mid = self.open_store().add_mark(self.shown.id, modality, x, y, z, int(self.confidence.value()))
        except VolumedrError as exc:
            self.win.show_error(str(exc))
            return None
        from ..reading.scoring import Mark

        self._add_item(mid, Mark(modality, x, y, z, int(self.confidence.value())))
        self._select(mid)
        return mid

    def _add_item(self, mid, mark):
        pane = self.win.film_pane if mark.modality == "film" else self.win.slice_pane
        item = pg.TargetItem(pos=self._to_display(mark), size=18, symbol="o", pen=pg.mkPen(PENDING, width=2),
                             movable=True, label=str(mark.confidence), labelOpts={"color": PENDING, "offset": (8, -8)})
        item.setZValue(20)
        item.sigPositionChangeFinished.connect(lambda it, m=mid: self._moved(m, it))
        pane.vb.addItem(item)
        self.items[mid] = item
        self.marks[mid] = mark
        self._fill_mark_list()
        self.on_refresh()

    def _moved(self, mid, item):
        mark = self.marks[mid]
        p = item.pos()
        x, y = self._from_display(mark.modality, p.x(), p.y())
        self.open_store().move_mark(mid, x, y)
        self.marks[mid] = type(mark)(mark.modality, x, y, mark.z_mm, mark.confidence)
        self._fill_mark_list()

    def move_mark(self, mid: int, x_display: float, y_display: float) -> None:
        """Move a mark as a drag would."""
        item = self.items[mid]
        item.setPos(x_display, y_display)
        self._moved(mid, item)

    def _editable(self, mid) -> bool:
        m = self.marks.get(mid)
        return m is not None and (m.modality, self.stage) in (("film", "film"), ("tomo", "tomo"))

    def delete_selected(self):
        it = self.mark_list.currentItem()
        if it is None:
            return
        mid = it.data(QtCore.Qt.ItemDataRole.UserRole)
        if not self._editable(mid):
            self.win.status_label.setText("this mark can no longer be changed")
            return
        self.open_store().delete_mark(mid)
        item = self.items.pop(mid)
        item.getViewBox().removeItem(item) if item.getViewBox() is not None else None
        self.marks.pop(mid)
        self._fill_mark_list()

    def _confidence_changed(self, value):
        it = self.mark_list.currentItem()
        if it is None:
            return
        mid = it.data(QtCore.Qt.ItemDataRole.UserRole)
        if not self._editable(mid) or self.marks[mid].confidence == value:
            return
        mark = self.marks[mid]
        self.open_store().move_mark(mid, mark.x_mm, mark.y_mm, confidence=int(value))
        self.marks[mid] = type(mark)(mark.modality, mark.x_mm, mark.y_mm, mark.z_mm, int(value))
        self.items[mid].setLabel(str(value), {"color": PENDING, "offset": (8, -8)})
        self._fill_mark_list(select=mid)

    def _select(self, mid):
        self._fill_mark_list(select=mid)

    def _mark_selected(self, cur, _prev=None):
        if cur is None:
            return
        mid = cur.data(QtCore.Qt.ItemDataRole.UserRole)
        mark = self.marks.get(mid)
        if mark is None:
            return
        self.confidence.blockSignals(True)
        self.confidence.setValue(mark.confidence)
        self.confidence.blockSignals(False)
        if mark.modality == "tomo" and self.win.rec is not None and self.stage in ("tomo", "feedback"):
            self.win.set_index(int(np.argmin(np.abs(self.win.rec.heights_mm - mark.z_mm))))

    def _fill_mark_list(self, select=None):
        self.mark_list.blockSignals(True)
        self.mark_list.clear()
        for n, (mid, m) in enumerate(sorted(self.marks.items()), start=1):
            where = "film" if m.modality == "film" else f"z {m.z_mm:.0f}"
            it = QtWidgets.QListWidgetItem(f"{n}. {where} ({m.x_mm:.0f}, {m.y_mm:.0f}) mm, conf. {m.confidence}")
            it.setData(QtCore.Qt.ItemDataRole.UserRole, mid)
            self.mark_list.addItem(it)
            if mid == select:
                self.mark_list.setCurrentItem(it)
        self.mark_list.blockSignals(False)

    def _clear_marks(self):
        for item in self.items.values():
            vb = item.getViewBox()
            if vb is not None:
                vb.removeItem(item)
        self.items.clear()
        self.marks.clear()
        self._fill_mark_list()

    def on_refresh(self):
        """After the viewer shows a slice: the marks of this slice, and in feedback the findings."""
        if not self.active or self.study is None:
            return
        w = self.win
        h = w.current_height()
        rec = w.rec
        half = max(rec.thickness_mm, float(np.diff(rec.heights_mm[:2])[0]) if len(rec.heights_mm) > 1 else 1.0
                   ) / 2 + 1e-6 if rec is not None else 0.0
        for mid, m in self.marks.items():
            if m.modality == "tomo":
                self.items[mid].setVisible(h is not None and abs(m.z_mm - h) <= half)
        if self.stage != "feedback":
            return
        k = self._film_scale()
        film, sl = [], []
        targets, sid_mm, _ = study_targets(self.study)
        for t in targets:
            x, y, z = t.centre_mm
            mag = sid_mm / (sid_mm - z)
            film.append((x * mag * k, y * mag * k, t.size_mm * mag * k, t.name.split(",")[0]))
            if h is not None and abs(z - h) <= t.size_mm / 2 + half:
                sl.append((x, y, t.size_mm, t.name.split(",")[0]))
        w.film_pane.set_findings(film)
        w.slice_pane.set_findings(sl)

    # -- stage display -------------------------------------------------------------------------------------
    def _update_clock(self):
        if self.stage in ("film", "tomo", "tomo_wait"):
            s = int(self._clock.elapsed() / 1000)
            what = "film" if self.stage == "film" else "slices"
            self.clock_label.setText(f"Reading the {what}: {s // 60}:{s % 60:02d}")

    def _show_stage(self):
        st = self.stage
        texts = {
            "loading": "Preparing the case...",
            "film": "Read the plain film. Click on it to mark a suspected finding (drag a mark to move it); set "
                    "the confidence first or for the selected mark. Then read the slices.",
            "tomo_wait": "The film reading is locked; the slices are being reconstructed...",
            "tomo": "Read the volume DR slices (scroll with the wheel or the arrow keys). Click on a slice to mark "
                    "a finding at that slice's height. Submit when you are done.",
            "feedback": "Green: a hit. Red: a false positive. The findings are drawn; click one in the list to go "
                        "to the slice where it is sharpest.",
            "done": "Session complete.",
        }
        self.instructions.setText(texts.get(st, ""))
        self.slices_button.setVisible(st in ("film", "tomo_wait", "loading"))
        self.slices_button.setEnabled(st == "film")
        self.slices_button.setText("Read the slices" if st != "tomo_wait" else "Reconstructing the slices...")
        self.submit_button.setVisible(st == "tomo")
        self.feedback_box.setVisible(st == "feedback")
        self.findings_list.setVisible(st == "feedback")
        self.next_button.setVisible(st == "feedback")
        self.export_button.setVisible(st == "feedback")
        self.results_button.setVisible(st in ("feedback", "done"))
        self.delete_button.setEnabled(st in ("film", "tomo"))
        if st in ("film", "tomo", "tomo_wait"):
            self._update_clock()
        elif st == "done":
            self.clock_label.setText("")
            self.header.setText(f"<b>{self.trainee}</b>: session {self.session_id} complete")

    def show_results(self):
        trainee = self.trainee
        if trainee is None:  # from the menu, before anyone signed in here
            trainee, ok = QtWidgets.QInputDialog.getText(self.win, "volumedr - reading results", "Trainee")
            if not ok or not trainee.strip():
                return
        try:
            self.results_dialog = ResultsDialog(self.win, self.open_store(), trainee)
        except VolumedrError as exc:
            self.win.show_error(str(exc))
            return
        self.results_dialog.setModal(False)
        self.results_dialog.show()
