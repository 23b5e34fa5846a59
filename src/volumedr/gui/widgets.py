"""Small shared pieces of the window: presets and a spin box maker."""
from __future__ import annotations

from PySide6 import QtWidgets

TOMO_PRESETS = {"Default": (0.5, 99.5), "Bone": (40.0, 99.9), "Soft tissue": (1.0, 80.0)}
CT_PRESETS = {"Lung": (-1350.0, 150.0), "Mediastinum": (-160.0, 240.0), "Bone": (-500.0, 1300.0),
              "Fat (-190...-30)": (-190.0, -30.0)}


def spin(lo, hi, val, step=1.0, decimals=1, suffix=""):
    s = QtWidgets.QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(val)
    if suffix:
        s.setSuffix(suffix)
    s.setKeyboardTracking(False)
    return s
