"""Before Qt starts on a desktop: are the system libraries its X11 (xcb) platform needs there?

Without them Qt aborts the process with a message about plugins ("xcb-cursor0 or
libxcb-cursor0 is needed to load the Qt xcb platform plugin").  This module asks the
dynamic loader first, without importing Qt, and names the Debian packages to install,
so the user gets one line instead of an abort.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# libraries Qt's xcb plugin links or opens at run time -> the Debian (and Ubuntu) package that ships each
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0", "libxcb-util.so.1": "libxcb-util1", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1", "libxcb-glx.so.0": "libxcb-glx0", "libSM.so.6": "libsm6", "libICE.so.6": "libice6",
    "libxkbcommon.so.0": "libxkbcommon0", "libX11.so.6": "libx11-6", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0", "libGLX.so.0": "libglx0", "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0", "libxcb-xinput.so.0": "libxcb-xinput0",
}
# opened with dlopen by the plugin, so ldd does not list it
DLOPENED = ("libxcb-cursor.so.0",)


def wants_xcb() -> bool:
    """Whether Qt will pick its X11 platform (Linux, no other platform forced, an X display)."""
    if not sys.platform.startswith("linux"):
        return False
    forced = os.environ.get("QT_QPA_PLATFORM", "")
    if forced:
        return forced.split(":")[0].split(";")[0] == "xcb"
    return bool(os.environ.get("DISPLAY")) and not os.environ.get("WAYLAND_DISPLAY")


def _qt_dir() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "Qt"


def missing_libraries(ldd_output: str, loadable=None) -> list[str]:
    """Sonames that ``ldd`` reports as not found, plus those the plugin opens itself that do not load."""
    loadable = loadable or _loads
    missing = re.findall(r"^\s*(\S+)\s*=>\s*not found", ldd_output, flags=re.M)
    missing += [lib for lib in DLOPENED if lib not in missing and not loadable(lib)]
    return sorted(set(missing))


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def xcb_problem() -> str | None:
    """None when Qt's xcb platform can load here; else one line naming what to install."""
    qt = _qt_dir()
    ldd = shutil.which("ldd")
    if qt is None or ldd is None:
        return None  # nothing to ask; let Qt try
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    files = [f for f in files if f.exists()]
    if not files:
        return None
    try:
        out = subprocess.run([ldd, *map(str, files)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    missing = missing_libraries(out)
    if not missing:
        return None
    pkgs = " ".join(DEBIAN_PACKAGES.get(m, m) for m in missing)
    return (f"the desktop (Qt's X11 platform) needs system libraries that are missing: {' '.join(missing)}; "
            f"install them (Debian/Ubuntu: apt-get install {pkgs}), or run without a display: "
            "volumedr gui --screenshot view.png")
