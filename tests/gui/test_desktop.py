"""The workstation as a user starts it on a desktop: Qt's real X11 (xcb) platform under Xvfb, not offscreen.

The window is started the way the README's run command starts it (``volumedr gui --case chest``), on
an X server of its own (Debian's xvfb, ``-nolisten tcp``), and the X screen itself is captured with
``xwd -root`` (x11-apps): what a person would see, not what Qt renders into a buffer for itself.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from volumedr.gui.platform_check import DEBIAN_PACKAGES, missing_libraries
from volumedr.io.png import write_png
from xwd import read_xwd

XVFB, XWD, XWININFO = shutil.which("Xvfb"), shutil.which("xwd"), shutil.which("xwininfo")
EXE = Path(sys.executable).parent / "volumedr"
needs_x = pytest.mark.skipif(not (XVFB and XWD and XWININFO),
                             reason="Xvfb and x11-apps (Debian xvfb, x11-apps) are not installed")
SHOTS = Path(os.environ.get("VOLUMEDR_SHOTS", "")) if os.environ.get("VOLUMEDR_SHOTS") else None


def _desktop_env(display: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = display
    return env


@pytest.fixture
def xserver():
    for n in range(91, 140):  # a display number nobody uses
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen([XVFB, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if proc.poll() is not None or time.monotonic() - t0 > 20:
            pytest.fail(f"Xvfb {display} did not start")
        time.sleep(0.05)
    yield display
    proc.terminate()
    proc.wait(10)


def dark_column_bands(img: np.ndarray, min_width: int = 100) -> list[tuple[int, int]]:
    """Column ranges where most of the height is near-black: the image panes' backgrounds."""
    grey = img.max(axis=2)
    dark = (grey < 25).mean(axis=0) > 0.35
    bands, start = [], None
    for x, d in enumerate(np.append(dark, False)):
        if d and start is None:
            start = x
        elif not d and start is not None:
            if x - start >= min_width:
                bands.append((start, x))
            start = None
    return bands


@needs_x
def test_the_window_maps_on_a_real_x_server_with_images_in_all_three_panes(xserver, tmp_path):
    log = open(tmp_path / "gui.log", "w+")
    proc = subprocess.Popen([str(EXE), "gui", "--case", "chest", "--detector", "256 x 256 (quick look)", "--verbose"],
                            env=_desktop_env(xserver), stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        while "reconstruction shown" not in (tmp_path / "gui.log").read_text():
            assert proc.poll() is None, f"the window exited (rc {proc.returncode}):\n{(tmp_path / 'gui.log').read_text()}"
            assert time.monotonic() - t0 < 240, "no reconstruction shown within 240 s"
            time.sleep(0.2)
        time.sleep(1.0)  # let the last paint reach the X server
        info = subprocess.run([XWININFO, "-display", xserver, "-name", "volumedr - volume DR workstation"],
                              capture_output=True, text=True, timeout=20).stdout
        assert "Map State: IsViewable" in info, info
        geo = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in info.splitlines()) if v}
        x, y = int(geo["Absolute upper-left X"]), int(geo["Absolute upper-left Y"])
        w, h = int(geo["Width"]), int(geo["Height"])
        dump = subprocess.run([XWD, "-root", "-silent", "-display", xserver], capture_output=True, timeout=30).stdout
        screen = read_xwd(dump)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()
    write_png(tmp_path / "x-screen.png", screen)
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        write_png(SHOTS / "x-screen.png", screen)
    assert screen.shape == (1000, 1600, 3) and screen.std() > 20  # not an empty screen
    win = screen[y:y + h, x:x + w]
    assert w >= 1000 and h >= 600 and win.std() > 20
    bands = dark_column_bands(win)
    assert len(bands) == 3, f"expected the three image panes, found dark bands at {bands}"
    for a, b in bands:
        pane = win[:, a:b].max(axis=2)
        lit = (pane > 60).mean()
        assert 0.05 < lit < 0.9, f"pane at x {a}-{b} looks blank or flat ({lit:.0%} lit)"
        assert len(np.unique(pane[pane > 60])) > 40, f"pane at x {a}-{b} shows no grey-scale image"


def test_missing_xcb_libraries_are_named_in_one_line_instead_of_a_qt_abort(tmp_path):
    """Where the dynamic loader cannot find Qt's X11 libraries, one line says which packages to install."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ldd").write_text("#!/bin/sh\necho '\tlibxcb-icccm.so.4 => not found'\n"
                              "echo '\tlibxcb-keysyms.so.1 => not found'\necho '\tlibc.so.6 => /lib/libc.so.6'\n")
    (fake / "ldd").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=":0", PATH=f"{fake}:{env.get('PATH', '')}")
    r = subprocess.run([str(EXE), "gui", "--case", "chest"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("volumedr: error:"), r.stderr
    assert "libxcb-icccm4" in lines[0] and "libxcb-keysyms1" in lines[0] and "apt-get install" in lines[0]
    assert "Aborted" not in r.stderr and "qt.qpa" not in r.stderr


def test_ldd_output_and_dlopened_libraries_map_to_packages():
    out = "\tlibxcb-image.so.0 => not found\n\tlibxcb.so.1 => /usr/lib/x86_64-linux-gnu/libxcb.so.1 (0x1)\n"
    assert missing_libraries(out, loadable=lambda lib: True) == ["libxcb-image.so.0"]
    assert missing_libraries(out, loadable=lambda lib: False) == ["libxcb-cursor.so.0", "libxcb-image.so.0"]
    assert DEBIAN_PACKAGES["libxcb-cursor.so.0"] == "libxcb-cursor0"
