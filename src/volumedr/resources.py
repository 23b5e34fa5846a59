"""Locate bundled data: resources/ and phantoms/ at the repository root.

In a source checkout (the supported install, ``pip install -e .``) the data
folders sit beside ``src/``.  ``VOLUMEDR_DATA`` overrides the root.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import VolumedrError


def data_root() -> Path:
    env = os.environ.get("VOLUMEDR_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]


def resource_path(name: str) -> Path:
    p = data_root() / "resources" / name
    if not p.exists():
        raise VolumedrError(f"bundled resource {name!r} not found at {p} (set VOLUMEDR_DATA to the volumedr checkout)")
    return p


def phantoms_dir() -> Path:
    return data_root() / "phantoms"
