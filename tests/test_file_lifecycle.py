"""Study files over their life: re-reconstructions that do not grow the file, kills that leave the input
as it was, temporaries a user recognises and that the next command cleans up."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from volumedr.cli.main import main
from volumedr.geometry import Detector, Sweep
from volumedr.io.study_file import read_study, write_study
from volumedr.io.tempfiles import MARK, remove_stale, stale_temporaries, temp_name
from volumedr.simulate import simulate_study

EXE = Path(sys.executable).parent / "volumedr"


@pytest.fixture(scope="module")
def study_path(tmp_path_factory):
    """A 60-view study of 256 x 256 (about 16 MB of projections) without slices."""
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=60, source_to_image_mm=1800, pivot_height_mm=100,
                  direction="y")
    s = simulate_study("chest", sweep=sweep, detector=Detector().binned(8), rng=11, ct=False)
    p = tmp_path_factory.mktemp("life") / "chest.h5"
    write_study(p, s)
    return p


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def test_re_reconstructing_does_not_grow_the_file(study_path, tmp_path):
    p = _copy(study_path, tmp_path / "s.h5")
    assert main(["reconstruct", str(p), "--spacing", "4"]) == 0
    after_one = p.stat().st_size
    sizes = []
    for spacing in ("4", "5", "4", "3", "4", "4"):
        assert main(["reconstruct", str(p), "--spacing", spacing]) == 0
        sizes.append(p.stat().st_size)
    assert sizes[-1] <= 1.10 * after_one, (after_one, sizes)
    assert max(sizes) <= 1.40 * after_one  # the 3 mm one holds a third more slices, no more
    s = read_study(p)
    assert len(s.reconstruction.heights_mm) > 10 and s.reconstruction.method == "fbp"
    assert not list(tmp_path.glob(f"*{MARK}*"))


def test_a_bloated_file_from_an_older_volumedr_is_compacted(study_path, tmp_path):
    """volumedr <= 0.1 replaced /reconstruction inside the file, leaving the old slices' space unused."""
    p = _copy(study_path, tmp_path / "old.h5")
    for _ in range(5):  # what five in-place re-reconstructions did, each its own session
        with h5py.File(p, "r+") as f:
            g = f.create_group("reconstruction.__partial__")
            g["slices"] = np.zeros((60, 256, 256), np.float32) + 1
            g.attrs.update(heights_mm=np.arange(60.0) + 20, pixel_spacing_mm=[1.0, 1.0], origin_mm=[-128.0, -128.0],
                           thickness_mm=1.0, method="fbp")
            if "reconstruction" in f:
                del f["reconstruction"]
            f.move("reconstruction.__partial__", "reconstruction")
    bloated = p.stat().st_size
    assert bloated > 3 * study_path.stat().st_size
    assert main(["reconstruct", str(p), "--spacing", "4"]) == 0
    clean = _copy(study_path, tmp_path / "clean.h5")
    assert main(["reconstruct", str(clean), "--spacing", "4"]) == 0
    assert p.stat().st_size <= 1.10 * clean.stat().st_size < bloated


def _wait_for(pred, timeout_s=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    return None


def test_a_killed_reconstruction_leaves_the_study_as_it_was_and_the_next_run_cleans_up(study_path, tmp_path):
    p = _copy(study_path, tmp_path / "s.h5")
    assert main(["reconstruct", str(p), "--spacing", "10"]) == 0
    before = p.read_bytes()
    proc = subprocess.Popen([str(EXE), "reconstruct", str(p), "--spacing", "0.5", "--thickness", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill it while it streams slices into its temporary (the temporary exists and is growing)
        tmp = _wait_for(lambda: [q for q in tmp_path.iterdir() if MARK in q.name and q.stat().st_size > 4 << 20])
        assert tmp, "the reconstruction never wrote its temporary"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert p.read_bytes() == before  # the original was never opened for writing
    left = [q for q in tmp_path.iterdir() if MARK in q.name]
    assert len(left) == 1 and left[0].name.startswith("s.h5.") and left[0].name.endswith(".tmp")
    assert str(proc.pid) in left[0].name
    assert stale_temporaries(tmp_path) == left
    assert len(read_study(p).reconstruction.heights_mm) > 5  # still readable, old slices intact
    # the next command that writes there removes it (its process is gone)
    assert main(["reconstruct", str(p), "--spacing", "10"]) == 0
    assert not [q for q in tmp_path.iterdir() if MARK in q.name]


def test_a_killed_export_leaves_a_named_folder_that_the_next_export_removes(study_path, tmp_path):
    p = _copy(study_path, tmp_path / "s.h5")
    proc = subprocess.Popen([str(EXE), "export-dicom", str(p), str(tmp_path / "dicom"), "--series", "projections"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tmp = _wait_for(lambda: [q for q in tmp_path.iterdir() if MARK in q.name and q.is_dir()
                                 and len(list(q.rglob("*.dcm"))) >= 3])
        assert tmp, "the export never wrote into its temporary folder"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    if proc.returncode == 0:
        pytest.skip("the export finished before it could be killed")
    left = [q for q in tmp_path.iterdir() if MARK in q.name]
    assert len(left) == 1 and left[0].name.startswith("dicom.") and not (tmp_path / "dicom").exists()
    assert main(["export-dicom", str(p), str(tmp_path / "film-only"), "--series", "film"]) == 0
    assert not [q for q in tmp_path.iterdir() if MARK in q.name]
    assert (tmp_path / "film-only").is_dir()


def test_only_stale_temporaries_of_this_host_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "x.h5"
    mine = tmp_path / temp_name(target)                      # this (living) process
    mine.write_text("in progress")
    stale = tmp_path / mine.name.replace(f".{os.getpid()}.", f".{dead.pid}.")
    stale.write_text("left by a killed run")
    other_host = tmp_path / f"x.h5.{MARK}.someotherhost.{dead.pid}.0123abcd.tmp"
    other_host.write_text("a run on another machine sharing this folder")
    not_ours = tmp_path / ".x.h5.abc123.tmp"
    not_ours.write_text("someone else's")
    stale_dir = tmp_path / stale.name.replace("x.h5", "dicom")
    stale_dir.mkdir()
    (stale_dir / "IM0001.dcm").write_bytes(b"partial")
    assert sorted(remove_stale(tmp_path)) == sorted([stale, stale_dir])
    assert mine.exists() and other_host.exists() and not_ours.exists()
