"""End to end on real data: the README's MLP learns MNIST digits in one short epoch.

Reads MNIST from $NNX_DATA_DIR and skips without it. Kept to a few seconds on 2 cores: 4000
training images (125 Adam steps of 32), 1000 test images.
"""

import os

import numpy as np
import pytest

import nnx
from nnx import data, optim
from nnx.nn.modules import CrossEntropyLoss, Linear, ReLU, Sequential

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="module")
def mnist_root():
    root = os.environ.get("NNX_DATA_DIR")
    if not root:
        pytest.skip("NNX_DATA_DIR is not set: end-to-end MNIST training skipped")
    if not all(os.path.isfile(os.path.join(root, "mnist", f)) for f in FILES):
        pytest.skip(f"MNIST files not found under {root}/mnist")
    return root


def test_mlp_learns_mnist_in_one_short_epoch(mnist_root):
    transform = data.Compose([data.Standardize(0.1307, 0.3081), data.Flatten()])
    train_set = data.Subset(data.MNIST(mnist_root, train=True, transform=transform), range(4000))
    test_set = data.Subset(data.MNIST(mnist_root, train=False, transform=transform), range(1000))
    nnx.manual_seed(0)
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    losses = []
    for x, y in data.DataLoader(train_set, batch_size=32, shuffle=True):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(losses) == 125 and all(np.isfinite(losses))
    assert np.mean(losses[:5]) > 1.5  # it starts near ln(10) = 2.3 ...
    assert np.mean(losses[-10:]) < 0.5  # ... and learns within the epoch
    model.eval()
    correct = 0
    with nnx.no_grad():
        for x, y in data.DataLoader(test_set, batch_size=500):
            correct += int((model(x).argmax(dim=1) == y).numpy().sum())
    assert correct / len(test_set) > 0.85
