"""Numbers read from files (HDF5 attributes, DICOM elements), checked the same way everywhere."""
from __future__ import annotations

import numpy as np


class BadValue(ValueError):
    """A value that is not the finite numbers it should be; the message names the attribute."""


def number_array(value, name: str, count: int | None = None, *, positive: bool = False) -> np.ndarray:
    """``value`` as a 1-D float64 array, or :class:`BadValue` ("attribute NAME must ...")."""
    vals = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else value
    try:
        a = np.array([float(x) for x in np.asarray(vals, dtype=object).reshape(-1)], dtype=np.float64)
    except (TypeError, ValueError):
        raise BadValue(f"attribute {name} must be numbers, got {str(value)[:40]!r}") from None
    if count is not None and a.size != count:
        raise BadValue(f"attribute {name} must have {count} values, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise BadValue(f"attribute {name} must be finite, got {a.tolist()}")
    if positive and np.any(a <= 0):
        raise BadValue(f"attribute {name} must be positive, got {a.tolist()}")
    return a
