"""A real PACS round trip: Orthanc (Debian package) on loopback, C-STORE / C-FIND with pynetdicom, REST back."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest

from volumedr.cli.main import main
from volumedr.errors import PacsError
from volumedr.geometry import Detector, Sweep
from volumedr.io.dicom_export import export_dicom
from volumedr.io.pacs import Peer, echo, find_studies, parse_peer, send_files
from volumedr.io.study_file import write_study
from volumedr.progress import drive
from volumedr.reconstruct import ReconSettings, reconstruct
from volumedr.simulate import simulate_study

ORTHANC = shutil.which("Orthanc") or (Path("/usr/sbin/Orthanc") if Path("/usr/sbin/Orthanc").exists() else None)
pytestmark = pytest.mark.skipif(ORTHANC is None, reason="Orthanc (Debian package orthanc) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Orthanc:
    def __init__(self, root: Path, **extra):
        self.dicom_port, self.http_port = free_port(), free_port()
        (root / "db").mkdir()
        cfg = {
            "Name": "volumedr-test", "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomModalities": {"volumedr": ["VOLUMEDR", "127.0.0.1", 11112]},
            "Plugins": [], "StableAge": 1, "HttpTimeout": 10,
        }
        cfg.update(extra)
        path = root / "orthanc.json"
        path.write_text(json.dumps(cfg))
        self.log = open(root / "orthanc.log", "w")
        self.proc = subprocess.Popen([str(ORTHANC), str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/system")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start; see {root / 'orthanc.log'}")
                time.sleep(0.1)
        self.peer = Peer("ORTHANC", "127.0.0.1", self.dicom_port)

    def get(self, path: str, raw: bool = False):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
            data = r.read()
        return data if raw else json.loads(data)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    o = Orthanc(tmp_path_factory.mktemp("orthanc"))
    yield o
    o.stop()


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    sweep = Sweep(kind="linear", total_angle_deg=30, n_projections=25, source_to_image_mm=1800, pivot_height_mm=100)
    s = simulate_study("chest", sweep=sweep, detector=Detector().binned(16), rng=5, ct=False)
    s.reconstruction = reconstruct(s.projections, s.geometry, ReconSettings(spacing_mm=10, z_min_mm=20, z_max_mm=220))
    path = tmp_path_factory.mktemp("study") / "chest.h5"
    write_study(path, s)
    return path, s


def test_echo(orthanc):
    echo(orthanc.peer, timeout_s=5)


def test_send_find_and_fetch_back(orthanc, study_file, tmp_path, capsys):
    path, study = study_file
    assert main(["send", str(path), "--to", str(orthanc.peer), "--timeout", "20"]) == 0
    n_slices = len(study.reconstruction.heights_mm)
    assert f"sent {1 + 25 + n_slices + 1} images" in capsys.readouterr().out  # + the answer-key SR
    uid = study.metadata["study_instance_uid"]

    # C-FIND lists it, with the fictional patient and all three series' images
    rows = find_studies(orthanc.peer)
    mine = [r for r in rows if r["StudyInstanceUID"] == uid]
    assert len(mine) == 1
    assert mine[0]["PatientID"] == "VDR-CHEST"
    assert int(mine[0]["NumberOfStudyRelatedInstances"]) == 1 + 25 + n_slices + 1
    assert set(mine[0]["ModalitiesInStudy"].split("\\")) == {"CT", "DX", "SR"}
    assert main(["find", "--on", str(orthanc.peer)]) == 0
    assert uid in capsys.readouterr().out

    # fetch the slice series back over REST and compare pixels and positions with the export
    local = drive(export_dicom(study, tmp_path / "local", kinds=("slices",)))
    ref = {(d := pydicom.dcmread(f)).SOPInstanceUID: d for f in local.files}
    series = [s for s in orthanc.get("/series?expand") if s["MainDicomTags"].get("Modality") == "CT"]
    assert len(series) == 1
    assert len(series[0]["Instances"]) == n_slices
    for iid in series[0]["Instances"]:
        data = orthanc.get(f"/instances/{iid}/file", raw=True)
        (tmp_path / "one.dcm").write_bytes(data)
        d = pydicom.dcmread(tmp_path / "one.dcm")
        r = ref[d.SOPInstanceUID]
        assert np.array_equal(d.pixel_array, r.pixel_array)
        assert np.allclose(np.array(d.ImagePositionPatient, float), np.array(r.ImagePositionPatient, float))
        assert d.SeriesInstanceUID == r.SeriesInstanceUID and d.FrameOfReferenceUID == r.FrameOfReferenceUID


def test_sending_twice_keeps_one_study(orthanc, study_file):
    path, study = study_file
    local = drive(export_dicom(study, path.parent / "again", kinds=("film",)))
    drive(send_files(local.files, orthanc.peer))
    rows = [r for r in find_studies(orthanc.peer) if r["StudyInstanceUID"] == study.metadata["study_instance_uid"]]
    assert len(rows) == 1


def test_refused_association_is_a_clear_error(orthanc, capsys):
    with pytest.raises(PacsError, match="refused the association"):
        echo(Peer("NOT-ORTHANC", "127.0.0.1", orthanc.dicom_port), timeout_s=5)
    assert main(["find", "--on", f"WRONG@127.0.0.1:{orthanc.dicom_port}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("volumedr: error:") and "refused" in err and len(err.strip().splitlines()) == 1


def test_unreachable_pacs_fails_fast():
    t0 = time.monotonic()
    with pytest.raises(PacsError, match="cannot reach"):
        echo(Peer("ORTHANC", "127.0.0.1", free_port()), timeout_s=3)
    assert time.monotonic() - t0 < 10


def test_silent_pacs_times_out_instead_of_hanging():
    """A peer that accepts the TCP connection but never answers: the ACSE timeout ends it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        t0 = time.monotonic()
        with pytest.raises(PacsError):
            echo(Peer("ORTHANC", "127.0.0.1", srv.getsockname()[1]), timeout_s=2)
        assert time.monotonic() - t0 < 15
    finally:
        srv.close()


