"""Readers for the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.

Every structural fault is reported as a DataError naming the file, so a truncated download or a
swapped file is diagnosed before training starts instead of surfacing as a shape error later.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from seedbench.errors import DataError

# The third byte of the magic number encodes the element type; MNIST-style files use unsigned bytes.
_UBYTE = 0x08
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); re-download the file") from None


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file and check its magic number, rank and length."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated file ({len(raw)} bytes, no IDX header); re-download it")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code not in _DTYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, not an IDX file; check the file name")
    if ndim != expected_ndim:
        raise DataError(
            f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim} "
            f"({'images' if expected_ndim == 3 else 'labels'}); are images and labels swapped?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download the file")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[dtype_code])
    needed = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header < needed:
        raise DataError(
            f"{path}: truncated file: header promises {needed} data bytes, found {len(raw) - header}; "
            "re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzip if the name ends in .gz); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
