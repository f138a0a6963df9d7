"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for nested containers of numpy arrays.

A checkpoint is a ``.npz`` archive (an uncompressed zip): every array is one ``.npy`` entry, and
the structure around them (dicts, lists, tuples, numbers, strings, booleans, None) is one JSON
entry, ``nnx.json``, in which each array appears as a reference to its entry. Nothing is ever
pickled: saving an object array raises, and loading reads with ``allow_pickle=False``, so
opening an untrusted file never executes code.

The archive is written to a temporary file in the destination's directory, flushed to disk
(fsync) and then renamed over the destination, so a crash or an error mid-save leaves the
previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile

import numpy as np

__all__ = ["CheckpointError", "load", "save"]

_META = "nnx.json"
_FORMAT = "nnx-checkpoint"
_VERSION = 1
# Dicts whose keys are all strings (and none of these) are stored as plain JSON objects; any
# other dict, and tuples, are tagged so that integer keys and tuples survive the round trip.
_TAGS = ("__array__", "__dict__", "__tuple__")


class CheckpointError(ValueError):
    """A file that is not a readable nnx checkpoint (truncated, corrupt, or not nnx's)."""


def save(obj, path) -> None:
    """Write ``obj`` to ``path`` atomically (temporary file, fsync, rename).

    ``obj`` may nest dicts (any str/int/float/bool/None keys), lists, tuples, numpy arrays, numpy
    scalars, Python numbers, strings, booleans and None; a ``Tensor`` is stored as its array. The
    path is used as given (no ``.npz`` suffix is appended).
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    root = _encode(obj, arrays, "obj")
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root}).encode()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp creates the file private (0600); give it the mode the file would have had.
            os.chmod(tmp, _file_mode(path))
            _write_npz(f, arrays, meta)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    _remove_stale_temporaries(path)


# A save killed between its temporary file and the rename (SIGKILL, power loss) leaves the
# temporary behind. Those of the same path that are this old cannot belong to a save in progress.
_STALE_SECONDS = 3600.0


def _remove_stale_temporaries(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    prefix = "." + os.path.basename(path) + "."
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        full = os.path.join(directory, name)
        try:
            if now - os.stat(full).st_mtime > _STALE_SECONDS:
                os.unlink(full)
        except OSError:  # gone already, or not ours to remove: leave it
            pass


def load(path):
    """Read a checkpoint written by :func:`save`; arrays come back as numpy arrays, tuples as
    tuples. Raises ``FileNotFoundError`` for a missing file, ``IsADirectoryError`` for a
    directory, and :class:`CheckpointError` (a ``ValueError``) naming the file for anything
    unreadable, including entries that would need unpickling."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"nnx.load: no such file: {path!r}")
    if os.path.isdir(path):
        inside = os.path.join(path, "last.npz")  # where nnx.train.fit keeps its checkpoint
        hint = f"; did you mean {inside!r}?" if os.path.isfile(inside) else ""
        raise IsADirectoryError(f"nnx.load: {path!r} is a directory, not a checkpoint "
                                f"file{hint}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _META not in npz.files:
                raise CheckpointError(f"nnx.load: {path!r} is an npz archive but not an nnx "
                                      f"checkpoint (no {_META} entry)")
            meta = json.loads(npz[_META].decode())
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise CheckpointError(f"nnx.load: {path!r} is not an nnx checkpoint")
            if meta.get("version") != _VERSION:
                raise CheckpointError(f"nnx.load: {path!r} has checkpoint version "
                                      f"{meta.get('version')!r}; this nnx reads {_VERSION}")
            return _decode(meta["root"], npz, path)
    except CheckpointError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise CheckpointError(f"nnx.load: {path!r} contains a pickled (object) array; nnx "
                                  "never unpickles, refusing to load it") from e
        raise CheckpointError(f"nnx.load: {path!r} is truncated or corrupt: {e}") from e
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError,
            zipfile.LargeZipFile, RuntimeError) as e:
        # RuntimeError: zipfile's answer to damaged flags ("encrypted", NotImplementedError
        # for an unknown version) in a file that never had them.
        raise CheckpointError(f"nnx.load: {path!r} is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from e


def _write_npz(f, arrays: dict[str, np.ndarray], meta: bytes) -> None:
    # Stored, not deflated: checkpoints are mostly float noise that does not compress, and
    # stored entries load faster.
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)
        zf.writestr(_META, meta)


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    umask = 0o022
    try:
        # Read, not set: os.umask() would briefly change it for every thread of the process.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(obj, arrays: dict, where: str):
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        return _encode(obj.item(), arrays, where)
    if not isinstance(obj, np.ndarray) and isinstance(getattr(obj, "data", None), np.ndarray) \
            and hasattr(obj, "requires_grad"):
        obj = obj.data
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"nnx.save: {where} is an object array; only plain numeric, bool "
                            "and string arrays can be saved (nnx never pickles)")
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj, order="C")
        return {"__array__": name}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        for k in obj:
            if not (k is None or isinstance(k, (str, int, float, bool))):
                raise TypeError(f"nnx.save: {where} has a key of type {type(k).__name__}; keys "
                                "must be str, int, float, bool or None")
        if all(isinstance(k, str) and k not in _TAGS for k in obj):
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        return {"__dict__": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
    raise TypeError(f"nnx.save: cannot save {where} of type {type(obj).__name__}; expected dicts, "
                    "lists, tuples, numpy arrays, numbers, strings, booleans or None")


def _decode(node, npz, path):
    if isinstance(node, list):
        return [_decode(v, npz, path) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag == "__array__":
            return npz[value + ".npy"]
        if tag == "__tuple__":
            return tuple(_decode(v, npz, path) for v in value)
        if tag == "__dict__":
            return {k: _decode(v, npz, path) for k, v in value}
    return {k: _decode(v, npz, path) for k, v in node.items()}
