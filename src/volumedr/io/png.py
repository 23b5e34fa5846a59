"""A small dependency-free PNG writer for greyscale previews (docs, CLI)."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .tempfiles import new_temp_file


def to_uint8(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Window an image to 0..255 (default: 0.5th..99.5th percentile)."""
    img = np.asarray(image, dtype=np.float64)
    if window is None:
        finite = img[np.isfinite(img)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    else:
        lo, hi = window
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((img - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a (H, W) uint8 grey or (H, W, 3) uint8 RGB image atomically."""
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8:
        a = to_uint8(a)
    if a.ndim == 2:
        color, rows = 0, a
    elif a.ndim == 3 and a.shape[2] == 3:
        color, rows = 2, a.reshape(a.shape[0], -1)
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {a.shape}")
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path = Path(path)
    tmp = new_temp_file(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(png)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
