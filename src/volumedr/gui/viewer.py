"""The radiologist's viewer: the three linked panes (slices, plain film, CT reference), slice
navigation and cine, window/level presets, the linked cursor and the measuring tools."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from .. import workflow as wf
from ..errors import GeometryError
from ..geometry.patient import PatientFrame
from ..study import Study
from .pane import ImagePane, percentile_levels
from .widgets import CT_PRESETS, TOMO_PRESETS


class ViewerMixin:
    """The panes, navigation, cine, W/L and tools of the main window.

    Mixed into :class:`~volumedr.gui.main_window.MainWindow`, whose state (``self.study``,
    ``self.rec``, the panes and controls) it shares."""

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

    def set_study(self, study: Study):
        self.study = study
        self.rec = study.reconstruction
        try:  # radiological convention: the patient's right on the viewer's left (AP images mirrored)
            sides = PatientFrame(study.metadata.get("patient_axes") or "LFP").display_sides()
        except GeometryError:
            sides = (False, "", "")
        for pane in (self.slice_pane, self.film_pane, self.ct_pane):
            pane.set_orientation(*sides)
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
        seen = rec.well_seen(self.index)
        self.slice_pane.set_veil(None if seen is None else ~seen)  # fewer than half of the views: not to be trusted
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
        reading = getattr(self, "reading", None)
        if reading is not None:
            reading.on_refresh()  # the reading marks of this slice

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
