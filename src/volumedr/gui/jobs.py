"""The job runner: long work in a worker thread with a progress bar, Cancel, and errors and
warnings that reach the user."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from ..errors import VolumedrError
from ..sysinfo import release_free_memory
from .worker import GeneratorWorker


class JobsMixin:
    """Runs one job at a time in a GeneratorWorker and reports it in the status bar.  The handlers of the
    worker's signals (``_on_progress`` ... ``_on_cancelled``) are the bodies of the main window's slots.

    Mixed into :class:`~volumedr.gui.main_window.MainWindow`, whose state (``self.study``,
    ``self.rec``, the panes and controls) it shares."""

    def _start(self, name, make_job, on_done, on_partial=None):
        if self.worker is not None and not self.worker.done:
            self.worker.cancel()
        w = GeneratorWorker(make_job, name)
        w.on_done = on_done
        w.on_partial = on_partial
        # bound methods of this (GUI-thread) object with queued connections: the handlers run on the
        # GUI thread, never in the worker thread
        q = QtCore.Qt.ConnectionType.QueuedConnection
        w.progress.connect(self._on_progress, q)
        w.partial.connect(self._on_partial, q)
        w.failed.connect(self._on_failed, q)
        w.cancelled.connect(self._on_cancelled, q)
        w.finished.connect(self._on_finished, q)
        self.worker = w
        # a worker is dropped only once its last signal was handled here and its thread has ended
        # (dropping it earlier loses the sender of a queued signal and can destroy a running QThread)
        self._workers = [x for x in self._workers if not (getattr(x, "ended", False) and x.thread.isFinished())] + [w]
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.cancel_button.setVisible(True)
        self.status_label.setText(f"{name}...")
        w.start()
        return w

    def _on_progress(self, stage, done, total):
        if self.sender() is not self.worker:
            return
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{stage} %v/%m")

    def _on_partial(self, ev):
        w = self.sender()
        if w is self.worker and getattr(w, "on_partial", None) is not None:
            w.on_partial(ev)

    def _on_finished(self, result):
        w = self.sender()
        self._end_job(w)
        if w is not self.worker:
            return
        try:
            w.on_done(result)
        except VolumedrError as exc:
            self.show_error(str(exc))
        self.job_finished.emit(w.name)

    def _on_failed(self, msg):
        w = self.sender()
        self._end_job(w)
        if w is self.worker:
            self.show_error(msg)
        self.job_finished.emit(w.name)

    def _on_cancelled(self):
        w = self.sender()
        self._end_job(w)
        if w is self.worker:
            self.status_label.setText(f"{w.name} cancelled")
        self.job_finished.emit(w.name)

    def _end_job(self, w):
        w.ended = True
        release_free_memory()  # what the job freed goes back to the system, not into its thread's arena
        if w is self.worker:
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)

    def cancel_job(self):
        if self.worker is not None:
            self.worker.cancel()
            self.status_label.setText("cancelling...")

    def show_error(self, msg: str):
        self.last_error = msg
        self._message(QtWidgets.QMessageBox.Icon.Critical, f"Error: {msg}", msg)

    def show_warning(self, msg: str):
        """Something the user should know that did not stop the work (a study opened without a broken item)."""
        self.last_warning = msg
        self._message(QtWidgets.QMessageBox.Icon.Warning, f"Warning: {msg}", msg)

    def _message(self, icon, status: str, msg: str):
        self.status_label.setText(status)
        box = QtWidgets.QMessageBox(icon, "volumedr", msg, QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self._error_box = box
