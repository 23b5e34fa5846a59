"""Running a trial: serially, on a local Dask cluster, or on an existing one; results stream to a file.

* ``scheduler="local"`` (the default) starts a ``distributed.LocalCluster`` on this machine: one worker
  process per core, one thread each (numba limited to one thread per worker), a memory limit per
  worker of its share of the free memory, listening on loopback only, no dashboard.
* ``scheduler="tcp://HOST:PORT"`` sends the same tasks to an existing cluster (``dask scheduler`` and
  ``dask worker`` processes on one machine or many; docs/trials.md).
* ``scheduler="none"`` runs them one after another in this process (the reference the tests compare with).

Each run is one task (``run_one``); only its rows come back.  As runs finish their rows are appended to a
journal beside the output (``RESULTS.journal.jsonl``, one line a run, flushed and synced) and the output
(Parquet, or CSV by extension) is rewritten from the journal atomically (temp file, then rename) every
few seconds and at the end, so an interrupted trial leaves a valid file with every finished run, and a
rerun with the same output skips the runs already in the journal.  A worker lost mid-run (killed, out
of memory) has its task rescheduled on another worker by Dask; a run that fails for its parameters comes
back as a row with its error and does not stop the others.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import ParameterError
from .run import COLUMNS, run_one
from .spec import MAX_RUNS, TrialSpec

REWRITE_SECONDS = 3.0


def output_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ParameterError(f"{path}: the results file must end in .parquet or .csv")


def journal_path(output) -> Path:
    p = Path(output)
    return p.with_name(p.name + ".journal.jsonl")


def read_journal(output) -> dict[str, dict]:
    """run_id -> the run's record, from the journal (a last line cut short by a crash is ignored)."""
    jp = journal_path(output)
    done = {}
    if not jp.exists():
        return done
    with open(jp, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "run_id" in rec and isinstance(rec.get("rows"), list):
                done[rec["run_id"]] = rec
    return done


def read_results(path) -> list[dict]:
    """The rows of a results file (Parquet or CSV) as dicts."""
    fmt = output_format(path)
    p = Path(path)
    if not p.exists():
        raise ParameterError(f"{p}: no such results file")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p).to_pylist()
        import csv

        with open(p, newline="", encoding="utf-8") as fh:
            return [_typed(r) for r in csv.DictReader(fh)]
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{p}: cannot read the results ({exc})") from None
    except Exception as exc:  # pyarrow's errors (ArrowInvalid) for a damaged file
        raise ParameterError(f"{p}: cannot read the results ({type(exc).__name__}: {exc})") from None


def _typed(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if k in ("run_id", "case", "sweep", "method", "finding", "error"):
            out[k] = v if v != "" or k == "error" else None
        elif k in ("mar", "occult_on_film"):
            out[k] = v == "True" if v in ("True", "False") else None
        else:
            try:
                out[k] = float(v) if v not in ("", "None") else None
            except ValueError:
                out[k] = v
    return out


def write_results(path, rows: list[dict]) -> None:
    """Write rows atomically (a temporary beside the target, then rename)."""
    from ..io.tempfiles import new_temp_file

    target = Path(path)
    tmp = new_temp_file(target)
    try:
        if output_format(target) == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {k: [r.get(k) for r in rows] for k in COLUMNS}
            pq.write_table(pa.table(cols), tmp)
        else:
            import csv

            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
                w.writeheader()
                w.writerows(rows)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ResultsSink:
    """The journal and the output of one trial."""

    def __init__(self, output):
        self.output = Path(output)
        output_format(self.output)
        if not self.output.parent.exists():
            raise ParameterError(f"{self.output.parent}: no such folder for the results")
        self.done = read_journal(self.output)
        self._fh = open(journal_path(self.output), "a", encoding="utf-8")
        self._last = 0.0
        self._dirty = False

    def add(self, record: dict) -> None:
        self._fh.write(json.dumps(record, allow_nan=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done[record["run_id"]] = record
        self._dirty = True
        if time.monotonic() - self._last > REWRITE_SECONDS:
            self.flush()

    def rows(self) -> list[dict]:
        return [r for rec in self.done.values() for r in rec["rows"]]

    def flush(self) -> None:
        if self._dirty or not self.output.exists():
            write_results(self.output, self.rows())
            self._dirty = False
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()
        self._fh.close()


def local_cluster(n_workers: int | None = None):
    """A LocalCluster of one single-threaded worker process per core, on loopback, without a dashboard."""
    from distributed import LocalCluster

    from ..sysinfo import available_memory_bytes

    n = n_workers or max(1, os.cpu_count() or 1)
    limit = int(0.9 * available_memory_bytes() / n)
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=limit, host="127.0.0.1",
                        dashboard_address=None, env=env, silence_logs=50)


def run_trial(spec: TrialSpec, output, *, scheduler: str = "local", n_workers: int | None = None,
              max_runs: int = MAX_RUNS, on_progress=None) -> dict:
    """Run every run of ``spec`` not already in ``output``'s journal; returns a summary dict."""
    from ..progress import Progress

    if not 1 <= int(max_runs):
        raise ParameterError(f"--max-runs must be positive, got {max_runs}")
    if spec.n_runs > max_runs:
        raise ParameterError(f"the trial has {spec.n_runs} runs, more than --max-runs {max_runs}")
    if scheduler not in ("local", "none") and not str(scheduler).startswith(("tcp://", "tls://", "inproc://")):
        raise ParameterError(f"--scheduler must be local, none or an address like tcp://HOST:PORT, got {scheduler!r}")
    runs = spec.runs()
    sink = ResultsSink(output)
    todo = [r for r in runs if r.run_id not in sink.done]
    skipped = len(runs) - len(todo)
    t0 = time.perf_counter()
    failed = 0
    report = on_progress or (lambda p: None)
    try:
        report(Progress("trial runs", skipped, len(runs)))
        if scheduler == "none":
            for i, r in enumerate(todo):
                rec = run_one(r)
                failed += bool(rec["error"])
                sink.add(rec)
                report(Progress("trial runs", skipped + i + 1, len(runs)))
        elif todo:
            from distributed import Client, as_completed

            cluster = local_cluster(n_workers) if scheduler == "local" else None
            try:
                with Client(cluster if cluster is not None else scheduler, timeout="30s") as client:
                    futures = client.map(run_one, todo, key=[f"volumedr-run-{r.run_id}" for r in todo], pure=False)
                    for i, fut in enumerate(as_completed(futures)):
                        rec = fut.result()
                        failed += bool(rec["error"])
                        sink.add(rec)
                        report(Progress("trial runs", skipped + i + 1, len(runs)))
            except OSError as exc:
                raise ParameterError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
            finally:
                if cluster is not None:
                    cluster.close()
    finally:
        sink.close()
    return {"runs": len(runs), "skipped": skipped, "ran": len(todo), "failed": failed,
            "rows": len(sink.rows()), "seconds": time.perf_counter() - t0, "output": str(sink.output)}
