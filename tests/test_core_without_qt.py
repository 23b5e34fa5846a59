import subprocess
import sys


def test_core_imports_and_runs_without_qt():
    """Everything but volumedr.gui works with Qt blocked from import."""
    code = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'shiboken6'):
            raise ImportError('Qt is blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
import volumedr.geometry, volumedr.phantoms, volumedr.simulate, volumedr.reconstruct, volumedr.io.study_file
import volumedr.cli.main, volumedr.progress
from volumedr.cli.main import build_parser
build_parser()
from volumedr.geometry import Detector, Sweep
from volumedr.simulate import simulate_study
from volumedr.reconstruct import reconstruct, ReconSettings
s = simulate_study('chest', detector=Detector().binned(32), sweep=Sweep(n_projections=25), rng=0, ct=False)
r = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=20, z_min_mm=20, z_max_mm=200))
assert r.slices.shape[0] == 10 and np.isfinite(r.slices).all()
assert not any(m.split('.')[0] in ('PySide6', 'pyqtgraph') for m in sys.modules)
print('ok')
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
