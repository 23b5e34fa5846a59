"""Virtual clinical trials: the model observer, the trial engine on real Dask clusters (a LocalCluster and a
scheduler with two worker processes started here on loopback), resume, bad input and the report."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from volumedr.cli.main import main
from volumedr.trials.engine import journal_path, read_results, run_trial
from volumedr.trials.observer import cho_dprime, lg_channels
from volumedr.trials.spec import make_spec

BIN = Path(sys.executable).parent

UNIFORM = """
[case]
name = "{name}"
title = "A uniform block with a bead"
region = "test"
body_part = "CHEST"
patient_axes = "LFP"
field_mm = [120.0, 120.0]
effective_dose_coeff_msv_per_gy_cm2 = 0.1
history = "test object"
teaching = "test object"

[protocol]
kind = "linear"
direction = "y"
total_angle_deg = 30.0
n_projections = 25
source_to_image_mm = {sid}
pivot_height_mm = 40.0
kvp = 70.0
filtration = "2.5Al"
sweep_mas = 4.0
plain_film_mas = 1.0

[reconstruction]
method = "fbp"
range_mm = [10.0, 70.0]
spacing_mm = 2.0
thickness_mm = 2.0

[dose]
film_msv = [0.0001, 1.0]
sweep_msv = [0.0001, 1.0]
reference = "test object"

[[object]]
type = "box"
label = "block"
material = "soft_tissue"
centre_mm = [0.0, 0.0, 40.0]
size_mm = [200.0, 200.0, 70.0]

[[object]]
type = "sphere"
label = "bead"
material = "{material}"
centre_mm = [0.0, 0.0, 40.0]
diameter_mm = 8.0
finding = "bead"

