"""Checkpoints survive a process killed mid-write (SIGKILL), damaged files give a clear error
and never execute code, and training that goes non-finite keeps the last good checkpoint.

Unit tests of the atomic write (a simulated crash, an interrupt, truncation, pickles) are in
test_io.py; these go further: a real process killed while it writes, every truncation and every
flipped byte of a checkpoint, and code in a file that must never run.
"""

import io as _io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import nnx
from nnx import io as nio
from nnx import optim, train
from nnx.data import DataLoader, TensorDataset
from nnx.nn.modules import CrossEntropyLoss, Linear, ReLU, Sequential

# nnx as this process imports it, for the children.
_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(nnx.__file__)), os.environ.get("PYTHONPATH", "")]))


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=_ENV,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _kill(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL


# ---------------------------------------------------------------------------------------------
# SIGKILL while a checkpoint is written


def test_sigkill_in_the_middle_of_a_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.npz"
    previous = {"epoch": 1, "w": np.arange(1000, dtype=np.float32)}
    nio.save(previous, path)
    before = path.read_bytes()
    # The child saves a new checkpoint and blocks halfway through its data (after the first
    # array is written to the temporary file), waiting to be killed.
    p = _child(f"""
        import sys
        import numpy as np
        from nnx import io as nio
        real = np.lib.format.write_array
        calls = []
        def write_then_block(*args, **kwargs):
            real(*args, **kwargs)
            calls.append(1)
            if len(calls) == 2:
                args[0].flush()
                print("HALFWAY", flush=True)
                sys.stdin.read()  # until killed
        np.lib.format.write_array = write_then_block
        nio.save({{"epoch": 2, "a": np.ones(10**6), "b": np.ones(10**6), "c": np.ones(3)}},
                 {str(path)!r})
        print("FINISHED", flush=True)
    """)
    assert p.stdout.readline().strip() == "HALFWAY"
    temporary = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert len(temporary) == 1 and os.path.getsize(tmp_path / temporary[0]) > 8 * 10**6
    _kill(p)
    assert path.read_bytes() == before
    loaded = nio.load(path)
    assert loaded["epoch"] == 1
    np.testing.assert_array_equal(loaded["w"], previous["w"])
    # The next save replaces it normally; the dead child's temporary file is left alone.
    nio.save({"epoch": 3}, path)
    assert nio.load(path) == {"epoch": 3}


def test_sigkill_at_random_moments_of_repeated_saves_never_corrupts(tmp_path):
    # The child saves versions 1, 2, 3, ... of a 4 MB checkpoint as fast as it can and is
    # killed once it announces version k, at whatever point of a save it has reached by then.
    # The file is always one complete version, k - 1 or later.
    for k in (2, 3, 5, 8):
        path = tmp_path / f"ckpt{k}.npz"
        p = _child(f"""
            import numpy as np
            from nnx import io as nio
            for version in range(1, 1000):
                print(version, flush=True)
                nio.save({{"version": version, "w": np.full(10**6, version, np.float32)}},
                         {str(path)!r})
        """)
        while int(p.stdout.readline()) < k:
            pass
        _kill(p)
        loaded = nio.load(path)
        assert loaded["version"] >= k - 1
        np.testing.assert_array_equal(loaded["w"], np.full(10**6, loaded["version"], np.float32))


def test_sigkill_during_training_then_resume(tmp_path):
    # fit is killed right after it reports an epoch, i.e. while it writes that epoch's
    # checkpoint or trains the next one; the checkpoint loads and the run resumes from it.
    code = f"""
        import numpy as np
        import nnx
        from nnx import optim, train
        from nnx.data import DataLoader, TensorDataset
        from nnx.nn.modules import CrossEntropyLoss, Linear, ReLU, Sequential

        class Report(train.Callback):
            def on_epoch_end(self, epoch, logs):
                print("epoch", epoch, flush=True)
                return False

        nnx.manual_seed(0)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((256, 20)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int64)
        model = Sequential(Linear(20, 256), ReLU(), Linear(256, 2))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
        train.fit(model, CrossEntropyLoss(), opt, loader, epochs=1000, callbacks=[Report()],
                  checkpoint_dir={str(tmp_path)!r}, resume=True, progress=False)
    """
    p = _child(code)
    while p.stdout.readline().split()[1] != "3":
        pass
    _kill(p)
    saved = nio.load(tmp_path / "last.npz")
    assert saved["epoch"] in (2, 3)
    assert len(saved["history"]["epochs"]) == saved["epoch"]
    # Resuming from it (in a fresh process, as after a crash) continues at the next epoch.
    p = _child(code)
    first = int(p.stdout.readline().split()[1])
    _kill(p)
    assert first == saved["epoch"] + 1


# ---------------------------------------------------------------------------------------------
# Damaged files: a clear CheckpointError, never another exception, never different content


def _small_checkpoint(path):
    obj = {"epoch": 4, "w": np.arange(24, dtype=np.float32).reshape(4, 6),
           "b": np.array([1.5, -2.0]), "names": ["a", "b"], "step": (3, None)}
    nio.save(obj, path)
    return obj


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b))
    return a == b and type(a) is type(b)


