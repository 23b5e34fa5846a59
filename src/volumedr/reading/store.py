"""The reading database: trainees, sessions, the cases shown, marks, timings and scores (SQLite).

A real embedded database through the standard library's ``sqlite3``, in WAL mode with
``synchronous=FULL``: every mark is committed as it is made, so a crash or a power cut loses at most
the mark being placed, and a session can be resumed where it stopped.  Its default place follows the
platform's conventions for user data (``platformdirs.user_data_dir("volumedr")``, e.g.
``~/.local/share/volumedr/reading.sqlite3`` on Linux); ``--db PATH`` overrides it.

Schema (version ``SCHEMA_VERSION``; docs/reading.md):

* ``meta(key, value)``: ``schema_version``;
* ``trainees(id, name UNIQUE, created_utc)``;
* ``sessions(id, trainee_id, created_utc, seed, feedback, cases JSON, finished_utc)``;
* ``shown(id, session_id, position, case_name, variant 'findings'|'normal', seed, started_utc,
  submitted_utc)``: the cases of a session in the order shown;
* ``marks(id, shown_id, modality 'film'|'tomo', x_mm, y_mm, z_mm, confidence 1-5, created_utc,
  deleted)``: a moved mark is updated, a deleted one flagged;
* ``timings(id, shown_id, modality, seconds)`` and ``scores(shown_id, json)`` (version 2).

Opening a database of an older version migrates it in one transaction (``MIGRATIONS``); a newer one, or
a file that is not a volumedr reading database, is refused with one line.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError

SCHEMA_VERSION = 2
MIGRATIONS = {
    1: """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trainees (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_utc TEXT NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, trainee_id INTEGER NOT NULL REFERENCES trainees(id),
    created_utc TEXT NOT NULL, seed INTEGER NOT NULL, feedback INTEGER NOT NULL, cases TEXT NOT NULL,
    finished_utc TEXT);
CREATE TABLE shown (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),
    position INTEGER NOT NULL, case_name TEXT NOT NULL, variant TEXT NOT NULL CHECK (variant IN ('findings', 'normal')),
    seed INTEGER NOT NULL, started_utc TEXT, submitted_utc TEXT, UNIQUE (session_id, position));
CREATE TABLE marks (id INTEGER PRIMARY KEY, shown_id INTEGER NOT NULL REFERENCES shown(id),
    modality TEXT NOT NULL CHECK (modality IN ('film', 'tomo')), x_mm REAL NOT NULL, y_mm REAL NOT NULL,
    z_mm REAL, confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5), created_utc TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0);
""",
    2: """
CREATE TABLE timings (id INTEGER PRIMARY KEY, shown_id INTEGER NOT NULL REFERENCES shown(id),
    modality TEXT NOT NULL CHECK (modality IN ('film', 'tomo')), seconds REAL NOT NULL CHECK (seconds >= 0));
