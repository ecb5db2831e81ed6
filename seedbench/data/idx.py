"""Readers for the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.

Every structural fault is reported as a DataError naming the file, so a truncated download or a
swapped file is diagnosed before training starts instead of surfacing as a shape error later.
Only unsigned-byte files are accepted: MNIST-style images and labels are bytes, and a label file
of floats or wider integers is a different file (a float 3.7 would otherwise become class 3).
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
_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _read_bytes(path: Path) -> bytes:
    """The file's (decompressed) bytes; a missing, unreadable or corrupt file is one DataError line."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an IDX file; remove it and put the downloaded file there")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing; put the IDX file there (or re-download the dataset)") from None
    except EOFError:
        raise DataError(f"{path}: cannot read: truncated gzip file (the compressed stream ends early); re-download it") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: corrupt gzip file ({_one_line(exc)}); re-download it") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_one_line(exc.strerror or exc)}); check the file's permissions or re-download it") from None


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file and check its magic number, element type, rank and length."""
    raw = _read_bytes(path)
    what = "images" if expected_ndim == 3 else "labels"
    if len(raw) < 4:
        raise DataError(f"{path}: truncated file ({len(raw)} bytes, no IDX header); re-download it")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code not in _DTYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, not an IDX file; check the file name")
    if dtype_code != _UBYTE:
        raise DataError(
            f"{path}: IDX {what} stored as {_TYPE_NAMES[dtype_code]} (type 0x{dtype_code:02x}); MNIST-format "
            f"{what} must be unsigned bytes (type 0x08), so this is not an MNIST-format file; re-download it"
        )
    if ndim != expected_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim} ({what}); are images and labels swapped?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download the file")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[dtype_code])
    count = int(np.prod(shape, dtype=np.int64))
    needed = count * dtype.itemsize
    if len(raw) - header < needed:
        raise DataError(f"{path}: truncated file: header promises {needed} data bytes, found {len(raw) - header}; re-download it")
    if len(raw) - header > needed:
        raise DataError(
            f"{path}: {len(raw) - header - needed} bytes after the {needed} data bytes the header promises; "
            "the file is corrupt or not what its name says, re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)


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
