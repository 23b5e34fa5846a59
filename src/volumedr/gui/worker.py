"""Run a job generator in a worker thread: progress, partial results, cancel, errors."""
from __future__ import annotations

import os
import sys
import threading
import traceback

from PySide6 import QtCore

from ..errors import Cancelled, VolumedrError
from ..progress import CancelToken, Progress


BACKGROUND_NICE = 5  # the jobs' threads yield the CPU to the window's (weight about 1:3 on Linux)


def background_priority() -> None:
    """Put every thread of the process but the window's (the main thread) at nice ``BACKGROUND_NICE``:
    the job threads and the numba pool they start (a new thread inherits its creator's nice value), so
    on a 2-core machine the kernels' threads never keep the window from answering.  Linux only; raising
    a nice value needs no privilege, and a thread already lower is left alone."""
    if not sys.platform.startswith("linux"):
        return
    main = threading.main_thread().native_id
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return
    for tid in tids:
        if tid == main:
            continue
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
        except OSError:  # the thread ended meanwhile, or a policy forbids it
            pass


class GeneratorWorker(QtCore.QObject):
    """Drives ``make_job()`` (a generator) on a QThread.

    Signals: ``progress(stage, done, total)``, ``partial(object)`` for any
    non-Progress yield, ``finished(object)`` with the return value,
    ``failed(str)`` with a one-line message, ``cancelled()``.  Cancel is
    checked at every yield (each simulated view, each chunk of slices).
    """

    progress = QtCore.Signal(str, int, int)
    partial = QtCore.Signal(object)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()

    def __init__(self, make_job, name: str = "job"):
        super().__init__()
        self.make_job = make_job
        self.name = name
        self.token = CancelToken()
        self.thread = QtCore.QThread()
        self.thread.setObjectName(f"volumedr-{name}")
        self.moveToThread(self.thread)
        self.thread.started.connect(self.run)
        self.done = False

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.token.cancel()

    @QtCore.Slot()
    def run(self) -> None:
        background_priority()
        try:
            gen = self.make_job()
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    self.finished.emit(stop.value)
                    break
                if self.token.cancelled:
                    gen.close()
                    self.cancelled.emit()
                    break
                if isinstance(event, Progress):
                    self.progress.emit(event.stage, event.done, event.total)
                else:
                    self.partial.emit(event)
        except Cancelled:
            self.cancelled.emit()
        except VolumedrError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("out of memory: choose a smaller detector or height range")
        except Exception as exc:  # an unexpected bug still reaches the user, with the trace on stderr
            traceback.print_exc()
            self.failed.emit(f"unexpected error ({type(exc).__name__}): {exc}")
        finally:
            self.done = True
            self.thread.quit()
