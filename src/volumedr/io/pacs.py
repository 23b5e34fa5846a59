"""Talk to a PACS: C-ECHO, C-STORE and C-FIND through pynetdicom (docs/dicom.md).

Every call has a connection timeout and DIMSE/network timeouts, so an
unreachable PACS or one that refuses the association gives a
:class:`~volumedr.errors.PacsError` naming the peer and the reason, never a
hang.

DICOM over TLS (PS3.15 Annex B, the Basic/BCP 195 TLS profiles): a
:class:`TlsSettings` on the :class:`Peer` wraps the association in TLS 1.2 or
later through a Python :mod:`ssl` context.  The server's certificate is always
verified, against ``--ca`` or the system's trust store, and its name or IP
address must match the host dialled; a certificate that does not verify is
refused with a message that says so.  ``--cert``/``--key`` give the client's
own certificate to PACSs that ask for one (mutual TLS).
"""
from __future__ import annotations

import logging
import re
import socket
import ssl
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
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"  # the answer key and readings (io/dicom_sr.py)
STORAGE_CLASSES = (CT_IMAGE_STORAGE, DX_PRESENTATION, DX_PROCESSING, COMPREHENSIVE_3D_SR)

logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class TlsSettings:
    """DICOM over TLS: the CA to verify the PACS against (None: the system's trust store) and, for
    PACSs that require one, the client's certificate and key (PEM files)."""

    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None

    def __post_init__(self):
        for name in ("ca_path", "cert_path", "key_path"):
            p = getattr(self, name)
            if p is not None and not Path(p).is_file():
                raise ParameterError(f"TLS {name.split('_')[0]} file {p} does not exist")
        if (self.cert_path is None) != (self.key_path is None):
            raise ParameterError("a client certificate needs both --cert and --key")

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the server (certificate chain and host name), TLS >= 1.2."""
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_path)
        except (ssl.SSLError, OSError) as exc:
            raise ParameterError(f"cannot read the CA certificate {self.ca_path}: {_ssl_reason(exc)}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_path is not None:
            try:
                ctx.load_cert_chain(self.cert_path, self.key_path)
            except (ssl.SSLError, OSError) as exc:
                raise ParameterError(f"cannot use the client certificate {self.cert_path} with the key "
                                     f"{self.key_path}: {_ssl_reason(exc)}") from None
        return ctx


def _ssl_reason(exc: BaseException) -> str:
    return getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int
    tls: TlsSettings | None = None

    def __str__(self):
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


def parse_peer(text: str, tls: TlsSettings | None = None) -> Peer:
    """``AET@HOST:PORT`` (e.g. ``ORTHANC@127.0.0.1:4242``)."""
    m = re.fullmatch(r"([^@]{1,16})@([^:]+):(\d+)", str(text).strip())
    if not m:
        raise ParameterError(f"PACS address must be AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242), got {text!r}")
    port = int(m.group(3))
    if not 0 < port < 65536:
        raise ParameterError(f"PACS port must be 1..65535, got {port}")
    return Peer(m.group(1), m.group(2), port, tls)


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
    kw = {}
    if peer.tls is not None:
        ctx = peer.tls.context()
        kw["tls_args"] = (ctx, peer.host)
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kw)
        if assoc.is_aborted and peer.tls is None:
            # A peer that rejects the association sends A-ASSOCIATE-RJ and closes at once; on a loaded
            # machine pynetdicom can see the close before it reads the rejection and reports an abort
            # (seen once in CI against Orthanc).  Ask once more before telling the user why.
            assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kw)
    except Exception as exc:  # bad host name and the like
        if peer.tls is not None:
            _diagnose_tls(peer, ctx, timeout_s)
        raise PacsError(f"cannot reach the PACS {peer}: {exc}") from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(f"the PACS {peer} refused the association (check its AE title and that it accepts "
                        f"{CALLING_AET!r})")
    if peer.tls is not None:
        _diagnose_tls(peer, ctx, timeout_s)
    elif assoc.is_aborted and _accepts_tcp(peer, timeout_s):
        raise PacsError(f"the PACS {peer} closed the connection without answering the association request; "
                        "if it accepts only DICOM over TLS, add --tls (and --ca, --cert, --key as it needs)")
    raise PacsError(f"cannot reach the PACS {peer} (no answer within {timeout_s:g} s; is it running, "
                    "and are the host and port right?)")


def _accepts_tcp(peer: Peer, timeout_s: float) -> bool:
    try:
        with socket.create_connection((peer.host, peer.port), timeout=min(timeout_s, 5.0)):
            return True
    except OSError:
        return False


def _diagnose_tls(peer: Peer, ctx: ssl.SSLContext, timeout_s: float) -> None:
    """After a failed TLS association: shake hands once more to say why (raises PacsError), or return."""
    try:
        raw = socket.create_connection((peer.host, peer.port), timeout=min(timeout_s, 10.0))
    except OSError as exc:
        raise PacsError(f"cannot reach the PACS {peer}: {exc.strerror or exc}") from None
    try:
        with ctx.wrap_socket(raw, server_hostname=peer.host) as tls:
            # under TLS 1.3 the server judges the client's certificate after the handshake: an alert
            # arrives on the first read; a quiet socket means it waits for the association request
            tls.settimeout(1.0)
            try:
                tls.recv(1)
            except (socket.timeout, TimeoutError):
                return  # the handshake works: the DICOM layer failed, as the caller says
            except ssl.SSLError as exc:
                raise PacsError(f"the PACS {peer} refused this client's certificate ({_ssl_reason(exc)}); "
                                "give one that it trusts with --cert and --key") from None
            return
    except ssl.SSLCertVerificationError as exc:
        ca = peer.tls.ca_path or "the system's trusted CAs"
        raise PacsError(f"the PACS {peer} presented a certificate that does not verify against {ca}: "
                        f"{_ssl_reason(exc)}; the connection was refused") from None
    except (ssl.SSLError, OSError) as exc:
        why = _ssl_reason(exc) if isinstance(exc, ssl.SSLError) else "the PACS closed the connection"
        raise PacsError(f"the TLS handshake with the PACS {peer} failed ({why}); is this a DICOM TLS "
                        "port, and does the PACS accept this client certificate?") from None
    finally:
        raw.close()


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
