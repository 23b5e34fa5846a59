"""File and network actions: open and save study files, export PNG and DICOM, send to a PACS
(also over TLS)."""
from __future__ import annotations

import copy
from pathlib import Path

from PySide6 import QtWidgets

from ..errors import VolumedrError
from ..io.study_file import read_study, write_study



def new_folder(parent, name: str) -> Path:
    """``parent/name``, or ``parent/name-2``, ``-3``, ... the first that does not exist yet."""
    out, n = Path(parent) / name, 2
    while out.exists():
        out, n = Path(parent) / f"{name}-{n}", n + 1
    return out

class FileActionsMixin:
    """The File menu's actions.

    Mixed into :class:`~volumedr.gui.main_window.MainWindow`, whose state (``self.study``,
    ``self.rec``, the panes and controls) it shares."""

    def open_dialog(self):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open study", "", "volumedr studies (*.h5 *.hdf5)")
        if path:
            self.open_study(path)

    def open_study(self, path):
        def job():
            s = read_study(path)
            yield from ()
            return s

        def done(study):
            self.rec = None
            self.set_study(study)
            self.setWindowTitle(f"volumedr - {Path(path).name}")
            if study.dropped:  # damaged or invalid optional items: the rest opened, say what is missing
                self.show_warning(f"{Path(path).name} opened without these damaged or invalid items: "
                                  f"{', '.join(study.dropped)}")
            if study.reconstruction is None:
                self.reconstruct()

        self._start("opening", job, done)

    def save_dialog(self):
        if self.study is None:
            self.show_error("nothing to save: acquire or open a study first")
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save study", "study.h5", "volumedr studies (*.h5)")
        if path:
            self.save_study(path)

    def save_study(self, path):
        study = self.study

        def job():
            write_study(path, study)
            yield from ()
            return path

        self._start("saving", job, lambda p: self.status_label.setText(f"saved {p}"))

    def export_dialog(self):
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view", "view.png", "PNG images (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path) -> bool:
        ok = self.view_widget.grab().save(str(path), "PNG")
        if not ok:
            self.show_error(f"could not write {path}")
        return ok

    # ------------------------------------------------------------------ DICOM
    SLICE_CHOICES = ("CT (scrolls as a stack in every viewer)", "DX (radiography semantics)")

    def _study_for_export(self):
        if self.study is None:
            self.show_error("nothing to export: acquire or open a study first")
            return None
        study = copy.copy(self.study)
        study.reconstruction = self.rec
        return study

    def export_dicom_dialog(self):
        if self._study_for_export() is None:
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export DICOM into folder")
        if not folder:
            return
        choice, ok = QtWidgets.QInputDialog.getItem(self, "Export DICOM", "Slices as:", self.SLICE_CHOICES, 0, False)
        if ok:
            out = new_folder(folder, f"{self.study.metadata.get('case', 'study')}-dicom")
            self.export_dicom(out, "ct" if choice.startswith("CT") else "dx")

    def export_dicom(self, outdir, as_: str = "ct", reading=None):
        """Write the study (with the slices on screen) as DICOM into the new folder ``outdir``, in a worker;
        ``reading=(marks, reader)`` adds the reader's marks as a DICOM SR beside the answer key."""
        from ..io.dicom_export import export_dicom

        study = self._study_for_export()
        if study is None:
            return None

        def job():
            return (yield from export_dicom(study, outdir, as_=as_, reading=reading))

        def done(summary):
            self.status_label.setText(f"exported {len(summary.files)} DICOM files to {summary.outdir}")

        return self._start("exporting DICOM", job, done)

    def send_dialog(self):
        if self._study_for_export() is None:
            return
        dlg = SendDialog(self, self.settings_pacs or "ORTHANC@127.0.0.1:4242", self.settings_tls)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            try:
                tls = dlg.tls_settings()
            except VolumedrError as exc:
                self.show_error(str(exc))
                return
            self.send_to_pacs(dlg.address.text().strip(), tls=tls)

    def send_to_pacs(self, address: str, as_: str = "ct", timeout_s: float = 30.0, tls=None):
        """Export to a temporary folder and C-STORE every image to ``address`` (AET@HOST:PORT), in a worker;
        ``tls`` (a :class:`~volumedr.io.pacs.TlsSettings`) sends DICOM over TLS, the PACS verified."""
        import tempfile

        from ..io.dicom_export import export_dicom
        from ..io.pacs import parse_peer, send_files

        study = self._study_for_export()
        if study is None:
            return None
        try:
            peer = parse_peer(address, tls)
        except VolumedrError as exc:
            self.show_error(str(exc))
            return None
        self.settings_pacs = address
        self.settings_tls = tls

        def job():
            with tempfile.TemporaryDirectory(prefix="volumedr-send-") as tmp:
                summary = yield from export_dicom(study, Path(tmp) / "export", as_=as_)
                n = yield from send_files(summary.files, peer, timeout_s=timeout_s)
            return n

        return self._start("sending to PACS", job, lambda n: self.status_label.setText(f"sent {n} images to {peer}"))


class SendDialog(QtWidgets.QDialog):
    """Where to send: the PACS address and, for DICOM over TLS, the CA to verify it against and this
    workstation's certificate and key (PEM files; empty = the system's CAs, no client certificate)."""

    def __init__(self, parent, address: str, tls=None):
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        lay = QtWidgets.QFormLayout(self)
        self.address = QtWidgets.QLineEdit(address)
        lay.addRow("PACS (AET@HOST:PORT)", self.address)
        self.tls = QtWidgets.QCheckBox("DICOM over TLS (the PACS's certificate is verified)")
        lay.addRow(self.tls)
        self.files = {}
        for key, label in (("ca_path", "CA certificate(s)"), ("cert_path", "This workstation's certificate"),
                           ("key_path", "Its private key")):
            edit = QtWidgets.QLineEdit(getattr(tls, key, None) or "")
            edit.setPlaceholderText("PEM file" + (" (empty: the system's CAs)" if key == "ca_path" else " (optional)"))
            browse = QtWidgets.QPushButton("...")
            browse.clicked.connect(lambda _=False, e=edit: self._browse(e))
            row = QtWidgets.QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            lay.addRow(label, row)
            self.files[key] = edit
        self.tls.toggled.connect(self._tls_toggled)
        self.tls.setChecked(tls is not None)
        self._tls_toggled(tls is not None)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addRow(buttons)

    def _browse(self, edit):
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "PEM file", "", "PEM (*.pem *.crt *.key);;All (*)")
        if path:
            edit.setText(path)

    def _tls_toggled(self, on: bool):
        for edit in self.files.values():
            edit.setEnabled(on)

    def tls_settings(self):
        """The TLS settings chosen, or None for plain DICOM (raises ParameterError for missing files)."""
        from ..io.pacs import TlsSettings

        if not self.tls.isChecked():
            return None
        return TlsSettings(**{k: (e.text().strip() or None) for k, e in self.files.items()})