CREATE TABLE scores (shown_id INTEGER PRIMARY KEY REFERENCES shown(id), json TEXT NOT NULL);
""",
}
NORMAL_FRACTION = 0.3  # of the cases of a session drawn as their normal variant (so specificity means something)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0, tzinfo=None).isoformat()


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("volumedr", appauthor=False)) / "reading.sqlite3"


@dataclass(frozen=True)
class Shown:
    id: int
    session_id: int
    position: int
    case_name: str
    variant: str
    seed: int
    submitted: bool


class Store:
    """One reading database (a path, or the platform's default)."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA foreign_keys = ON")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self.db.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ParameterError(f"{self.path}: not a readable volumedr reading database ({exc})") from None
        self.journal_mode = mode

    # -- schema -------------------------------------------------------------------------------------------
    def version(self) -> int:
        has_meta = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            others = self.db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if others:
                raise ParameterError(f"{self.path}: a database, but not a volumedr reading database")
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise ParameterError(f"{self.path}: a reading database without a schema version")
        return int(row[0])

    def _migrate(self) -> None:
        v = self.version()
        if v > SCHEMA_VERSION:
            raise ParameterError(f"{self.path}: reading database schema {v} was made by a newer volumedr "
                                 f"(this one reads up to {SCHEMA_VERSION}); not changed")
        if v == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for step in range(v + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[step].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(step),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    # -- trainees and sessions ----------------------------------------------------------------------------
    def trainee(self, name: str) -> int:
        name = " ".join(str(name).split())
        if not name or len(name) > 100:
            raise ParameterError("a trainee signs in with a name of 1 to 100 characters")
        self.db.execute("INSERT OR IGNORE INTO trainees (name, created_utc) VALUES (?, ?)", (name, _now()))
        return int(self.db.execute("SELECT id FROM trainees WHERE name = ?", (name,)).fetchone()[0])

    def start_session(self, trainee: str, cases, *, seed: int | None = None, feedback: bool = True,
                      normal_fraction: float = NORMAL_FRACTION) -> int:
        """A session of ``cases`` in an order shuffled for this trainee and seed, each case drawn with its
        findings or as its normal variant; returns the session id."""
        cases = [str(c) for c in cases]
        if not cases:
            raise ParameterError("a reading session needs at least one case")
        tid = self.trainee(trainee)
        seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**31)
        rng = random.Random(f"{trainee}|{seed}")
        order = cases[:]
        rng.shuffle(order)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute("INSERT INTO sessions (trainee_id, created_utc, seed, feedback, cases) VALUES "
                                  "(?, ?, ?, ?, ?)", (tid, _now(), seed, int(bool(feedback)), json.dumps(cases)))
            sid = int(cur.lastrowid)
            for pos, case in enumerate(order):
                variant = "normal" if rng.random() < normal_fraction else "findings"
                self.db.execute("INSERT INTO shown (session_id, position, case_name, variant, seed) VALUES "
                                "(?, ?, ?, ?, ?)", (sid, pos, case, variant, rng.randrange(2**31)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return sid

    def shown(self, session_id: int) -> list[Shown]:
        rows = self.db.execute("SELECT id, session_id, position, case_name, variant, seed, submitted_utc FROM shown "
                               "WHERE session_id = ? ORDER BY position", (session_id,)).fetchall()
        return [Shown(*r[:6], r[6] is not None) for r in rows]

    def next_case(self, session_id: int) -> Shown | None:
        """The first case of the session not yet submitted (where a resumed session continues)."""
        return next((s for s in self.shown(session_id) if not s.submitted), None)

    def start_case(self, shown_id: int) -> None:
        """Note when a case was first put in front of the reader (kept when a session is resumed)."""
        self.db.execute("UPDATE shown SET started_utc = ? WHERE id = ? AND started_utc IS NULL", (_now(), shown_id))

    def session(self, session_id: int) -> dict:
        row = self.db.execute("SELECT s.id, t.name, s.created_utc, s.seed, s.feedback, s.cases, s.finished_utc "
                              "FROM sessions s JOIN trainees t ON t.id = s.trainee_id WHERE s.id = ?",
                              (int(session_id),)).fetchone()
        if row is None:
            raise ParameterError(f"no reading session {session_id}")
        return {"id": row[0], "trainee": row[1], "created_utc": row[2], "seed": row[3], "feedback": bool(row[4]),
                "cases": json.loads(row[5]), "finished_utc": row[6]}

    def open_sessions(self, trainee: str) -> list[int]:
        return [int(r[0]) for r in self.db.execute(
            "SELECT s.id FROM sessions s JOIN trainees t ON t.id = s.trainee_id WHERE t.name = ? AND "
            "s.finished_utc IS NULL ORDER BY s.id", (" ".join(str(trainee).split()),))]

    # -- marks, timings, scores ---------------------------------------------------------------------------
    def add_mark(self, shown_id: int, modality: str, x_mm: float, y_mm: float, z_mm: float | None,
                 confidence: int) -> int:
        from .scoring import Mark

        Mark(modality, x_mm, y_mm, z_mm, int(confidence))  # validated before it is stored
        cur = self.db.execute("INSERT INTO marks (shown_id, modality, x_mm, y_mm, z_mm, confidence, created_utc) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)", (shown_id, modality, float(x_mm), float(y_mm),
                                                               None if z_mm is None else float(z_mm), int(confidence),
                                                               _now()))
        return int(cur.lastrowid)

    def move_mark(self, mark_id: int, x_mm: float, y_mm: float, z_mm: float | None = None,
                  confidence: int | None = None) -> None:
        row = self.db.execute("SELECT modality, z_mm, confidence FROM marks WHERE id = ?", (mark_id,)).fetchone()
        if row is None:
            raise ParameterError(f"no mark {mark_id}")
        from .scoring import Mark

        z = row[1] if z_mm is None else z_mm
        c = row[2] if confidence is None else int(confidence)
        Mark(row[0], x_mm, y_mm, z, c)
        self.db.execute("UPDATE marks SET x_mm = ?, y_mm = ?, z_mm = ?, confidence = ? WHERE id = ?",
                        (float(x_mm), float(y_mm), z, c, mark_id))

    def delete_mark(self, mark_id: int) -> None:
        self.db.execute("UPDATE marks SET deleted = 1 WHERE id = ?", (mark_id,))

    def marks(self, shown_id: int):
        from .scoring import Mark

        return [(int(i), Mark(m, x, y, z, c)) for i, m, x, y, z, c in self.db.execute(
            "SELECT id, modality, x_mm, y_mm, z_mm, confidence FROM marks WHERE shown_id = ? AND deleted = 0 "
            "ORDER BY id", (shown_id,))]

    def record_time(self, shown_id: int, modality: str, seconds: float) -> None:
        self.db.execute("INSERT INTO timings (shown_id, modality, seconds) VALUES (?, ?, ?)",
                        (shown_id, modality, float(seconds)))

    def reading_time(self, shown_id: int) -> dict[str, float]:
        return {m: float(s) for m, s in self.db.execute(
            "SELECT modality, sum(seconds) FROM timings WHERE shown_id = ? GROUP BY modality", (shown_id,))}

    def submit(self, shown_id: int, targets, *, sid_mm: float, spacing_mm: float) -> dict:
        """Score the case's marks against its truth (``targets``: none for a normal variant), store it and
        mark the case done; the session is finished when its last case is."""
        from .scoring import score

        res = score([m for _, m in self.marks(shown_id)], targets, sid_mm=sid_mm, spacing_mm=spacing_mm)
        out = {m: r.as_dict() for m, r in res.items()}
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO scores (shown_id, json) VALUES (?, ?)", (shown_id, json.dumps(out)))
            self.db.execute("UPDATE shown SET submitted_utc = ? WHERE id = ?", (_now(), shown_id))
            sid = self.db.execute("SELECT session_id FROM shown WHERE id = ?", (shown_id,)).fetchone()[0]
            left = self.db.execute("SELECT count(*) FROM shown WHERE session_id = ? AND submitted_utc IS NULL",
                                   (sid,)).fetchone()[0]
            if left == 0:
                self.db.execute("UPDATE sessions SET finished_utc = ? WHERE id = ?", (_now(), sid))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return out
