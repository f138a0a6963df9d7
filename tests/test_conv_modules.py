"""Conv, pooling, batch-norm and Dropout2d modules, and the LeNet5/ResNet models: reprs, state
dicts, initialisation, train/eval behaviour and PyTorch parity; tiny training runs."""

import math
import os

import numpy as np
import pytest

import nnx
from nnx import models, optim
from nnx.data import MNIST, DataLoader, Standardize, Subset, TensorDataset
from nnx.nn.modules import (
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    CrossEntropyLoss,
    Dropout2d,
    MaxPool1d,
    MaxPool2d,
)

RNG = np.random.default_rng(1)


def to_numpy_state(torch_module):
    return {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Reprs, parameters, state dicts

def test_reprs_match_torch():
    tnn = pytest.importorskip("torch").nn
    pairs = [
        (Conv2d(1, 6, 5, padding=2), tnn.Conv2d(1, 6, 5, padding=2)),
        (Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
         tnn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)),
        (Conv2d(2, 3, (3, 5), dilation=2), tnn.Conv2d(2, 3, (3, 5), dilation=2)),
        (Conv1d(3, 4, 3), tnn.Conv1d(3, 4, 3)),
        (MaxPool2d(2), tnn.MaxPool2d(2)),
        (MaxPool2d(3, 2, 1), tnn.MaxPool2d(3, 2, 1)),
        (MaxPool1d(3), tnn.MaxPool1d(3)),
        (AvgPool2d(2), tnn.AvgPool2d(2)),
        (AvgPool2d((3, 2), 1, 1, count_include_pad=False),
         tnn.AvgPool2d((3, 2), 1, 1, count_include_pad=False)),
        (AvgPool1d(3), tnn.AvgPool1d(3)),
        (AdaptiveAvgPool2d(1), tnn.AdaptiveAvgPool2d(1)),
        (AdaptiveAvgPool2d((2, None)), tnn.AdaptiveAvgPool2d((2, None))),
        (BatchNorm2d(16), tnn.BatchNorm2d(16)),
        (BatchNorm1d(8, affine=False, momentum=None), tnn.BatchNorm1d(8, affine=False,
                                                                      momentum=None)),
        (BatchNorm1d(4, eps=1e-3, track_running_stats=False),
         tnn.BatchNorm1d(4, eps=1e-3, track_running_stats=False)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert repr(Dropout2d(0.3)) == "Dropout2d(p=0.3)"


def test_conv_parameters_and_default_init():
    nnx.manual_seed(0)
    conv = Conv2d(8, 16, (3, 5))
    assert conv.weight.shape == (16, 8, 3, 5) and conv.bias.shape == (16,)
    assert conv.weight.dtype == np.float32
    assert conv.weight.data.ctypes.data % 64 == 0
    bound = 1 / math.sqrt(8 * 3 * 5)
    for p in (conv.weight, conv.bias):
        assert np.abs(p.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound  # spread over the whole interval
    assert abs(conv.weight.data.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert Conv2d(2, 3, 3, bias=False).bias is None
    assert [n for n, _ in Conv1d(2, 3, 4).named_parameters()] == ["weight", "bias"]
    assert Conv1d(2, 3, 4).weight.shape == (3, 2, 4)
    assert Conv2d(2, 3, 3, dtype=np.float64).weight.dtype == np.float64


@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"track_running_stats": False},
                                    {"bias": False}, {"momentum": None}])
def test_batch_norm_state_dict_matches_torch(kwargs):
    tnn = pytest.importorskip("torch").nn
    ours, theirs = BatchNorm2d(5, **kwargs), tnn.BatchNorm2d(5, **kwargs)
    state, expected = ours.state_dict(), to_numpy_state(theirs)
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype and state[key].shape == value.shape
        np.testing.assert_array_equal(state[key], value)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_module_errors():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels must be a positive int"):
        Conv2d(0, 3, 3)
    with pytest.raises(ValueError, match=r"Conv2d: stride must be positive"):
        Conv2d(1, 3, 3, stride=0)
    with pytest.raises(NotImplementedError, match="groups"):
        Conv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"MaxPool2d: padding 2 must be at most half"):
        MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input \(N, C, H, W\), got "
                                         r"shape \(4, 3\)"):
        BatchNorm2d(3)(nnx.zeros(4, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input \(N, C\) or \(N, C, L\)"):
        BatchNorm1d(3)(nnx.zeros(4, 3, 2, 2))
    with pytest.raises(ValueError, match=r"num_features"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"Dropout2d: p must be"):
        Dropout2d(-0.1)
    with pytest.raises(ValueError, match=r"conv2d: weight has 3 input channels but input has 1"):
        Conv2d(3, 4, 3)(nnx.zeros(2, 1, 8, 8))


# ---------------------------------------------------------------------------------------------
# Behaviour against PyTorch

def test_conv_modules_match_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    for ours, theirs, shape in [
        (Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.Conv2d(3, 4, 3, stride=2, padding=1),
         (2, 3, 9, 8)),
        (Conv1d(3, 4, 5, padding=2, bias=False), torch.nn.Conv1d(3, 4, 5, padding=2, bias=False),
         (2, 3, 11)),
    ]:
        ours.load_state_dict(to_numpy_state(theirs))
        x = RNG.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(ours(nnx.tensor(x)).data,
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("cls_name, shape, kwargs", [
    ("BatchNorm1d", (8, 3), {}),
    ("BatchNorm1d", (4, 3, 5), {"momentum": None}),
    ("BatchNorm2d", (4, 3, 5, 6), {}),
    ("BatchNorm2d", (2, 3, 4, 4), {"momentum": 0.5, "eps": 1e-3}),
    ("BatchNorm2d", (2, 3, 4, 4), {"affine": False}),
])
def test_batch_norm_modules_match_torch_over_steps(cls_name, shape, kwargs):
    torch = pytest.importorskip("torch")
    ours = {"BatchNorm1d": BatchNorm1d, "BatchNorm2d": BatchNorm2d}[cls_name](3, **kwargs)
    theirs = getattr(torch.nn, cls_name)(3, **kwargs).double()
    ours.double()
    if ours.affine:
        w, b = RNG.standard_normal(3), RNG.standard_normal(3)
        ours.load_state_dict({**ours.state_dict(), "weight": w, "bias": b})
        theirs.load_state_dict({**theirs.state_dict(), "weight": torch.tensor(w),
                                "bias": torch.tensor(b)})
    for _ in range(3):  # training steps with different batches
        x = RNG.standard_normal(shape) * 3 + 2
        tx = torch.tensor(x, requires_grad=True)
        xx = nnx.tensor(x, requires_grad=True)
        y, ty = ours(xx), theirs(tx)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        g = RNG.standard_normal(shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(xx.grad.data, tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    for key, value in to_numpy_state(theirs).items():
        np.testing.assert_allclose(ours.state_dict()[key], value, rtol=1e-10, atol=1e-12)
    assert int(ours.num_batches_tracked.data) == 3
    if ours.affine:
        np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-9)
    ours.eval()
    theirs.eval()
    x = RNG.standard_normal(shape)
    y = ours(nnx.tensor(x))
    np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    before = ours.state_dict()
    ours(nnx.tensor(x))
    for key, value in ours.state_dict().items():  # eval mode leaves the statistics alone
        np.testing.assert_array_equal(value, before[key])
    assert not np.allclose(y.data.mean(axis=0), 0)  # running, not batch, statistics


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    torch = pytest.importorskip("torch")
    ours = BatchNorm2d(3, track_running_stats=False).eval()
    theirs = torch.nn.BatchNorm2d(3, track_running_stats=False).eval()
    x = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) * 2 + 1
    y = ours(nnx.tensor(x))
    np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert ours.state_dict().keys() == {"weight", "bias"}


def test_batch_norm_module_survives_dtype_change_and_reload():
    bn = BatchNorm2d(2)
    bn(nnx.tensor(RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)))
    state = bn.state_dict()
    bn.double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    bn(nnx.tensor(RNG.standard_normal((4, 2, 3, 3))))
    assert int(bn.num_batches_tracked.data) == 2
    fresh = BatchNorm2d(2)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_var.data, state["running_var"])
    assert int(fresh.num_batches_tracked.data) == 1


def test_dropout2d_module_train_and_eval():
    nnx.manual_seed(3)
    drop = Dropout2d(0.5)
    x = nnx.ones(4, 8, 2, 2)
    y = drop(x)
    channels = y.data[:, :, 0, 0]
    assert set(np.unique(channels)) == {0.0, 2.0}
    assert np.all(y.data == channels[:, :, None, None])
    drop.eval()
    assert drop(x) is x


# ---------------------------------------------------------------------------------------------
# Models

def torch_lenet5(torch, in_channels=1, padding=2, classes=10):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=padding), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, classes))


