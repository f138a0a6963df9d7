"""Reader for the IDX format of MNIST-style datasets, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the values in row-major order, big-endian. The reader checks every part of
that contract and raises ``ValueError`` naming the file and the fault, so a corrupt or truncated
download can never be returned as an array of garbage.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

# Type byte of the magic number -> big-endian numpy dtype of the payload.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed IDX bytes of ``path`` (gunzipped when the name ends in ``.gz``)."""
    with open(path, "rb") as f:
        raw = f.read()
    return decompress_idx(raw, path)


def decompress_idx(raw: bytes, path: str | os.PathLike) -> bytes:
    """Gunzips ``raw`` (the contents of ``path``) when ``path`` ends in ``.gz``."""
    if not os.fspath(path).endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip reports a cut-off stream as EOFError and a damaged one as BadGzipFile/zlib.error.
        raise ValueError(f"{os.fspath(path)}: not a valid gzip file ({exc}); delete it and "
                         f"fetch it again") from exc


def parse_idx(buf: bytes, path: str | os.PathLike = "<bytes>",
              expected_magic: int | None = None) -> np.ndarray:
    """Parses uncompressed IDX bytes into an array of the native-endian dtype.

    ``expected_magic`` (e.g. ``0x00000803`` for uint8 images, ``0x00000801`` for uint8 labels)
    rejects a file of the wrong kind. A uint8 result is a read-only view of ``buf``; other
    dtypes are converted to native byte order (a copy).
    """
    name = os.fspath(path)
    if len(buf) < 4:
        raise ValueError(f"{name}: IDX file too short for a header ({len(buf)} bytes)")
    magic = struct.unpack(">I", buf[:4])[0]
    zeros, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zeros != 0 or type_code not in IDX_DTYPES:
        raise ValueError(f"{name}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTDD with "
                         f"type TT in {', '.join(f'{t:02X}' for t in IDX_DTYPES)})")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{name}: IDX magic number is 0x{magic:08X}, expected "
                         f"0x{expected_magic:08X}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"{name}: IDX header announces {ndim} dimensions but the file has only "
                         f"{len(buf)} bytes")
    shape = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(buf) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(f"{name}: IDX payload {kind}: shape {tuple(shape)} needs {expected} "
                         f"bytes of data, the file has {got}")
    array = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    return array


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Reads an IDX file (``.gz`` or plain) into a numpy array; see ``parse_idx``."""
    return parse_idx(read_idx_bytes(path), path, expected_magic)