[[finding]]
name = "bead"
centre_mm = [0.0, 0.0, 40.0]
size_mm = 8.0
occult_on_plain_film = true
contrast = "lucent"
description = "an 8 mm bead"
code = "SCT:0"
"""


def uniform_case(folder: Path, material="fat", sid=1000.0, name="uniform") -> str:
    p = folder / f"{name}.toml"
    p.write_text(UNIFORM.format(material=material, sid=sid, name=name), encoding="utf-8")
    return str(p)


def _measures(rows):
    """Rows without their timing, keyed by (run, finding), for comparing runs made in different places."""
    return {(r["run_id"], r["finding"]): {k: v for k, v in r.items() if k != "seconds"} for r in rows}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        for col, v in a[k].items():
            w = b[k][col]
            if isinstance(v, float) and math.isnan(v):
                assert isinstance(w, float) and math.isnan(w), (k, col)
            elif isinstance(v, float):  # the same to rounding (numba's threads may sum in another order)
                assert math.isclose(v, w, rel_tol=1e-9, abs_tol=1e-12), (k, col, v, w)
            else:
                assert v == w, (k, col, v, w)


# -- the observer -------------------------------------------------------------------------------------------
def test_cho_dprime_grows_as_the_square_root_of_dose_in_white_noise_and_is_zero_without_a_signal():
    rng = np.random.default_rng(3)
    size = 25
    ch = lg_channels(size, 8.0)
    y, x = np.mgrid[:size, :size] - 12
    signal = 0.5 * np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    d = []
    for dose in (1.0, 4.0, 16.0):
        sigma = 1.0 / np.sqrt(dose)  # quantum-limited: the noise variance falls as 1/dose
        a = rng.normal(0, sigma, (400, size, size))
        p = rng.normal(0, sigma, (400, size, size))
        d.append(cho_dprime(signal, a, p, ch, np.random.default_rng(1)))
    for (d0, se0), (d1, se1) in zip(d, d[1:]):
        assert d1 / d0 == pytest.approx(2.0, rel=0.2), d
        assert 0 < se0 < 0.25 * d0
    a = rng.normal(0, 1, (400, size, size))
    p = rng.normal(0, 1, (400, size, size))
    d0, se = cho_dprime(np.zeros_like(signal), a, p, ch, np.random.default_rng(1))
    assert abs(d0) < 3 * se and se > 0
    assert math.isnan(cho_dprime(signal, a[:10], p[:10], ch)[0])  # too few samples for the covariance: said so


def test_in_a_simulated_examination_dprime_follows_the_dose_and_vanishes_without_contrast(tmp_path):
    bead = uniform_case(tmp_path, "fat", name="bead")
    blank = uniform_case(tmp_path, "soft_tissue", name="blank")  # the "finding" is made of its surroundings
    out = tmp_path / "q.csv"
    res = run_trial(make_spec({"cases": [bead, blank], "mas": [2.0, 8.0], "bin": [4], "seeds": 3}), out,
                    scheduler="none")
    assert res["runs"] == 12 and res["failed"] == 0
    rows = {}
    for r in read_results(out):
        rows.setdefault((Path(r["case"]).stem, r["mas"]), []).append(r)
    for m in ("dprime_slice", "dprime_film"):
        # 4x the dose: 2x d' (the mean over three noise seeds; each estimate has a sampling error of 5-10 %)
        ratio = np.mean([r[m] for r in rows["bead", 8.0]]) / np.mean([r[m] for r in rows["bead", 2.0]])
        assert ratio == pytest.approx(2.0, rel=0.2), (m, ratio)
        for r in rows["blank", 2.0] + rows["blank", 8.0]:
            assert abs(r[m]) < 3 * r[m + "_se"] + 0.1, (m, r["mas"], r[m], r[m + "_se"])
    lo, hi = rows["bead", 2.0][0], rows["bead", 8.0][0]
    assert hi["effective_dose_msv"] == pytest.approx(4 * lo["effective_dose_msv"])
    assert hi["film_effective_dose_msv"] == pytest.approx(4 * lo["film_effective_dose_msv"])  # the film follows


# -- the engine ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serial_and_local(tmp_path_factory):
    """A 2 x 2 x 2 trial (cases x mAs x seeds) run serially and on a LocalCluster of two workers."""
    d = tmp_path_factory.mktemp("trial")
    spec = make_spec({"cases": ["chest", "kub"], "mas": [0.1, 20], "seeds": 2, "bin": [8]})
    serial = run_trial(spec, d / "serial.parquet", scheduler="none")
    local = run_trial(spec, d / "local.csv", scheduler="local", n_workers=2)
    return spec, d, serial, local


@pytest.mark.slow
def test_a_trial_on_a_local_cluster_gives_the_rows_of_a_serial_run(serial_and_local):
    from volumedr.phantoms.case import load_case

    spec, d, serial, local = serial_and_local
    n_rows = sum(len(load_case(c).findings) for c in ("chest", "kub")) * 2 * 2
    assert serial["rows"] == local["rows"] == n_rows and serial["failed"] == local["failed"] == 0
    a, b = read_results(d / "serial.parquet"), read_results(d / "local.csv")
    assert len(a) == len(b) == n_rows
    _same(_measures(a), _measures(b))  # the same rows on one worker or two (Parquet and CSV alike)


@pytest.mark.slow
def test_dose_raises_cnr_and_dprime_of_every_finding_occult_on_the_film(serial_and_local):
    _, d, _, _ = serial_and_local
    rows = read_results(d / "serial.parquet")
    means = {}
    for r in rows:
        if r["occult_on_film"]:
            means.setdefault((r["case"], r["finding"], r["mas"]), []).append(r)
    findings = {(c, f) for c, f, _ in means}
    assert len(findings) >= 4
    for c, f in findings:
        for m in ("cnr_slice", "dprime_slice"):
            lo = np.mean([r[m] for r in means[c, f, 0.1]])
            hi = np.mean([r[m] for r in means[c, f, 20.0]])
            assert hi > lo, (c, f, m, lo, hi)
        assert all(r["effective_dose_msv"] > 0 and r["esak_mgy"] > 0 for r in means[c, f, 20.0])


@pytest.mark.slow
def test_a_rerun_of_a_finished_trial_runs_nothing(serial_and_local):
    spec, d, serial, _ = serial_and_local
    again = run_trial(spec, d / "serial.parquet", scheduler="none")
    assert again["skipped"] == again["runs"] == serial["runs"] and again["ran"] == 0


def test_a_run_that_fails_for_its_parameters_is_recorded_and_the_others_finish(tmp_path):
    good = uniform_case(tmp_path, "fat", name="good")
    bad = uniform_case(tmp_path, "fat", sid=90.0, name="bad")  # an impossible geometry: a 90 mm SID
    out = tmp_path / "r.csv"
    res = run_trial(make_spec({"cases": [good, bad], "bin": [8]}), out, scheduler="none")
    assert res["failed"] == 1 and res["runs"] == 2
    rows = read_results(out)
    bad_rows = [r for r in rows if r["error"]]
    assert len(bad_rows) == 1 and "source-to-image distance" in bad_rows[0]["error"] and bad_rows[0]["finding"] is None
    assert [r for r in rows if not r["error"]][0]["dprime_slice"] > 0


def _start(cmd, **kw):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_journal(path, n, proc, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and sum(1 for line in path.read_text().splitlines() if line.strip()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the trial ended early: {proc.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError("the trial made no progress")


@pytest.mark.slow
def test_a_dask_cluster_losing_a_worker_mid_trial_still_gives_every_row(tmp_path):
    case = uniform_case(tmp_path, "fat")
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [_start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], env=env)]
    try:
        t0 = time.monotonic()
        while not sched_file.exists() and time.monotonic() - t0 < 60:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(_start([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                                 "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1", "--no-nanny"], env=env))
        out = tmp_path / "dist.parquet"
        trial = _start([str(BIN / "volumedr"), "trial", "--cases", case, "--mas", "0.5,1,2,4", "--seeds", "3",
                        "--bin", "2", "--scheduler", address, "-o", str(out)], env=env)
        _wait_journal(journal_path(out), 1, trial)
        procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-trial; its task is run again elsewhere
        text, _ = trial.communicate(timeout=300)
        assert trial.returncode == 0, text
        assert "12 runs" in text and "0 failed" in text, text
        rows = read_results(out)
        assert len(rows) == 12 and len({r["run_id"] for r in rows}) == 12
        assert all(not r["error"] and r["dprime_slice"] > 0 for r in rows)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_an_interrupted_trial_resumes_without_repeating_runs(tmp_path):
    case = uniform_case(tmp_path, "fat")
    out = tmp_path / "resume.csv"
    cmd = [str(BIN / "volumedr"), "trial", "--cases", case, "--mas", "0.5,1,2,4,8", "--seeds", "2", "--bin", "2",
           "--scheduler", "none", "-o", str(out)]
    first = _start(cmd)
    _wait_journal(journal_path(out), 3, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done = [json.loads(line)["run_id"] for line in journal_path(out).read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(done) < 10
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{len(done)} already done" in second.stdout, second.stdout
    ids = []
    for line in journal_path(out).read_text().splitlines():
        try:
            ids.append(json.loads(line)["run_id"])
        except json.JSONDecodeError:  # a line the kill cut short: that run was run again
            pass
    assert len(ids) == len(set(ids)) == 10
    assert len(read_results(out)) == 10


# -- the command line ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--cases", "chest,nosuchcase"], "unknown case 'nosuchcase'"),
    (["--cases", "chest", "--mas", ","], "--mas: the list is empty"),
    (["--cases", "chest", "--angle", "0"], "angle: 0 is out of range"),
    (["--cases", "chest", "--projections", "2.5"], "projections: '2.5' is not an integer"),
    (["--cases", "chest", "--method", "art"], "method: 'art' is not one of"),
    (["--cases", "chest", "--mas", "1,2,3", "--seeds", "2", "--max-runs", "5"], "6 runs, more than --max-runs 5"),
    (["--cases", "chest", "--seeds", "0"], "seeds: 0 is out of range"),
    (["--mas", "2"], "no case given"),
    (["--cases", "chest", "--scheduler", "somewhere"], "--scheduler must be"),
])
def test_bad_trial_input_is_one_line_before_anything_starts(tmp_path, capsys, argv, message):
    out = tmp_path / "r.parquet"
    assert main(["trial", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not journal_path(out).exists()


def test_a_trial_file_and_a_bad_output_name(tmp_path, capsys):
    spec = tmp_path / "t.toml"
    spec.write_text('[trial]\ncases = ["wrist"]\nmas = [1]\nbin = 16\n', encoding="utf-8")
    assert main(["trial", str(spec), "-o", str(tmp_path / "r.txt")]) == 2
    assert "must end in .parquet or .csv" in capsys.readouterr().err
    spec.write_text('[trial]\ncases = ["wrist"]\nmas = [1]\nbins = 16\n', encoding="utf-8")
    assert main(["trial", str(spec), "-o", str(tmp_path / "r.csv")]) == 2
    assert "unknown trial parameter(s): bins" in capsys.readouterr().err


def test_the_example_trial_file_parses():
    from volumedr.trials.spec import read_toml

    spec = make_spec(read_toml(Path(__file__).resolve().parents[1] / "docs" / "trial-example.toml"))
    assert spec.n_runs == len(spec.runs()) > 1


@pytest.mark.slow
def test_the_report_plots_dprime_and_cnr_against_dose(serial_and_local, tmp_path, capsys):
    _, d, _, _ = serial_and_local
    assert main(["trial", "report", str(d / "serial.parquet"), "-o", str(tmp_path / "rep")]) == 0
    assert "plots" in capsys.readouterr().out
    pngs = sorted((tmp_path / "rep").glob("*.png"))
    assert len(pngs) == len({(r["case"], r["finding"]) for r in read_results(d / "serial.parquet")})  # one a finding
    md = (tmp_path / "rep" / "index.md").read_text()
    assert "| chest | retrocardiac nodule" in md and "d' slice" in md
    assert (tmp_path / "rep" / "index.html").read_text().count("<img") == len(pngs)
    if os.environ.get("VOLUMEDR_SHOTS"):
        import shutil

        shutil.copy(pngs[0], os.path.join(os.environ["VOLUMEDR_SHOTS"], "trial-" + pngs[0].name))



def test_the_observer_reads_each_image_against_its_own_background_level():
    """Two noise realisations of a slice differ by a level over the whole neighbourhood (low-frequency
    noise), one number per image pair that the bootstrap cannot see: a reader windows each image, so a
    level added to one image must not change d'."""
    from volumedr.trials.run import _dprime

    rng = np.random.default_rng(5)
    absent, present = rng.normal(0, 1, (2, 160, 160))
    y, x = np.mgrid[:160, :160] - 80
    signal = 0.4 * np.exp(-(x**2 + y**2) / (2 * 2.5**2))
    d0 = _dprime(signal, absent, present, (80, 80), 2.5, np.random.default_rng(1))
    d1 = _dprime(signal, absent, present + 0.5, (80, 80), 2.5, np.random.default_rng(1))
    assert np.isfinite(d0[0]) and d0[0] > 3 * d0[1]
    assert d1[0] == pytest.approx(d0[0], rel=1e-9) and d1[1] == pytest.approx(d0[1], rel=1e-9)
