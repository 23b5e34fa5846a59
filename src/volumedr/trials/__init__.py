"""Virtual clinical trials: protocol studies over cases, doses and sweeps, run as Dask tasks (Qt-free)."""
from .spec import RunSpec, TrialSpec, make_spec, read_toml

__all__ = ["RunSpec", "TrialSpec", "make_spec", "read_toml"]