def torch_resnet(torch, blocks=(2, 2, 2), widths=(16, 32, 64), classes=10, in_channels=1):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inp != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            inp = widths[0]
            self.stages = []
            for i, (n, planes) in enumerate(zip(blocks, widths)):
                layer = nn.Sequential(*[Block(inp if j == 0 else planes, planes,
                                              (1 if i == 0 else 2) if j == 0 else 1)
                                        for j in range(n)])
                setattr(self, f"layer{i + 1}", layer)
                self.stages.append(layer)
                inp = planes
            self.fc = nn.Linear(inp, classes)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            for layer in self.stages:
                x = layer(x)
            return self.fc(x.mean(dim=(2, 3)))

    return Net()


def copy_torch_state(model, theirs):
    """Loads torch's weights into the nnx model; keys must match one to one after renaming
    the LeNet Sequential's indices."""
    state = to_numpy_state(theirs)
    if isinstance(model, models.LeNet5):
        names = dict(zip(["0", "3", "7", "9", "11"], ["conv1", "conv2", "fc1", "fc2", "fc3"]))
        state = {names[k.split(".")[0]] + "." + k.split(".")[1]: v for k, v in state.items()}
    assert sorted(state) == sorted(model.state_dict())
    model.load_state_dict(state)


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_shapes_parameters_and_parity(size):
    torch = pytest.importorskip("torch")
    nnx.manual_seed(0)
    model = models.LeNet5(num_classes=7, in_channels=3, input_size=size).double()
    theirs = torch_lenet5(torch, 3, 2 if size == 28 else 0, 7).double()
    assert model.num_parameters() == sum(p.numel() for p in theirs.parameters())
    copy_torch_state(model, theirs)
    x = RNG.standard_normal((5, 3, size, size))
    y = model(nnx.tensor(x))
    ty = theirs(torch.tensor(x))
    assert y.shape == (5, 7)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-9, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(model.conv1.weight.grad.data, theirs[0].weight.grad.numpy(),
                               rtol=1e-8, atol=1e-12)
    assert models.LeNet5().num_parameters() == 61706
    with pytest.raises(ValueError, match=r"LeNet5: expected input \(N, C, 28, 28\)"):
        models.LeNet5()(nnx.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("activation, pooling", [("tanh", "avg"), ("sigmoid", "max")])
def test_lenet5_variants(activation, pooling):
    model = models.LeNet5(activation=activation, pooling=pooling)
    assert model(nnx.randn(2, 1, 28, 28)).shape == (2, 10)
    assert type(model.pool).__name__ == {"avg": "AvgPool2d", "max": "MaxPool2d"}[pooling]
    with pytest.raises(ValueError, match="activation"):
        models.LeNet5(activation="gelu")


def test_resnet_shapes_parameters_and_parity():
    torch = pytest.importorskip("torch")
    nnx.manual_seed(0)
    model = models.ResNet().double()
    theirs = torch_resnet(torch).double()
    assert model.num_parameters() == sum(p.numel() for p in theirs.parameters())
    copy_torch_state(model, theirs)
    for size in (28, 32):
        assert models.ResNet(blocks=(1, 1), widths=(4, 8))(nnx.randn(2, 1, size, size)).shape \
            == (2, 10)
    x = RNG.standard_normal((4, 1, 28, 28))
    y, ty = model(nnx.tensor(x)), theirs(torch.tensor(x))  # training mode: batch statistics
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-8, atol=1e-10)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    ours_grads = {n: p.grad.data for n, p in model.named_parameters()}
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_grads[name], p.grad.numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    for key, value in to_numpy_state(theirs).items():  # running statistics after one step
        np.testing.assert_allclose(model.state_dict()[key], value, rtol=1e-9, atol=1e-12)
    model.eval()
    theirs.eval()
    x = RNG.standard_normal((3, 1, 32, 32))
    np.testing.assert_allclose(model(nnx.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-8, atol=1e-10)


def test_resnet_block_shortcuts():
    assert models.BasicBlock(8, 8).downsample is None
    block = models.BasicBlock(8, 16, stride=2)
    assert block(nnx.randn(2, 8, 9, 9)).shape == (2, 16, 5, 5)
    assert type(block.downsample[0]).__name__ == "Conv2d"
    assert block.downsample[0].kernel_size == (1, 1)
    assert models.BasicBlock(8, 16).downsample is not None
    with pytest.raises(ValueError, match="blocks and widths"):
        models.ResNet(blocks=(2, 2), widths=(16, 32, 64))


# ---------------------------------------------------------------------------------------------
# Tiny training runs

def bars(n, rng):
    """28x28 images of a horizontal (class 0) or vertical (class 1) bar at a random place."""
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32) * 0.3
    pos = rng.integers(4, 24, n)
    for i in range(n):
        if y[i]:
            x[i, 0, :, pos[i] - 1:pos[i] + 2] += 1
        else:
            x[i, 0, pos[i] - 1:pos[i] + 2, :] += 1
    return x, y.astype(np.int64)