def test_peer_addresses():
    assert parse_peer("ORTHANC@127.0.0.1:4242") == Peer("ORTHANC", "127.0.0.1", 4242)
    for bad in ("ORTHANC@host", "127.0.0.1:4242", "A@h:0", "WAYTOOLONGAETITLE1@h:1"):
        with pytest.raises(Exception, match="AET@HOST:PORT|port"):
            parse_peer(bad)


# ------------------------------------------------------------------------------------- DICOM over TLS
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from certs import issue, make_ca

    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    other = make_ca(d, "some other CA")
    return {"ca": ca, "other_ca": other, "server": issue(ca, d, "orthanc", server=True),
            "client": issue(ca, d, "volumedr", server=False),
            "stranger": issue(other, d, "stranger", server=False)}


@pytest.fixture(scope="module")
def tls_orthanc(tmp_path_factory, pki):
    """Orthanc whose DICOM port speaks TLS only and requires a client certificate from our CA."""
    o = Orthanc(tmp_path_factory.mktemp("orthanc-tls"), DicomTlsEnabled=True,
                DicomTlsCertificate=str(pki["server"]["cert_path"]), DicomTlsPrivateKey=str(pki["server"]["key_path"]),
                DicomTlsTrustedCertificates=str(pki["ca"]["cert_path"]), DicomTlsRemoteCertificateRequired=True)
    yield o
    o.stop()


def _tls(pki, ca="ca", client="client"):
    args = ["--tls", "--ca", str(pki[ca]["cert_path"])]
    if client:
        args += ["--cert", str(pki[client]["cert_path"]), "--key", str(pki[client]["key_path"])]
    return args


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("volumedr: error:"), err
    return lines[0]


def test_echo_send_and_find_over_tls(tls_orthanc, pki, study_file, capsys):
    path, study = study_file
    peer = f"ORTHANC@127.0.0.1:{tls_orthanc.dicom_port}"
    assert main(["echo", "--to", peer, *_tls(pki)]) == 0
    assert "(TLS) answered C-ECHO" in capsys.readouterr().out
    assert main(["send", str(path), "--to", peer, "--series", "film", *_tls(pki)]) == 0
    assert "sent 1 images" in capsys.readouterr().out
    assert main(["find", "--on", peer, *_tls(pki)]) == 0
    assert study.metadata["study_instance_uid"] in capsys.readouterr().out
    # and the image really arrived (Orthanc's own REST API)
    assert any(s["MainDicomTags"]["StudyInstanceUID"] == study.metadata["study_instance_uid"]
               for s in tls_orthanc.get("/studies?expand"))


def test_a_server_certificate_from_another_ca_is_refused(tls_orthanc, pki, capsys):
    t0 = time.monotonic()
    assert main(["echo", "--to", f"ORTHANC@127.0.0.1:{tls_orthanc.dicom_port}", *_tls(pki, ca="other_ca")]) == 2
    line = _one_error(capsys)
    assert "does not verify" in line and "some-other-CA" in line, line
    assert time.monotonic() - t0 < 15


def test_a_client_certificate_the_pacs_does_not_trust_is_named(tls_orthanc, pki, capsys):
    assert main(["echo", "--to", f"ORTHANC@127.0.0.1:{tls_orthanc.dicom_port}", *_tls(pki, client="stranger")]) == 2
    line = _one_error(capsys)
    assert "client" in line and "certificate" in line, line
    assert main(["echo", "--to", f"ORTHANC@127.0.0.1:{tls_orthanc.dicom_port}", *_tls(pki, client=None)]) == 2
    line = _one_error(capsys)
    assert "certificate" in line, line


def test_plain_dicom_to_a_tls_only_port_fails_fast_and_says_tls(tls_orthanc, capsys):
    t0 = time.monotonic()
    assert main(["echo", "--to", f"ORTHANC@127.0.0.1:{tls_orthanc.dicom_port}", "--timeout", "20"]) == 2
    assert time.monotonic() - t0 < 10
    line = _one_error(capsys)
    assert "--tls" in line, line


def test_tls_to_a_plain_port_is_a_clear_error(orthanc, pki, capsys):
    assert main(["echo", "--to", str(orthanc.peer), *_tls(pki)]) == 2
    line = _one_error(capsys)
    assert "TLS handshake" in line, line


def test_tls_options_are_checked_before_connecting(pki, tmp_path, capsys):
    assert main(["echo", "--to", "A@127.0.0.1:1", "--ca", str(pki["ca"]["cert_path"])]) == 2
    assert "add --tls" in _one_error(capsys)
    assert main(["echo", "--to", "A@127.0.0.1:1", "--tls", "--ca", str(tmp_path / "none.pem")]) == 2
    assert "does not exist" in _one_error(capsys)
    assert main(["echo", "--to", "A@127.0.0.1:1", "--tls", "--cert", str(pki["client"]["cert_path"])]) == 2
    assert "--key" in _one_error(capsys)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    assert main(["echo", "--to", "A@127.0.0.1:1", "--tls", "--ca", str(bad)]) == 2
    assert "cannot read the CA certificate" in _one_error(capsys)