def test_every_truncation_gives_a_clear_error(tmp_path):
    path = tmp_path / "t.npz"
    _small_checkpoint(path)
    data = path.read_bytes()
    for n in range(len(data)):
        path.write_bytes(data[:n])
        with pytest.raises(nio.CheckpointError, match="t.npz"):
            nio.load(path)


def test_every_flipped_byte_is_caught_or_harmless(tmp_path):
    # A flipped byte in an array, the JSON or a header is detected (zip CRC, format checks); a
    # few bytes are not read at all (timestamps, the local headers' copies of the central
    # directory): then the content is the same. Never silently different data.
    path = tmp_path / "f.npz"
    original = _small_checkpoint(path)
    data = path.read_bytes()
    caught = harmless = 0
    for i in range(len(data)):
        for flip in (0x01, 0x55, 0xFF):
            damaged = bytearray(data)
            damaged[i] ^= flip
            path.write_bytes(bytes(damaged))
            try:
                loaded = nio.load(path)
            except nio.CheckpointError as e:
                assert "f.npz" in str(e)
                caught += 1
            else:
                assert _same(original, loaded), f"byte {i} ^ {flip} changed the content"
                harmless += 1
    assert caught > 1.5 * len(data)


class _Payload:
    """Unpickling it creates a file: the proof that code from a checkpoint ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_npy(obj) -> bytes:
    a = np.empty(1, dtype=object)
    a[0] = obj
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("where", ["array", "json-as-npy", "nested-dtype", "unreferenced"])
def test_loading_never_executes_code_from_the_file(tmp_path, where):
    marker = tmp_path / "code-ran"
    payload = _pickled_npy(_Payload(marker))
    meta = {"format": "nnx-checkpoint", "version": 1, "root": {"x": {"__array__": "a0"}}}
    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        if where == "array":
            zf.writestr("a0.npy", payload)
            zf.writestr("nnx.json", json.dumps(meta))
        elif where == "json-as-npy":  # np.load maps "nnx.json" to "nnx.json.npy" too
            zf.writestr("nnx.json.npy", payload)
        elif where == "nested-dtype":
            rec = np.zeros(1, dtype=[("a", np.float32), ("b", object)])
            rec[0]["b"] = _Payload(marker)
            buf = _io.BytesIO()
            np.lib.format.write_array(buf, rec, allow_pickle=True)
            zf.writestr("a0.npy", buf.getvalue())
            zf.writestr("nnx.json", json.dumps(meta))
        else:  # an entry nothing refers to is never read
            zf.writestr("a0.npy", _npy(np.ones(2)))
            zf.writestr("a1.npy", payload)
            zf.writestr("nnx.json", json.dumps(meta))
    try:
        nio.load(path)
    except nio.CheckpointError as e:
        assert "evil.npz" in str(e)
    assert not marker.exists(), "loading a checkpoint executed code from it"
    # The same payload unpickled on purpose does run: the test can tell.
    np.load(_io.BytesIO(payload), allow_pickle=True)
    assert marker.exists()


def _npy(a) -> bytes:
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Training that goes non-finite keeps the last good checkpoint (TerminateOnNaN)


class _PoisonedSGD(optim.SGD):
    """SGD whose update number ``at`` writes an infinity into the first weight, as an exploding
    update would: every batch loss stays finite until the next forward."""

    def __init__(self, params, at, **kw):
        super().__init__(params, **kw)
        self.at, self.count = at, 0

    def step(self):
        super().step()
        self.count += 1
        if self.count == self.at:
            with nnx.no_grad():
                self.param_groups[0]["params"][0].data[0, 0] = np.inf


def _setup(at, val_nan=False):
    nnx.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    opt = _PoisonedSGD(model.parameters(), at=at, lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)  # 4 batches per epoch
    xv = x[:16].copy()
    if val_nan:
        xv[3, 1] = np.nan
    val = DataLoader(TensorDataset(xv, y[:16]), batch_size=16)
    return model, opt, loader, val


def test_without_the_callback_a_poisoned_epoch_reaches_the_checkpoint(tmp_path):
    # What TerminateOnNaN is for: the last update of epoch 2 makes a weight infinite; no batch
    # loss of epoch 2 sees it, so fit saves it; epoch 3 then stops on its first loss.
    model, opt, loader, _ = _setup(at=8)
    hist = train.fit(model, CrossEntropyLoss(), opt, loader, epochs=4, checkpoint_dir=tmp_path,
                     progress=False)
    assert "non-finite loss" in hist.stop_reason and len(hist) == 2
    assert not np.isfinite(nio.load(tmp_path / "last.npz")["model"]["0.weight"]).all()


def test_terminate_on_nan_rejects_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    model, opt, loader, _ = _setup(at=8)
    cb = train.TerminateOnNaN()
    hist = train.fit(model, CrossEntropyLoss(), opt, loader, epochs=4, callbacks=[cb],
                     checkpoint_dir=tmp_path, progress=False)
    assert hist.stop_reason == "non-finite values in 0.weight after epoch 2"
    assert len(hist) == 1  # epoch 2 is discarded
    saved = nio.load(tmp_path / "last.npz")
    assert saved["epoch"] == 1
    for k, v in model.state_dict().items():  # the model is back at the end of epoch 1
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, saved["model"][k])
    # Resuming continues from epoch 1's checkpoint.
    model2, opt2, loader2, _ = _setup(at=0)
    hist2 = train.fit(model2, CrossEntropyLoss(), opt2, loader2, epochs=3,
                      callbacks=[train.TerminateOnNaN()], checkpoint_dir=tmp_path, resume=True,
                      progress=False)
    assert hist2["epoch"] == [1, 2, 3] and hist2.stop_reason is None


def test_terminate_on_nan_watches_validation(tmp_path):
    model, opt, loader, val = _setup(at=0, val_nan=True)
    hist = train.fit(model, CrossEntropyLoss(), opt, loader, epochs=3, val_loader=val,
                     callbacks=[train.TerminateOnNaN(monitor="val_loss",
                                                     check_parameters=False)],
                     checkpoint_dir=tmp_path, progress=False)
    assert hist.stop_reason == "non-finite val_loss nan at epoch 1"
    assert len(hist) == 0
    assert not (tmp_path / "last.npz").exists()  # no good epoch, no checkpoint
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_terminate_on_nan_checks_its_monitor_exists():
    model, opt, loader, _ = _setup(at=0)
    with pytest.raises(ValueError, match="val_loss"):
        train.fit(model, CrossEntropyLoss(), opt, loader, epochs=1, progress=False,
                  callbacks=[train.TerminateOnNaN(monitor="val_loss")])


def test_terminate_on_nan_lets_a_finite_run_finish(tmp_path):
    model, opt, loader, val = _setup(at=0)
    hist = train.fit(model, CrossEntropyLoss(), opt, loader, epochs=3, val_loader=val,
                     callbacks=[train.TerminateOnNaN()], checkpoint_dir=tmp_path, progress=False)
    assert len(hist) == 3 and hist.stop_reason is None
    assert nio.load(tmp_path / "last.npz")["epoch"] == 3