def train_briefly(model, loader, epochs, lr):
    opt = optim.Adam(model.parameters(), lr=lr)
    loss_fn = CrossEntropyLoss()
    losses = []
    model.train()
    for _ in range(epochs):
        total, count = 0.0, 0
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += float(loss.data) * len(y.data)
            count += len(y.data)
        losses.append(total / count)
    return losses


@pytest.mark.parametrize("make", [lambda: models.LeNet5(num_classes=2),
                                  lambda: models.ResNet((1, 1), (8, 16), 2)])
def test_models_learn_synthetic_bars(make):
    nnx.manual_seed(0)
    x, y = bars(256, np.random.default_rng(0))
    model = make()
    losses = train_briefly(model, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True),
                           epochs=4, lr=3e-3)
    assert losses[-1] < 0.25 < 0.5 < losses[0], losses
    xt, yt = bars(128, np.random.default_rng(1))
    model.eval()
    with nnx.no_grad():
        accuracy = (model(nnx.tensor(xt)).data.argmax(1) == yt).mean()
    assert accuracy > 0.95


def test_lenet5_learns_an_mnist_subset():
    if not os.environ.get("NNX_DATA_DIR"):
        pytest.skip("NNX_DATA_DIR is not set: LeNet5 MNIST subset test skipped")
    try:
        train_set, test_set = MNIST(train=True), MNIST(train=False)
    except FileNotFoundError as e:
        pytest.skip(f"MNIST not found: {e}")
    standardize = Standardize().fit(train_set)
    train_set.transform = test_set.transform = standardize
    nnx.manual_seed(0)
    model = models.LeNet5()
    loader = DataLoader(Subset(train_set, range(1000)), batch_size=32, shuffle=True)
    losses = train_briefly(model, loader, epochs=3, lr=2e-3)
    assert losses[-1] < 0.5 < 1.0 < losses[0], losses
    x, y = Subset(test_set, range(500)).arrays()
    model.eval()
    with nnx.no_grad():
        accuracy = (model(nnx.tensor(x)).data.argmax(1) == y).mean()
    assert accuracy > 0.8, accuracy


def test_cli_trains_lenet5_on_an_mnist_subset(capsys):
    if not os.environ.get("NNX_DATA_DIR"):
        pytest.skip("NNX_DATA_DIR is not set: CLI training test skipped")
    from nnx.__main__ import main

    code = main(["train", "lenet5", "--epochs", "2", "--limit", "500", "--batch-size", "32",
                 "--lr", "3e-3", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "test accuracy" in out
    accuracy = float(out.split("test accuracy")[1].split()[0])
    assert accuracy > 0.5  # two epochs on 500 images: far above chance (0.1)


def test_resnet_step_is_bitwise_identical_for_1_and_2_threads(threads):
    x = nnx.tensor(RNG.standard_normal((4, 1, 12, 12)).astype(np.float32))
    results = []
    for n in (1, 2):
        nnx.set_num_threads(n)
        nnx.manual_seed(0)
        model = models.ResNet(blocks=(1, 1), widths=(8, 16))
        out = model(x)
        (out * out).sum().backward()
        results.append([out.data] + [p.grad.data for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
