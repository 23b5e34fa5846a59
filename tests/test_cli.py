import subprocess
import sys

import h5py
import numpy as np
import pytest

from helpers import write_minimal_study
from volumedr.cli.main import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "volumedr.cli.main", *args], capture_output=True, text=True)


def test_cases_lists_the_chest(capsys):
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    assert "chest" in out
    # where each case's anatomy comes from
    chest = [ln for ln in out.splitlines() if ln.startswith("chest ")][0]
    assert chest.endswith("[anatomy: CT: TCIA CPTAC-PDA, subject C3N-00249]")  # the default chest is real anatomy
    assert [ln for ln in out.splitlines() if ln.startswith("chest_phantom ")][0].endswith("[anatomy: analytic]")
    assert [ln for ln in out.splitlines() if ln.startswith("wrist ")][0].endswith("[anatomy: analytic]")


def test_simulate_then_reconstruct_end_to_end(tmp_path, capsys):
    out = tmp_path / "chest.h5"
    assert main(["simulate", "chest", "-o", str(out), "--bin", "16", "--seed", "3", "--projections", "25",
                 "--ct-voxel", "6"]) == 0
    line = capsys.readouterr().out
    assert "25 views of 128 x 128" in line and "mSv" in line
    assert main(["reconstruct", str(out), "--spacing", "5", "--range", "20:240"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("FBP: 45 slices")
    with h5py.File(out) as f:
        # the study says where its anatomy came from
        assert f["case"].attrs["anatomy_source"] == "CT: TCIA CPTAC-PDA, subject C3N-00249"
        assert f["reconstruction/slices"].shape[0] == 45
        assert np.allclose(f["reconstruction"].attrs["heights_mm"], np.arange(20, 241, 5))
        assert f["reconstruction"].attrs["method"] == "fbp"
    copy = tmp_path / "copy.h5"
    assert main(["reconstruct", str(out), "--method", "saa", "--spacing", "10", "--thickness", "20", "-o", str(copy)]) == 0
    with h5py.File(copy) as f, h5py.File(out) as g:
        assert f["reconstruction"].attrs["method"] == "saa" and g["reconstruction"].attrs["method"] == "fbp"
    assert main(["info", str(copy)]) == 0
    info = capsys.readouterr().out
    assert "finding: retrocardiac" in info and "anatomy: CT: TCIA CPTAC-PDA" in info


@pytest.mark.parametrize("args,msg", [
    (["simulate", "nosuch", "-o", "x.h5"], "unknown case 'nosuch'"),
    (["simulate", "chest", "-o", "/nonexistent/dir/x.h5"], "does not exist"),
    (["simulate", "chest", "-o", "x.h5", "--angle", "0"], "sweep angle"),
    (["simulate", "chest", "-o", "x.h5", "--projections", "1"], "number of projections"),
    (["simulate", "chest", "-o", "x.h5", "--kvp", "300"], "kVp"),
    (["reconstruct", "missing.h5"], "no such file"),
])
def test_errors_are_one_clear_line(args, msg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("volumedr: error:") and msg in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "x.h5").exists()


def test_bad_reconstruction_requests_leave_the_file_untouched(tmp_path):
    p = tmp_path / "s.h5"
    write_minimal_study(p, np.zeros((25, 16, 16)),
                        np.stack([np.linspace(-200, 200, 25), np.zeros(25), np.full(25, 1000.0)], 1), (1.0, 1.0))
    before = p.read_bytes()
    for args, msg in [(["--range", "0:50"], "above the detector"), (["--range", "10:1200"], "below the source"),
                      (["--spacing", "0.05"], "at least 0.1 mm"), (["--range", "50:10"], "empty"),
                      (["--range", "abc"], "ZMIN:ZMAX"), (["--thickness", "0"], "thickness"),
                      (["--range", "1:900", "--spacing", "0.1"], "at most")]:
        r = run("reconstruct", str(p), *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    assert p.read_bytes() == before
    ok = run("reconstruct", str(p))  # a minimal file from another program reconstructs with defaults
    assert ok.returncode == 0, ok.stderr
    with h5py.File(p, "a") as f:
        f["projections"][3, 2, 2] = np.nan
    r = run("reconstruct", str(p))
    assert r.returncode == 2 and "NaN" in r.stderr and "view 3" in r.stderr


def test_simulate_reads_the_panel_out_as_the_case_protocol_says(tmp_path, capsys):
    from volumedr.phantoms.case import case_names, load_case
    from volumedr.simulate.acquire import readout_bin_from_case

    bins = {n: readout_bin_from_case(load_case(n)) for n in case_names()}
    assert bins["wrist"] == 1 and all(b == 2 for n, b in bins.items() if n != "wrist"), bins  # 0.42 mm sweeps
    out = tmp_path / "kub.h5"
    assert main(["simulate", "kub", "-o", str(out), "--projections", "25", "--no-ct", "--seed", "1"]) == 0
    assert "25 views of 1024 x 1024" in capsys.readouterr().out  # binned 2 without --bin
    with h5py.File(out) as f:
        assert f["projections"].shape == (25, 1024, 1024)


def test_a_bad_readout_bin_in_a_case_is_named(tmp_path):
    from dataclasses import replace

    from volumedr.errors import ParameterError
    from volumedr.phantoms.case import load_case
    from volumedr.simulate.acquire import readout_bin_from_case

    case = load_case("kub")
    for bad in (0, 2.5, "2", True, 64):
        with pytest.raises(ParameterError, match="readout_bin must be a whole number 1 to 16"):
            readout_bin_from_case(replace(case, protocol={**case.protocol, "readout_bin": bad}))
