"""One image pane: a pyqtgraph view in physical millimetres with overlays."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

TOOLS = ("pan", "wl", "roi", "ruler", "focus")


class SliceViewBox(pg.ViewBox):
    """ViewBox where the wheel scrolls slices (Ctrl+wheel zooms) and W/L mode drags window/level."""

    def __init__(self, pane):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.pane = pane

    def wheelEvent(self, ev, axis=None):
        mods = ev.modifiers()
        if mods & QtCore.Qt.KeyboardModifier.ControlModifier or self.pane.on_wheel is None:
            return super().wheelEvent(ev, axis)
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        self.pane.on_wheel(1 if delta > 0 else -1)
        ev.accept()

    def mouseDragEvent(self, ev, axis=None):
        if self.pane.tool == "wl" and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            d = ev.pos() - ev.lastPos()
            self.pane.drag_window_level(d.x(), d.y())
            return
        if self.pane.tool in ("roi", "ruler") and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            p0 = self.mapSceneToView(ev.buttonDownScenePos())
            p1 = self.mapSceneToView(ev.scenePos())
            self.pane.draw_tool(p0, p1, finished=ev.isFinish())
            return
        super().mouseDragEvent(ev, axis)


class ImagePane(QtWidgets.QFrame):
    """A titled image view in mm with W/L, cursor, findings overlay, ROI and ruler.

    ``set_image(img, spacing_mm=(row, col), origin_mm=(x, y))`` places pixel
    (r, c) at x = origin_x + c * spacing_col, y = origin_y + r * spacing_row.
    """

    window_changed = QtCore.Signal()

    def __init__(self, title: str, units: str = "", parent=None):
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.title = QtWidgets.QLabel(f"<b>{title}</b>")
        self.info = QtWidgets.QLabel("")
        self.info.setObjectName("paneInfo")
        self.footer = QtWidgets.QLabel("")
        self.footer.setObjectName("paneFooter")
        self.units = units
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.vb = SliceViewBox(self)
        self.glw.addItem(self.vb)
        self.image_item = pg.ImageItem()
        self.vb.addItem(self.image_item)
        self.veil_item = pg.ImageItem()  # greys out the part of the field few views see
        self.veil_item.setZValue(5)
        self.vb.addItem(self.veil_item)
        self.veiled = None
        self.cursor = pg.ScatterPlotItem(size=16, symbol="+", pen=pg.mkPen("#ffd400", width=1.5), brush=None)
        self.vb.addItem(self.cursor)
        self.findings = pg.ScatterPlotItem(pen=pg.mkPen("#ff3b3b", width=1.5), brush=None, symbol="o", pxMode=False)
        self.vb.addItem(self.findings)
        self.finding_labels: list[pg.TextItem] = []
        self.roi_item = None
        self.ruler_item = None
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(1)
        head = QtWidgets.QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.info)
        lay.addLayout(head)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.footer)
        # the patient's sides at the image's left and right edges (radiological convention: set_orientation)
        self.side_labels = []
        for _ in range(2):
            lab = QtWidgets.QLabel("", self)
            lab.setObjectName("paneSide")
            lab.setStyleSheet("color: #ffd400; font-weight: bold; background: transparent;")
            lab.hide()
            self.side_labels.append(lab)
        self.image = None
        self.spacing_mm = (1.0, 1.0)
        self.origin_mm = (0.0, 0.0)
        self.levels = (0.0, 1.0)
        self.tool = "pan"
        self.on_wheel = None
        self._first = True

    # -- orientation ------------------------------------------------------------
    def set_orientation(self, mirror_x: bool, left: str, right: str) -> None:
        """Show +x mirrored (``mirror_x``) and name the patient sides at the image's left and right edges."""
        self.vb.invertX(bool(mirror_x))
        for lab, text in zip(self.side_labels, (left, right)):
            lab.setText(text)
            lab.setVisible(bool(text))
            lab.adjustSize()
        self._place_side_labels()

    def mirrored(self) -> bool:
        return bool(self.vb.state["xInverted"])

    def _place_side_labels(self) -> None:
        g = self.glw.geometry()
        left, right = self.side_labels
        left.move(g.left() + 6, g.top() + 4)
        right.move(g.right() - right.width() - 6, g.top() + 4)
        for lab in self.side_labels:
            lab.raise_()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._place_side_labels()

    # -- image ------------------------------------------------------------------
    def set_image(self, img: np.ndarray | None, spacing_mm=(1.0, 1.0), origin_mm=(0.0, 0.0), auto_range=False):
        self.image = img
        if img is None:
            self.image_item.clear()
            return
        self.spacing_mm = (float(spacing_mm[0]), float(spacing_mm[1]))
        self.origin_mm = (float(origin_mm[0]), float(origin_mm[1]))
        self.image_item.setImage(img, levels=self.levels, autoLevels=False, autoDownsample=False)
        py, px = self.spacing_mm
        rect = QtCore.QRectF(self.origin_mm[0] - px / 2, self.origin_mm[1] - py / 2, img.shape[1] * px,
                             img.shape[0] * py)
        self.image_item.setRect(rect)
        if self._first or auto_range:
            self.vb.setRange(rect, padding=0.01)
            self._first = False
        self.update_footer()

    def set_veil(self, mask: np.ndarray | None) -> None:
        """Grey out the pixels where ``mask`` is True (a veil over the image, same grid), or none."""
        self.veiled = mask
        if mask is None or self.image is None or mask.shape != self.image.shape or not mask.any():
            self.veil_item.clear()
            return
        rgba = np.zeros(mask.shape + (4,), np.uint8)
        # a blue tint: it shifts every grey level by at least 25 in one channel (a grey veil vanished over
        # mid-grey anatomy), and lets the anatomy show through
        rgba[mask] = (40, 40, 150, 120)
        self.veil_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.veil_item.setRect(self.image_item.mapRectToParent(self.image_item.boundingRect()))

    def set_levels(self, lo: float, hi: float) -> None:
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            hi = lo + 1e-6
        self.levels = (float(lo), float(hi))
        self.image_item.setLevels(self.levels)
        self.update_footer()
        self.window_changed.emit()

    def window_level(self) -> tuple[float, float]:
        lo, hi = self.levels
        return hi - lo, (hi + lo) / 2

    def drag_window_level(self, dx: float, dy: float) -> None:
        w, c = self.window_level()
        w = max(w * (1.0 + dx * 0.01), 1e-6)
        c = c - dy * 0.005 * w
        self.set_levels(c - w / 2, c + w / 2)

    # -- coordinates ------------------------------------------------------------
    def pixel_of(self, x: float, y: float) -> tuple[float, float]:
        return ((y - self.origin_mm[1]) / self.spacing_mm[0], (x - self.origin_mm[0]) / self.spacing_mm[1])

    def value_at(self, x: float, y: float):
        if self.image is None:
            return None
        r, c = self.pixel_of(x, y)
        r, c = int(round(r)), int(round(c))
        if 0 <= r < self.image.shape[0] and 0 <= c < self.image.shape[1]:
            return float(self.image[r, c])
        return None

    def set_cursor(self, x: float | None, y: float | None) -> None:
        if x is None:
            self.cursor.setData([], [])
        else:
            self.cursor.setData([x], [y])

    # -- findings overlay -------------------------------------------------------
    def set_findings(self, items) -> None:
        """items: list of (x, y, diameter_mm, label)."""
        for t in self.finding_labels:
            self.vb.removeItem(t)
        self.finding_labels = []
        if not items:
            self.findings.setData([], [])
            return
        xs = [i[0] for i in items]
        ys = [i[1] for i in items]
        sizes = [max(6.0, 2.2 * i[2]) for i in items]
        self.findings.setData(xs, ys, size=sizes)
        for x, y, d, label in items:
            t = pg.TextItem(label, color="#ff6b6b", anchor=(0, 1))
            t.setPos(x + d, y - d)
            self.vb.addItem(t)
            self.finding_labels.append(t)

    # -- tools -------------------------------------------------------------------
    def draw_tool(self, p0: QtCore.QPointF, p1: QtCore.QPointF, finished: bool) -> None:
        if self.tool == "roi":
            x0, x1 = sorted((p0.x(), p1.x()))
            y0, y1 = sorted((p0.y(), p1.y()))
            self.set_roi(x0, y0, max(x1 - x0, 1e-3), max(y1 - y0, 1e-3))
        else:
            self.set_ruler((p0.x(), p0.y()), (p1.x(), p1.y()))

    def set_roi(self, x: float, y: float, w: float, h: float) -> None:
        if self.roi_item is None:
            self.roi_item = pg.RectROI([x, y], [w, h], pen=pg.mkPen("#3bd5ff", width=1.5))
            self.vb.addItem(self.roi_item)
            self.roi_item.sigRegionChanged.connect(self.update_footer)
        else:
            self.roi_item.setPos([x, y], update=False)
            self.roi_item.setSize([w, h])
        self.update_footer()

    def roi_statistics(self):
        """(mean, sd, area_mm2) inside the ROI rectangle, or None."""
        if self.roi_item is None or self.image is None:
            return None
        pos, size = self.roi_item.pos(), self.roi_item.size()
        r0, c0 = self.pixel_of(pos.x(), pos.y())
        r1, c1 = self.pixel_of(pos.x() + size.x(), pos.y() + size.y())
        r0, r1 = max(0, int(np.ceil(r0))), min(self.image.shape[0], int(np.floor(r1)) + 1)
        c0, c1 = max(0, int(np.ceil(c0))), min(self.image.shape[1], int(np.floor(c1)) + 1)
        if r1 <= r0 or c1 <= c0:
            return None
        v = self.image[r0:r1, c0:c1]
        return float(v.mean()), float(v.std()), float(v.size * self.spacing_mm[0] * self.spacing_mm[1])

    def _roi_text(self) -> str:
        parts = []
        st = self.roi_statistics()
        if st is not None:
            m, s, a = st
            fmt = "{:.1f}" if self.units == "HU" else "{:.4g}"
            parts.append(f"   ROI mean {fmt.format(m)} sd {fmt.format(s)} {self.units} area {a:.0f} mm\u00b2")
        if self.ruler_item is not None:
            parts.append(f"   ruler {self.ruler_length_mm():.1f} mm")
        return "".join(parts)

    def update_footer(self) -> None:
        """W/L values, and the ROI statistics and ruler length when present."""
        w, c = self.window_level()
        fmt = "{:.0f}" if abs(w) >= 20 else "{:.3g}"
        self.footer.setText(f"W {fmt.format(w)}  L {fmt.format(c)} {self.units}".rstrip() + self._roi_text())

    def set_ruler(self, a, b) -> None:
        if self.ruler_item is None:
            self.ruler_item = pg.LineSegmentROI([a, b], pen=pg.mkPen("#7CFC00", width=1.5))
            self.vb.addItem(self.ruler_item)
            self.ruler_item.sigRegionChanged.connect(self.update_footer)
        else:
            h = self.ruler_item.getHandles()
            h[0].setPos(*a)
            h[1].setPos(*b)
        self.update_footer()

    def ruler_length_mm(self) -> float:
        if self.ruler_item is None:
            return 0.0
        pts = [self.ruler_item.mapToParent(h.pos()) for h in self.ruler_item.getHandles()]
        return float(np.hypot(pts[1].x() - pts[0].x(), pts[1].y() - pts[0].y()))

    def clear_tools(self) -> None:
        for item in (self.roi_item, self.ruler_item):
            if item is not None:
                self.vb.removeItem(item)
        self.roi_item = self.ruler_item = None
        self.update_footer()


def percentile_levels(img: np.ndarray, lo_pct: float, hi_pct: float) -> tuple[float, float]:
    sub = img[:: max(1, img.shape[0] // 256), :: max(1, img.shape[1] // 256)]
    finite = sub[np.isfinite(sub)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [lo_pct, hi_pct])
    return float(lo), float(hi if hi > lo else lo + 1e-6)


__all__ = ["ImagePane", "TOOLS", "percentile_levels"]
