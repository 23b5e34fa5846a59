"""What a virtual clinical trial runs: lists of protocol parameters whose product is the set of runs.

A trial is a TOML file (docs/trials.md) or command-line lists; every list may be given or left to the
case's own protocol (``None``).  Everything is checked here, before anything starts, and each problem
is one line naming the parameter.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import asdict, dataclass, fields

from ..errors import ParameterError

#: parameter name -> (type, low, high, unit); None = the case's protocol value
LIMITS = {
    "angle_deg": (float, 2.0, 90.0, "degrees"),
    "projections": (int, 3, 200, "views"),
    "kvp": (float, 40.0, 150.0, "kVp"),
    "mas": (float, 0.01, 2000.0, "mAs"),
    "bin": (int, 1, 32, "x binning"),
    "spacing_mm": (float, 0.5, 50.0, "mm"),
    "thickness_mm": (float, 0.5, 50.0, "mm"),
}
SWEEPS = ("linear", "arc", "opposed")
METHODS = ("fbp", "saa", "sart")
MAX_RUNS = 10_000
MAX_SEEDS = 1000


@dataclass(frozen=True)
class RunSpec:
    """One examination of a trial: a case, a protocol, a reconstruction and a noise seed."""

    case: str
    sweep: str | None
    angle_deg: float | None
    projections: int | None
    kvp: float | None
    mas: float | None
    bin: int
    method: str
    mar: bool
    spacing_mm: float | None
    thickness_mm: float | None
    seed: int

    @property
    def key(self) -> str:
        """A stable, readable identity: the same parameters give the same key on every machine."""
        return "|".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))

    @property
    def run_id(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrialSpec:
    """The lists of a trial (each a tuple; ``(None,)`` = the case's protocol)."""

    cases: tuple[str, ...]
    sweeps: tuple = (None,)
    angles_deg: tuple = (None,)
    projections: tuple = (None,)
    kvps: tuple = (None,)
    mas: tuple = (None,)
    bins: tuple = (8,)
    methods: tuple = ("fbp",)
    mar: tuple = (False,)
    spacings_mm: tuple = (None,)
    thicknesses_mm: tuple = (None,)
    seeds: tuple = (0,)

    def runs(self) -> list[RunSpec]:
        out = []
        for c, sw, a, n, kv, m, b, me, mar, sp, th, sd in itertools.product(
                self.cases, self.sweeps, self.angles_deg, self.projections, self.kvps, self.mas, self.bins,
                self.methods, self.mar, self.spacings_mm, self.thicknesses_mm, self.seeds):
            out.append(RunSpec(c, sw, a, n, kv, m, b, me, mar, sp, th, sd))
        return out

    @property
    def n_runs(self) -> int:
        return math.prod(len(getattr(self, f.name)) for f in fields(self))


def _number(name: str, value, kind):
    if isinstance(value, bool):
        raise ParameterError(f"{name}: {value!r} is not a number")
    try:
        v = kind(value) if kind is float else int(str(value).strip()) if isinstance(value, str) else value
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: {value!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise ParameterError(f"{name}: {value!r} is not an integer")
    if kind is float and not math.isfinite(float(v)):
        raise ParameterError(f"{name}: {value!r} is not a finite number")
    return kind(v)


def _list(name: str, values, check) -> tuple:
    if values is None:
        return (None,)
    if not isinstance(values, (list, tuple)):
        values = [values]
    if len(values) == 0:
        raise ParameterError(f"{name}: the list is empty")
    out = tuple(check(v) for v in values)
    if len(set(out)) != len(out):
        raise ParameterError(f"{name}: {list(values)} repeats a value")
    return out


def _ranged(limit: str, name: str | None = None):
    kind, lo, hi, unit = LIMITS[limit]
    name = name or limit

    def check(v):
        x = _number(name, v, kind)
        if not lo <= x <= hi:
            raise ParameterError(f"{name}: {v} is out of range ({lo:g} to {hi:g} {unit})")
        return x

    return check


def _choice(name: str, options):
    def check(v):
        s = str(v).strip().lower()
        if s not in options:
            raise ParameterError(f"{name}: {v!r} is not one of {', '.join(options)}")
        return s

    return check


def _bool(name: str):
    def check(v):
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in ("on", "true", "yes", "1", "mar"):
            return True
        if s in ("off", "false", "no", "0", "none"):
            return False
        raise ParameterError(f"{name}: {v!r} is not on/off")

    return check


def _case(v) -> str:
    from ..phantoms.case import case_names

    s = str(v).strip()
    if s.endswith(".toml"):
        from pathlib import Path

        if not Path(s).is_file():
            raise ParameterError(f"cases: the case file {s} does not exist")
        return s
    if s not in case_names():
        raise ParameterError(f"cases: unknown case {s!r} (bundled: {', '.join(case_names())})")
    return s


def _seeds(v) -> tuple:
    """An integer N (seeds 0..N-1) or a list of seeds."""
    if isinstance(v, (list, tuple)):
        return _list("seeds", v, lambda s: _seed(s))
    n = _number("seeds", v, int)
    if not 1 <= n <= MAX_SEEDS:
        raise ParameterError(f"seeds: {v} is out of range (1 to {MAX_SEEDS} seeds)")
    return tuple(range(n))


def _seed(v) -> int:
    s = _number("seeds", v, int)
    if not 0 <= s < 2**32:
        raise ParameterError(f"seeds: {v} is out of range (0 to 2^32 - 1)")
    return s


KEYS = {"cases": "cases", "sweep": "sweeps", "angle": "angles_deg", "projections": "projections", "kvp": "kvps",
        "mas": "mas", "bin": "bins", "method": "methods", "mar": "mar", "spacing": "spacings_mm",
        "thickness": "thicknesses_mm", "seeds": "seeds"}


def make_spec(values: dict) -> TrialSpec:
    """A checked TrialSpec from ``{"cases": [...], "angle": [...], ...}`` (the TOML's ``[trial]`` keys or
    the command line's options; docs/trials.md).  Unknown keys are refused."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ParameterError(f"unknown trial parameter(s): {', '.join(unknown)} (known: {', '.join(KEYS)})")
    if values.get("cases") is None:
        raise ParameterError("cases: no case given (e.g. --cases chest,kub)")
    kw = {
        "cases": _list("cases", values["cases"], _case),
        "sweeps": _list("sweep", values.get("sweep"), _choice("sweep", SWEEPS)),
        "angles_deg": _list("angle", values.get("angle"), _ranged("angle_deg", "angle")),
        "projections": _list("projections", values.get("projections"), _ranged("projections")),
        "kvps": _list("kvp", values.get("kvp"), _ranged("kvp")),
        "mas": _list("mas", values.get("mas"), _ranged("mas")),
        "bins": _list("bin", values.get("bin", [8]), _ranged("bin")),
        "methods": _list("method", values.get("method", ["fbp"]), _choice("method", METHODS)),
        "mar": _list("mar", values.get("mar", [False]), _bool("mar")),
        "spacings_mm": _list("spacing", values.get("spacing"), _ranged("spacing_mm", "spacing")),
        "thicknesses_mm": _list("thickness", values.get("thickness"), _ranged("thickness_mm", "thickness")),
        "seeds": _seeds(values.get("seeds", 1)),
    }
    return TrialSpec(**kw)


def read_toml(path) -> dict:
    """The ``[trial]`` table of a trial file, with errors that name the file."""
    import tomllib
    from pathlib import Path

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"{p}: no such trial file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{p}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"{p}: not valid TOML ({exc})") from None
    if not isinstance(data.get("trial"), dict):
        raise ParameterError(f"{p}: no [trial] table")
    extra = sorted(set(data) - {"trial"})
    if extra:
        raise ParameterError(f"{p}: unknown table(s) {', '.join(extra)} (a trial file has one [trial] table)")
    return dict(data["trial"])
