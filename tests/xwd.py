"""Read an X Window Dump (what ``xwd -root`` writes) into an RGB array: a screenshot of a real X screen."""
from __future__ import annotations

import struct

import numpy as np


def read_xwd(data: bytes) -> np.ndarray:
    """(height, width, 3) uint8 from a true-colour ZPixmap XWD of depth 24 (24 or 32 bits per pixel)."""
    fields = struct.unpack(">25I", data[:100])
    (header_size, version, pixmap_format, depth, width, height, _xoff, byte_order, _unit, _bit_order, _pad,
     bits_per_pixel, bytes_per_line, _visual, red_mask, green_mask, blue_mask, _bits_rgb, _cmap_entries, ncolors,
     *_rest) = fields
    if version != 7 or pixmap_format != 2:
        raise ValueError(f"not a ZPixmap XWD file (version {version}, format {pixmap_format})")
    if depth not in (24, 32) or bits_per_pixel not in (24, 32):
        raise ValueError(f"expected a true-colour screen of depth 24, got {bits_per_pixel} bits at depth {depth}")
    start = header_size + 12 * ncolors
    step = bits_per_pixel // 8  # Xvfb's depth-24 screens store 3 bytes a pixel in lines padded to 4 per pixel
    rows = np.frombuffer(data, np.uint8, count=height * bytes_per_line, offset=start).reshape(height, bytes_per_line)
    px = rows[:, : width * step].reshape(height, width, step).astype(np.uint32)
    order = range(step) if byte_order == 0 else range(step - 1, -1, -1)  # LSBFirst: byte 0 is the lowest
    raw = sum(px[:, :, i] << np.uint32(8 * k) for k, i in enumerate(order))

    def channel(mask):
        shift = (mask & -mask).bit_length() - 1
        return ((raw & mask) >> shift).astype(np.uint8)

    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)
