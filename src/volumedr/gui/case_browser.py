"""The case browser: the bundled cases (loaded in the background), the case tab with history and
teaching notes, the findings list and the answer overlay."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from ..errors import VolumedrError
from ..phantoms.case import case_names, load_case
from ..simulate import settings_from_case, sweep_from_case
from ..reconstruct import ReconSettings


class CaseBrowserMixin:
    """The case dock: choosing a case, its notes and findings.

    Mixed into :class:`~volumedr.gui.main_window.MainWindow`, whose state (``self.study``,
    ``self.rec``, the panes and controls) it shares."""

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
        self.kernel.setValue(float(r.get("apodisation_cutoff", ReconSettings().apodisation_cutoff)))
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
        self.notes.setHtml(f"<p><b>History.</b> {hist}</p><p><b>Teaching notes.</b> {teach}</p>"
                           f"<p><b>Anatomy.</b> {case.anatomy_source}</p>")
        self.update_dose()

    def _goto_finding(self, item):
        f = item.data(QtCore.Qt.ItemDataRole.UserRole)
        if self.rec is None or not f:
            return
        self.set_index(int(np.argmin(np.abs(self.rec.heights_mm - f["centre_mm"][2]))))
