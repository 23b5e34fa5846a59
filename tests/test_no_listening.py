"""No volumedr command, and not the window, opens a socket that waits for connections unless asked to.

Each command runs as its own process; while it runs, its open sockets (/proc/PID/fd) are matched against
the kernel's tables of listening TCP sockets, bound unconnected UDP sockets and listening Unix sockets
(/proc/net/*), every 10 ms.  (The Orthanc that the PACS tests start is the tests' server, not ours.)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from volumedr.geometry import Detector, Sweep
from volumedr.io.study_file import write_study
from volumedr.simulate import simulate_study

EXE = Path(sys.executable).parent / "volumedr"
pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def _table(name: str, listening) -> set[str]:
    out = set()
    try:
        lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if listening(f):
            out.add(f[9] if name.startswith(("tcp", "udp")) else f[6])
    return out


def listening_inodes() -> dict[str, str]:
    """inode -> kind, for every socket on this machine that waits for peers."""
    tcp = lambda f: f[3] == "0A"  # noqa: E731  (LISTEN)
    udp = lambda f: f[2].split(":")[-1] == "0000" and f[1].split(":")[-1] != "0000"  # noqa: E731  bound, no peer
    unix = lambda f: int(f[3], 16) & 0x10000 != 0  # noqa: E731  (__SO_ACCEPTCON)
    found = {}
    for name, pred in (("tcp", tcp), ("tcp6", tcp), ("udp", udp), ("udp6", udp), ("unix", unix)):
        for inode in _table(name, pred):
            found[inode] = name
    return found


def socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def listening_sockets_of(argv, env=None, timeout_s=300) -> tuple[int, set[str], str]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[str] = set()
    t0 = time.monotonic()
    while proc.poll() is None:
        mine = socket_inodes(proc.pid)
        if mine:
            table = listening_inodes()
            seen |= {f"{table[i]} socket {i}" for i in mine if i in table}
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            pytest.fail(f"{argv} did not finish in {timeout_s} s")
        time.sleep(0.01)
    return proc.returncode, seen, proc.stdout.read()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800, pivot_height_mm=100)
    s = simulate_study("chest", sweep=sweep, detector=Detector().binned(16), rng=2, ct=False)
    p = tmp_path_factory.mktemp("listen") / "s.h5"
    write_study(p, s)
    return p


def test_the_checker_sees_a_listening_socket(tmp_path):
    """The check itself can fail: a process that listens is caught."""
    code = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); time.sleep(1)"
    rc, seen, _ = listening_sockets_of([sys.executable, "-c", code])
    assert rc == 0 and any(k.startswith("tcp") for k in seen), seen


def test_no_command_listens(study, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    commands = [
        ["cases"],
        ["simulate", "chest", "-o", str(out / "sim.h5"), "--bin", "16", "--projections", "25", "--no-ct"],
        ["info", str(study)],
        ["reconstruct", str(study), "--spacing", "10", "-o", str(out / "rec.h5")],
        ["export-dicom", str(out / "rec.h5"), str(out / "dicom")],
        ["import-dicom", str(out / "dicom"), "-o", str(out / "back.h5")],
        ["echo", "--to", "ORTHANC@127.0.0.1:9", "--timeout", "2"],      # nobody there: fails, but as a client
        ["send", str(out / "rec.h5"), "--to", "ORTHANC@127.0.0.1:9", "--timeout", "2"],
        ["find", "--on", "ORTHANC@127.0.0.1:9", "--timeout", "2"],
    ]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for args in commands:
        rc, seen, output = listening_sockets_of([str(EXE), *args], env=env)
        assert rc in (0, 2), (args, output)
        assert not seen, f"volumedr {' '.join(args)} opened listening sockets: {seen}"


def test_the_window_does_not_listen(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    rc, seen, output = listening_sockets_of([str(EXE), "gui", "--case", "chest", "--detector", "256 x 256 (quick look)",
                                             "--screenshot", str(tmp_path / "w.png")], env=env)
    assert rc == 0, output
    assert not seen, f"the window opened listening sockets: {seen}"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_the_window_on_a_desktop_does_not_listen(tmp_path):
    from gui.test_desktop import _desktop_env  # the same X server set-up as the desktop test

    n = 151
    while Path(f"/tmp/.X11-unix/X{n}").exists():
        n += 1
    x = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while not Path(f"/tmp/.X11-unix/X{n}").exists() and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        rc, seen, output = listening_sockets_of([str(EXE), "gui", "--case", "chest", "--detector",
                                                 "256 x 256 (quick look)", "--screenshot", str(tmp_path / "w.png")],
                                                env=_desktop_env(f":{n}"))
    finally:
        x.terminate()
        x.wait(10)
    assert rc == 0, output
    assert not seen, f"the window on X11 opened listening sockets: {seen}"
