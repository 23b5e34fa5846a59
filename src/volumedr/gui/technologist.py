"""The technologist's panel: acquisition (case protocol, sweep, dose readout) and reconstruction
(method, MAR, SART, slices) controls, and the acquire / reconstruct jobs they start."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from .. import workflow as wf
from ..errors import VolumedrError
from ..geometry import Detector
from ..phantoms.case import case_names
from ..reconstruct import ReconSettings
from ..simulate import settings_from_case, sweep_from_case
from ..study import Study
from .pane import percentile_levels
from .widgets import TOMO_PRESETS, spin as _spin


class TechnologistMixin:
    """The Technologist tab and the acquisition and reconstruction it runs.

    Mixed into :class:`~volumedr.gui.main_window.MainWindow`, whose state (``self.study``,
    ``self.rec``, the panes and controls) it shares."""

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
        self.kernel = _spin(0.05, 2.0, ReconSettings().apodisation_cutoff, 0.1, 2)
        self.kernel.setToolTip("the FBP kernel: where its Hann window reaches zero, as a fraction of Nyquist "
                               "(1 sharp, 0.6 soft for a thick, noisy body part); the case sets it")
        self.thickness = _spin(0.1, 50, 2.0, 0.5, 1, " mm")
        self.spacing = _spin(0.5, 50, 2.0, 0.5, 1, " mm")
        self.zmin = _spin(0.5, 1000, 20, 5, 0, " mm")
        self.zmax = _spin(0.5, 1000, 240, 5, 0, " mm")
        self.mar = QtWidgets.QCheckBox("Metal artefact reduction")
        self.mar.setToolTip("find metal in the projections, reconstruct the tissue without it and put the metal "
                            "back at its own height only (on by default for the arthroplasty cases)")
        g.addRow("Method", self.method)
        g.addRow("", self.mar)
        g.addRow("FBP kernel", self.kernel)
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
                             z_max_mm=float(self.zmax.value()), mar=self.mar.isChecked(),
                             apodisation_cutoff=float(self.kernel.value()), **extra)

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
