"""Code contracts: Qt stays in volumedr.gui; h5py stays in volumedr.io; the code lints clean."""
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "volumedr"


def imports_of(pattern):
    rx = re.compile(rf"^\s*(from|import)\s+({pattern})\b", re.M)
    return sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if rx.search(p.read_text(encoding="utf-8")))


def test_only_the_gui_package_imports_qt():
    offenders = [p for p in imports_of("PySide6|pyqtgraph|PyQt5|PyQt6|shiboken6") if not p.startswith("gui/")]
    assert offenders == []


def test_only_the_io_package_imports_h5py_and_pydicom():
    offenders = [p for p in imports_of("h5py|pydicom|pynetdicom") if not p.startswith("io/")]
    assert offenders == []


def test_pyflakes_is_clean():
    root = SRC.parents[1]
    r = subprocess.run([sys.executable, "-m", "pyflakes", str(root / "src"), str(root / "tests"),
                        str(root / "benchmarks"), str(root / "tools")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
