"""Checkpoint files: round trip, atomic replacement, corrupt files, and no unpickling ever."""

import io as _io
import json
import os
import pickle
import time
import zipfile

import numpy as np
import pytest

from nnx import io as nio


def _sample():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((3, 4)).astype(np.float32),
                  "0.bias": np.zeros(3, np.float32)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones((3, 4))}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                        "nesterov": False, "name": None}]},
        "epoch": 7,
        "history": [{"loss": 0.5, "acc": float("nan")}, {"loss": float("inf")}],
        "labels": np.arange(5, dtype=np.int64),
        "mask": np.array([True, False]),
        "names": np.array(["a", "bc"]),
        "scalar": np.float32(2.5),
        "zero_d": np.array(3.0),
        "rng": {"state": {"state": 2**127 + 12345, "inc": 2**100}},
        "__array__": "a key that looks like a tag",
        "empty": np.zeros((0, 5), np.float32),
    }


def _assert_same(a, b):
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, np.generic):
        assert b == a.item()
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and type(a) is type(b)


def test_round_trip(tmp_path):
    obj = _sample()
    path = tmp_path / "ckpt.npz"
    nio.save(obj, path)
    _assert_same(obj, nio.load(path))
    # The int keys of the optimizer state and the tuple of betas survive.
    loaded = nio.load(str(path))
    assert 0 in loaded["optimizer"]["state"]
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_file_is_a_plain_npz_with_a_json_entry(tmp_path):
    path = tmp_path / "c.npz"
    nio.save({"w": np.arange(3.0)}, path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("nnx.json"))
    assert "nnx.json" in names and any(n.endswith(".npy") for n in names)
    assert meta["format"] == "nnx-checkpoint"
    with np.load(path, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz[meta["root"]["w"]["__array__"]], np.arange(3.0))


def test_unsupported_values_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        nio.save({"x": np.array([{}, 1], dtype=object)}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match="set"):
        nio.save({"x": {1, 2}}, tmp_path / "b.npz")
    assert os.listdir(tmp_path) == []


def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    old = {"epoch": 1, "w": np.arange(10.0)}
    nio.save(old, path)
    before = path.read_bytes()

    def crash(f, arrays, meta):
        f.write(b"PK\x03\x04 partial archive")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(nio, "_write_npz", crash)
    with pytest.raises(OSError, match="simulated"):
        nio.save({"epoch": 2, "w": np.zeros(10)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]  # the temporary file is gone too
    monkeypatch.undo()
    _assert_same(old, nio.load(path))


def test_interrupt_mid_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    nio.save({"epoch": 1}, path)
    real = np.lib.format.write_array
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nio.save({"epoch": 2, "a": np.ones(3), "b": np.ones(4)}, path)
    monkeypatch.undo()
    assert nio.load(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["last.npz"]


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9])
def test_truncated_file_raises_clear_error(tmp_path, keep):
    path = tmp_path / "ckpt.npz"
    nio.save({"w": np.arange(1000.0), "b": np.ones(3)}, path)
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:n])
    with pytest.raises(nio.CheckpointError, match="ckpt.npz"):
        nio.load(path)


def test_garbage_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(nio.CheckpointError, match="junk.npz"):
        nio.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.ones(3))
    with pytest.raises(nio.CheckpointError, match="not an nnx checkpoint"):
        nio.load(foreign)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        nio.load(tmp_path / "missing.npz")


def test_loading_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a checkpoint file$"):
        nio.load(tmp_path)
    nio.save({"epoch": 1}, tmp_path / "last.npz")  # what nnx.train.fit writes there
    with pytest.raises(IsADirectoryError, match=r"did you mean .*last\.npz"):
        nio.load(tmp_path)


def test_corrupt_entry_is_reported(tmp_path):
    path = tmp_path / "c.npz"
    nio.save({"w": np.arange(100.0)}, path)
    data = bytearray(path.read_bytes())
    i = data.find(b"\x93NUMPY")
    data[i + 10:i + 40] = b"X" * 30  # inside the .npy header
    path.write_bytes(bytes(data))
    with pytest.raises(nio.CheckpointError, match="c.npz"):
        nio.load(path)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_array_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "evil.npz"
    evil = np.empty(1, dtype=object)
    evil[0] = _Boom()
    meta = {"format": "nnx-checkpoint", "version": 1, "root": {"x": {"__array__": "a0"}}}
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, evil, allow_pickle=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a0.npy", buf.getvalue())
        zf.writestr("nnx.json", json.dumps(meta))
    called = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: called.append(1))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: called.append(1))
    with pytest.raises(nio.CheckpointError, match="pickle"):
        nio.load(path)
    assert called == []


def test_save_removes_stale_temporaries_of_killed_saves(tmp_path):
    # A save killed before its rename leaves ".name.XXXX.tmp"; the next save of that path removes
    # such leftovers once they are an hour old, and leaves younger ones (a save in progress).
    path = tmp_path / "ckpt.npz"
    stale, fresh = tmp_path / ".ckpt.npz.old1.tmp", tmp_path / ".ckpt.npz.new1.tmp"
    other = tmp_path / ".other.npz.old2.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"partial")
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    nio.save({"a": np.arange(3)}, path)
    assert not stale.exists() and fresh.exists() and other.exists()
    np.testing.assert_array_equal(nio.load(path)["a"], np.arange(3))
