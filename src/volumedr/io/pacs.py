"""Talk to a PACS: C-ECHO, C-STORE and C-FIND through pynetdicom (docs/dicom.md).

Every call has a connection timeout and DIMSE/network timeouts, so an
unreachable PACS or one that refuses the association gives a
:class:`~volumedr.errors.PacsError` naming the peer and the reason, never a
hang.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..errors import PacsError, ParameterError
from ..progress import Progress
from .dicom_export import CT_IMAGE_STORAGE, DX_PRESENTATION, DX_PROCESSING

CALLING_AET = "VOLUMEDR"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
VERIFICATION = "1.2.840.10008.1.1"
STORAGE_CLASSES = (CT_IMAGE_STORAGE, DX_PRESENTATION, DX_PROCESSING)

logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int

    def __str__(self):
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_peer(text: str) -> Peer:
    """``AET@HOST:PORT`` (e.g. ``ORTHANC@127.0.0.1:4242``)."""
    m = re.fullmatch(r"([^@]{1,16})@([^:]+):(\d+)", str(text).strip())
    if not m:
        raise ParameterError(f"PACS address must be AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242), got {text!r}")
    port = int(m.group(3))
    if not 0 < port < 65536:
        raise ParameterError(f"PACS port must be 1..65535, got {port}")
    return Peer(m.group(1), m.group(2), port)


def _ae(contexts, timeout_s: float):
    from pynetdicom import AE

    if not (0 < timeout_s <= 3600):
        raise ParameterError(f"the PACS timeout must be more than 0 and at most 3600 s, got {timeout_s:g}")

    ae = AE(ae_title=CALLING_AET)
    for c in contexts:
        ae.add_requested_context(c, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    ae.connection_timeout = timeout_s
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    return ae


def _associate(peer: Peer, contexts, timeout_s: float):
    ae = _ae(contexts, timeout_s)
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    except Exception as exc:  # bad host name and the like
        raise PacsError(f"cannot reach the PACS {peer}: {exc}") from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(f"the PACS {peer} refused the association (check its AE title and that it accepts "
                        f"{CALLING_AET!r})")
    raise PacsError(f"cannot reach the PACS {peer} (no answer within {timeout_s:g} s; is it running, "
                    "and are the host and port right?)")


def echo(peer: Peer, *, timeout_s: float = 10.0) -> None:
    assoc = _associate(peer, [VERIFICATION], timeout_s)
    try:
        st = assoc.send_c_echo()
        if not st or st.Status != 0:
            raise PacsError(f"C-ECHO to {peer} failed (status {getattr(st, 'Status', 'none')})")
    finally:
        assoc.release()


def send_files(files, peer: Peer, *, timeout_s: float = 30.0):
    """C-STORE each file (a generator yielding Progress; returns the number sent)."""
    files = [Path(f) for f in files]
    if not files:
        raise ParameterError("nothing to send")
    assoc = _associate(peer, STORAGE_CLASSES, timeout_s)
    try:
        for i, f in enumerate(files):
            ds = pydicom.dcmread(f)
            try:
                st = assoc.send_c_store(ds)
            except (ValueError, RuntimeError) as exc:
                raise PacsError(f"{f}: cannot send to {peer}: {exc}") from None
            if not st:
                raise PacsError(f"{f}: the PACS {peer} did not answer the C-STORE (connection lost or timed out)")
            if st.Status not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise PacsError(f"{f}: the PACS {peer} refused the image (C-STORE status 0x{st.Status:04X})")
            yield Progress("sending", i + 1, len(files))
    finally:
        if assoc.is_established:
            assoc.release()
    return len(files)


STUDY_KEYS = ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription",
              "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "AccessionNumber")


def _text(value) -> str:
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def find_studies(peer: Peer, *, patient_id: str = "", study_uid: str = "", timeout_s: float = 15.0) -> list[dict]:
    """C-FIND at STUDY level (Study Root): one dict per study."""
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    for k in STUDY_KEYS:
        setattr(q, k, "")
    q.PatientID = patient_id
    q.StudyInstanceUID = study_uid
    assoc = _associate(peer, [STUDY_ROOT_FIND], timeout_s)
    out = []
    try:
        for status, ident in assoc.send_c_find(q, STUDY_ROOT_FIND):
            if not status:
                raise PacsError(f"the PACS {peer} did not answer the C-FIND (timed out)")
            if status.Status in (0xFF00, 0xFF01) and ident is not None:
                out.append({k: _text(ident.get(k, "")) for k in STUDY_KEYS})
            elif status.Status not in (0x0000, 0xFF00, 0xFF01):
                raise PacsError(f"the PACS {peer} refused the C-FIND (status 0x{status.Status:04X})")
    finally:
        if assoc.is_established:
            assoc.release()
    return out
