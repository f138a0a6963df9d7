"""The training loop: learning, exact resume, early stopping, NaN stop, progress output."""

import os

import numpy as np
import pytest

import nnx
import nnx.io
from nnx import optim, train
from nnx.data import DataLoader, TensorDataset
from nnx.nn.modules import CrossEntropyLoss, Dropout, Linear, Module, ReLU, Sequential


def blobs(n=240, seed=0):
    """Three separable Gaussian blobs in 2-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = rng.integers(0, 3, n)
    x = centers[y] + 0.5 * rng.standard_normal((n, 2))
    return x.astype(np.float32), y.astype(np.int64)


def setup(seed=0, lr=0.05, dropout=0.1, loader_seed=None):
    nnx.manual_seed(seed)
    model = Sequential(Linear(2, 16), ReLU(), Dropout(dropout), Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=lr)
    x, y = blobs()
    train_loader = DataLoader(TensorDataset(x[:200], y[:200]), batch_size=16, shuffle=True,
                              generator=loader_seed)
    val_loader = DataLoader(TensorDataset(x[200:], y[200:]), batch_size=32)
    return model, opt, train_loader, val_loader


def test_tiny_classification_learns(capsys):
    model, opt, tl, vl = setup()
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=5, val_loader=vl,
                     scheduler=sched, progress=None)
    assert len(hist) == 5 and hist.stop_reason is None
    assert hist["loss"][-1] < 0.2 < hist["loss"][0]
    assert hist["val_accuracy"][-1] > 0.95
    assert hist["lr"] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])
    assert all(r["samples_per_s"] > 0 and r["time"] > 0 for r in hist.epochs)
    assert model.training  # fit leaves the model in training mode
    scores = train.evaluate(model, vl, CrossEntropyLoss())
    assert scores["accuracy"] == hist["val_accuracy"][-1]
    assert scores["loss"] == pytest.approx(hist["val_loss"][-1])
    err = capsys.readouterr().err  # not a terminal: one summary line per epoch
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 5 and "val_accuracy" in lines[-1] and "samples/s" in lines[-1]


def test_silent_progress_and_custom_metric(capsys):
    model, opt, tl, _ = setup()

    def error_rate(out, target):
        return float(np.mean(out.argmax(1) != target))

    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=1,
                     metrics=("accuracy", error_rate), progress=False)
    assert capsys.readouterr().err == ""
    assert hist["accuracy"][0] + hist["error_rate"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown metric"):
        train.fit(model, CrossEntropyLoss(), opt, tl, epochs=1, metrics=("f1",))


@pytest.mark.parametrize("loader_seed", [None, 7])
def test_resume_gives_the_uninterrupted_trajectory(tmp_path, loader_seed):
    loss = CrossEntropyLoss()

    def run(epochs, ckpt, resume, seed=0):
        model, opt, tl, vl = setup(seed=seed, loader_seed=loader_seed)
        sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.7)
        stopper = train.EarlyStopping(patience=5)
        hist = train.fit(model, loss, opt, tl, epochs=epochs, val_loader=vl, scheduler=sched,
                         callbacks=[stopper], checkpoint_dir=ckpt, resume=resume,
                         progress=False)
        return hist, model

    full, full_model = run(3, None, False)
    ckpt = tmp_path / "ckpt"
    first, _ = run(1, ckpt, False)
    assert os.path.exists(ckpt / "last.npz")
    # Another seed: everything that matters must come from the checkpoint.
    resumed, resumed_model = run(3, ckpt, True, seed=123)
    assert len(resumed) == 3
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert resumed[key] == full[key], key
    for (k, a), (_, b) in zip(full_model.state_dict().items(),
                              resumed_model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    saved = nnx.io.load(ckpt / "last.npz")
    assert saved["epoch"] == 3 and len(saved["history"]["epochs"]) == 3


def test_resume_without_checkpoint_starts_fresh(tmp_path, capsys):
    model, opt, tl, _ = setup()
    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=1, checkpoint_dir=tmp_path,
                     resume=True)
    assert len(hist) == 1 and "starting from scratch" in capsys.readouterr().err
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train.fit(model, CrossEntropyLoss(), opt, tl, epochs=1, resume=True)


def test_early_stopping():
    model, opt, tl, vl = setup(lr=0.0)  # nothing changes: val_loss never improves
    stopper = train.EarlyStopping(monitor="val_loss", patience=2)
    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=10, val_loader=vl,
                     callbacks=[stopper], progress=False)
    assert len(hist) == 3 and stopper.stopped_epoch == 3
    assert "early stopping" in hist.stop_reason
    acc_stop = train.EarlyStopping(monitor="accuracy", patience=1, min_delta=0.5)
    assert acc_stop.mode == "max"
    with pytest.raises(ValueError, match="val_loss"):
        train.fit(model, CrossEntropyLoss(), opt, tl, epochs=1,
                  callbacks=[train.EarlyStopping()], progress=False)


class Exploding(Module):
    """A linear model whose output becomes NaN from a given epoch on."""

    def __init__(self, bad_epoch):
        super().__init__()
        self.lin = Linear(2, 3)
        self.bad_epoch = bad_epoch
        self.epoch_batches = 0

    def forward(self, x):
        self.epoch_batches += 1
        out = self.lin(x)
        if self.epoch_batches > 13 * (self.bad_epoch - 1) + 5:
            out = out * float("nan")
        return out


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, capsys):
    nnx.manual_seed(0)
    model = Exploding(bad_epoch=3)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = blobs()
    tl = DataLoader(TensorDataset(x[:200], y[:200]), batch_size=16, shuffle=True)  # 13 batches
    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=5, checkpoint_dir=tmp_path)
    assert len(hist) == 2 and "non-finite loss nan at epoch 3, batch 6" in hist.stop_reason
    assert "stopping" in capsys.readouterr().err
    saved = nnx.io.load(tmp_path / "last.npz")
    assert saved["epoch"] == 2
    # The model is back at the end of epoch 2 (the checkpointed weights), not NaN.
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, saved["model"][k])
    assert all(np.isfinite(v).all() for v in model.state_dict().values())
    state = opt.state_dict()["state"]
    np.testing.assert_array_equal(state[0]["momentum_buffer"],
                                  saved["optimizer"]["state"][0]["momentum_buffer"])


def test_plot_history(tmp_path, capsys):
    model, opt, tl, vl = setup()
    hist = train.fit(model, CrossEntropyLoss(), opt, tl, epochs=2, val_loader=vl, progress=False)
    out = train.plot_history(hist, tmp_path / "h.png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out is None and "matplotlib" in capsys.readouterr().err
    else:
        assert os.path.getsize(out) > 0
    assert "History(2 epochs" in repr(hist) and set(hist.history) >= {"loss", "val_loss"}


class FakeBar:
    bars = []

    def __init__(self, total=None, desc="", **kwargs):
        self.total, self.desc, self.n, self.postfix, self.closed = total, desc, 0, None, False
        FakeBar.bars.append(self)

    def update(self, n=1):
        self.n += n

    def set_postfix(self, postfix, refresh=True):
        self.postfix = dict(postfix)

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def close(self):
        self.closed = True


def test_progress_bar_with_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(train, "_tqdm", lambda: FakeBar)
    FakeBar.bars = []
    model, opt, tl, vl = setup()
    train.fit(model, CrossEntropyLoss(), opt, tl, epochs=2, val_loader=vl, progress=True)
    assert [b.desc for b in FakeBar.bars] == ["epoch 1/2", "epoch 2/2"]
    assert all(b.n == b.total == 13 and b.closed for b in FakeBar.bars)
    assert "val_accuracy" in FakeBar.bars[-1].postfix and "samples/s" in FakeBar.bars[-1].postfix
    assert "epoch 1/2" not in capsys.readouterr().err  # the bar replaces the summary line
